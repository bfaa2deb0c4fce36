import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@keyway/pki';
import { newSecretKey, openSealed } from '@keyway/sso';
import { startTestOidcProvider, type TestOidcProvider } from '@keyway/testing/sso';
import { browse, expectLoggedIn, printedUrl, startSsoStack, type SsoStack } from './sso-harness.js';

/** A loopback callback like kw's: resolves with the sealed `response` it receives. */
async function loopback(): Promise<{ url: string; response: Promise<string | null>; close(): void }> {
  let got!: (v: string | null) => void;
  const response = new Promise<string | null>((r) => (got = r));
  const server = http.createServer((req, res) => {
    got(new URL(req.url ?? '/', 'http://127.0.0.1').searchParams.get('response'));
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/callback`, response, close: () => server.close() };
}

// `kw login --auth=<connector>` through OIDC as a person runs it: kw prints the provider's URL
// (--browser=none), the person logs in at the provider (its real login and consent forms,
// filled in over HTTP), the provider sends the browser to the proxy's callback, the proxy to
// kw's; then kubectl works as the Kubernetes groups the provider's claims map to.

describe('SSO login through OIDC, end to end', () => {
  let s: SsoStack;
  let idp: TestOidcProvider;

  beforeAll(async () => {
    const stack = await startSsoStack([{ groups: ['devs'], verbs: ['get', 'list', 'watch'], resources: ['pods'], namespaces: ['default'] }]);
    s = stack;
    const callback = `https://${s.proxy}/v1/webapi/oidc/callback`;
    idp = await startTestOidcProvider({
      clients: [{ client_id: 'keyway', client_secret: 'oidc-s3cret', redirect_uris: [callback] }],
      accounts: {
        ada: { password: 'ada-password', claims: { email: 'ada@example.com', email_verified: true, groups: ['devs'] } },
        eve: { password: 'eve-password', claims: { email: 'eve@example.com', email_verified: true, groups: ['contractors'] } },
        bob: { password: 'bob-password', claims: { email: 'bob@example.com', email_verified: true, groups: ['devs'] } },
      },
    });
    const created = await s.kwctl(
      ['create', '-f', '-'],
      `kind: role
version: v7
metadata: {name: sso-dev}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: ['{{external.groups}}']
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list, watch]}]
---
kind: oidc
version: v3
metadata: {name: okta}
spec:
  issuer_url: ${idp.issuer}
  client_id: keyway
  client_secret: oidc-s3cret
  redirect_url: ${callback}
  claims_to_roles: [{claim: groups, value: devs, roles: [sso-dev]}]
`,
    );
    expect(created.code, created.err).toBe(0);
    await stack.startAgent();
  }, 90_000);

  afterAll(async () => {
    await s?.close();
    await idp?.close();
  });

  it('logs ada in through the provider and kubectl runs as the groups her claims map to', async () => {
    const p = s.login('okta');
    const url = await printedUrl(p);
    expect(url.startsWith(idp.issuer)).toBe(true);
    const atProxy = await idp.loginWithoutBrowser(url, 'ada', 'ada-password');
    expect(atProxy.toString().startsWith(`https://${s.proxy}/v1/webapi/oidc/callback?`)).toBe(true);
    await expectLoggedIn(p, await browse(atProxy.toString()), 'ada@example.com', 'sso-dev');

    const user = await s.kwctl(['get', 'users/ada@example.com', '--format=json']);
    expect(user.code, user.err).toBe(0);
    expect(JSON.parse(user.out)).toMatchObject([{ metadata: { name: 'ada@example.com', expires: expect.any(String) }, spec: { roles: ['sso-dev'], traits: { groups: ['devs'] }, created_by: { connector: { type: 'oidc', id: 'okta' } } } }]);
    const kube = await s.kw(['kube', 'login', 'kubernetes', '--insecure']);
    expect(kube.code, kube.stderr).toBe(0);
    const before = s.api.requests.length;
    const pods = await s.kubectl(['get', 'pods', '-o', 'name', '-n', 'default']);
    expect(pods.code, pods.stderr).toBe(0);
    expect(pods.stdout).toContain('pod/web');
    const seen = s.api.requests.slice(before).find((r) => r.path === '/api/v1/namespaces/default/pods');
    expect(seen?.headersDistinct['impersonate-group']).toEqual(expect.arrayContaining(['devs']));
    expect(seen?.headers['impersonate-user']).toBe('ada@example.com');
    const events = await s.kwctl(['audit', 'search', '--event', 'user.login', '--user', 'ada@example.com', '--format', 'json']);
    expect(events.out).toMatch(/"code":"T1001I"/);
  });

  it('refuses eve, whose claims map to no role, saying so on the page and in kw', async () => {
    const p = s.login('okta');
    const page = await browse((await idp.loginWithoutBrowser(await printedUrl(p), 'eve', 'eve-password')).toString());
    expect(page.body).toContain('Login failed');
    expect(page.body).toMatch(/okta/);
    expect(await p.exited).not.toBe(0);
    expect(p.stderr()).toMatch(/login failed: oidc connector "okta"/);
    const events = await s.kwctl(['audit', 'search', '--event', 'user.login', '--format', 'json']);
    expect(events.out).toMatch(/"code":"T1001W"/);
  });

  it('refuses a replayed callback: the login request is used once', async () => {
    const p = s.login('okta');
    const atProxy = await idp.loginWithoutBrowser(await printedUrl(p), 'ada', 'ada-password');
    expect((await browse(atProxy.toString())).body).toContain('Login successful');
    expect(await p.exited).toBe(0);
    const again = await browse(atProxy.toString());
    expect(again.status).toBe(400);
    expect(again.body).toContain('unknown, expired or already used');
  });

  it('tests a connector that is not stored (kwctl sso test): reports what was received and mapped, creates nobody', async () => {
    const secret = newSecretKey();
    const landed = await loopback();
    const connector = { kind: 'oidc', version: 'v3', metadata: { name: 'okta-test' }, spec: { issuer_url: idp.issuer, client_id: 'keyway', client_secret: 'oidc-s3cret', redirect_url: [`https://${s.proxy}/v1/webapi/oidc/callback`], claims_to_roles: [{ claim: 'groups', value: '^(.*)$', roles: ['team-$1'] }] } };
    const admin = { kind: 'host' as const, identity: { username: 'admin', roles: [], traits: {}, kubernetesUsers: [], kubernetesGroups: [], clusterName: 'acme', mfaVerified: false, systemRoles: ['Admin' as const], expires: new Date(Date.now() + 60_000) } };
    const started = await s.stack.auth.api.sso.createRequest(admin, { kind: 'oidc', connectorName: '', publicKeyPem: generateKeyPair().publicKeyPem, clientRedirectUrl: `${landed.url}?secret_key=${secret}`, ttlMs: 0, kubernetesCluster: '', testConnectorJson: JSON.stringify(connector), remoteIp: '' });
    const page = await browse((await idp.loginWithoutBrowser(started.redirectUrl, 'eve', 'eve-password')).toString());
    expect(page.status).toBe(200);
    const report = JSON.parse(openSealed(secret, (await landed.response) ?? '')) as Record<string, unknown>;
    landed.close();
    expect(report).toMatchObject({ connector: 'okta-test', kind: 'oidc', username: 'eve@example.com', roles: ['team-contractors'], traits: { groups: ['contractors'] }, received: { groups: ['contractors'] } });
    expect((await s.kwctl(['get', 'users/eve@example.com'])).code).not.toBe(0);
  });

  it('names an unknown connector and lists the ones there are', async () => {
    const r = await s.kw(['login', `--proxy=${s.proxy}`, '--auth=nope', '--browser=none', '--insecure']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no SSO connector named "nope" \(there are: okta\)/);
  });

  it('never lets an SSO login take over a local user of the same name', async () => {
    const created = await s.kwctl(['users', 'add', 'bob@example.com', '--roles=sso-dev']);
    expect(created.code, created.err).toBe(0);
    const p = s.login('okta');
    const page = await browse((await idp.loginWithoutBrowser(await printedUrl(p), 'bob', 'bob-password')).toString());
    expect(page.body).toContain('Login failed');
    expect(await p.exited).not.toBe(0);
    expect(p.stderr()).toMatch(/a local user "bob@example.com" exists; an SSO login may not take it over/);
    const local = await s.kwctl(['get', 'users/bob@example.com', '--format=json']);
    expect(JSON.parse(local.out)[0].spec.created_by).toBeUndefined();
  });
});
