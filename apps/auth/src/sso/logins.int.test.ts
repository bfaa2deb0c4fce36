import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthClient} from '@keyway/client';
import { type IdentityFile } from '@keyway/client';
import { generateKeyPair } from '@keyway/pki';
import { newSecretKey } from '@keyway/sso';
import { clientAs, failure, joinHost, signUp, start, stop, type Harness } from '../api/attack-harness.js';

// The SSO RPCs as attackers call them: only a proxy carries a browser's login, kw's callback
// must be a loopback one with a key, connectors must exist, callbacks are bounded and a
// callback for no pending request finds nothing.

const OIDC = JSON.stringify({
  kind: 'oidc',
  version: 'v3',
  metadata: { name: 'okta' },
  spec: { issuer_url: 'https://idp.invalid', client_id: 'c', redirect_url: 'https://proxy.invalid/v1/webapi/oidc/callback', claims_to_roles: [{ claim: 'groups', value: 'devs', roles: ['access'] }] },
});

describe('SSO login RPCs', () => {
  let h: Harness;
  let proxy: AuthClient;
  let agent: IdentityFile;
  const { publicKeyPem } = generateKeyPair();
  const good = { kind: 'oidc', connectorName: 'okta', publicKeyPem, clientRedirectUrl: `http://127.0.0.1:4000/callback?secret_key=${newSecretKey()}`, ttlSeconds: 0, kubernetesCluster: '', testConnectorJson: '', remoteIp: '198.51.100.1' };

  beforeAll(async () => {
    h = await start();
    await h.admin.call('createResources', { resources: [{ kind: 'oidc', name: 'okta', json: OIDC, revision: '' }], force: false });
    proxy = clientAs(h, (await joinHost(h, 'Proxy')).identity);
    agent = (await joinHost(h, 'Kube')).identity;
  }, 60_000);
  afterAll(async () => {
    proxy?.close();
    await stop(h);
  });

  it('refuses every caller but a proxy', async () => {
    await signUp(h, 'mallory');
    expect(await failure(h.anon.call('createSsoAuthRequest', good))).toMatchObject({ kind: 'AccessDenied' });
    const kube = clientAs(h, agent);
    try {
      expect(await failure(kube.call('createSsoAuthRequest', good))).toMatchObject({ kind: 'AccessDenied' });
      expect(await failure(kube.call('validateSsoCallback', { kind: 'oidc', params: { state: 'x' }, remoteIp: '' }))).toMatchObject({ kind: 'AccessDenied' });
    } finally {
      kube.close();
    }
    // The local admin may test a connector (kwctl sso test), not start a login for a user.
    expect(await failure(h.admin.call('createSsoAuthRequest', good))).toMatchObject({ kind: 'AccessDenied' });
  });

  it.each([
    ['an https callback', `https://127.0.0.1:4000/callback?secret_key=${newSecretKey()}`],
    ['another host', `http://attacker.example:4000/callback?secret_key=${newSecretKey()}`],
    ['no port', `http://127.0.0.1/callback?secret_key=${newSecretKey()}`],
    ['no secret key', 'http://127.0.0.1:4000/callback'],
    ['a short secret key', 'http://127.0.0.1:4000/callback?secret_key=abcd'],
  ])('refuses a client redirect to %s', async (_name, clientRedirectUrl) => {
    expect(await failure(proxy.call('createSsoAuthRequest', { ...good, clientRedirectUrl }))).toMatchObject({ kind: 'BadParameter', data: { field: 'redirect_url' } });
  });

  it('names a connector that does not exist, a kind it does not know, and a key it cannot sign for', async () => {
    expect(await failure(proxy.call('createSsoAuthRequest', { ...good, connectorName: 'nope' }))).toMatchObject({ kind: 'NotFound', message: 'oidc connector "nope" is not found' });
    expect(await failure(proxy.call('createSsoAuthRequest', { ...good, kind: 'ldap' }))).toMatchObject({ kind: 'BadParameter', message: expect.stringContaining('unknown SSO connector kind "ldap"') });
    expect(await failure(proxy.call('createSsoAuthRequest', { ...good, publicKeyPem: 'not a key' }))).toMatchObject({ kind: 'BadParameter' });
  });

  it('says a provider that cannot be reached is down, in one sentence naming the connector', async () => {
    const err = await failure(proxy.call('createSsoAuthRequest', good));
    expect(err.kind).toBe('ConnectionProblem');
    expect(err.message).toMatch(/^oidc connector "okta": .*idp\.invalid/);
  });

  it('finds nothing for a callback with an unknown or missing state, and bounds what it takes', async () => {
    for (const params of [{}, { state: 'no-such-request' }, { code: 'x', state: '' }] as Record<string, string>[]) {
      expect(await proxy.call('validateSsoCallback', { kind: 'oidc', params, remoteIp: '' })).toMatchObject({ success: false, redirectUrl: '', message: expect.stringContaining('unknown, expired or already used') });
    }
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`p${i}`, 'x']));
    expect(await failure(proxy.call('validateSsoCallback', { kind: 'oidc', params: many, remoteIp: '' }))).toMatchObject({ kind: 'BadParameter', message: expect.stringContaining('more than 16') });
    expect(await failure(proxy.call('validateSsoCallback', { kind: 'oidc', params: { state: 'x'.repeat(5000) }, remoteIp: '' }))).toMatchObject({ kind: 'BadParameter' });
  });
});
