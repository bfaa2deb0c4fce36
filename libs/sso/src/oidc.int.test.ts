import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startTestOidcProvider, type TestOidcProvider } from '@keyway/testing/sso';
import { randomPKCECodeVerifier } from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SsoLoginError, type ConnectorResource } from './driver.js';
import { createOidcDriver, parseMaxAge } from './oidc.js';

const CALLBACK = 'https://proxy.example.com/v1/webapi/oidc/callback';
const CLIENT = { client_id: 'keyway', client_secret: 'keyway-client-secret-0123456789', redirect_uris: [CALLBACK] };
/** Another connector's client at the same provider. */
const OTHER = { client_id: 'other-app', client_secret: 'other-client-secret-0123456789', redirect_uris: [CALLBACK] };

let idp: TestOidcProvider;
const driver = createOidcDriver({ allowHttpIssuer: true, timeoutMs: 3000 });

beforeAll(async () => {
  idp = await startTestOidcProvider({
    clients: [CLIENT, OTHER],
    accounts: {
      alice: { password: 'alice-pw', claims: { email: 'alice@example.com', email_verified: true, preferred_username: 'alice', groups: ['admins', 'team-payments'] } },
      bob: { password: 'bob-pw', claims: { email: 'bob@example.com', email_verified: false, preferred_username: 'bob', groups: ['admins'] } },
      carol: { password: 'carol-pw', claims: { email: 'carol@example.com', email_verified: true, groups: ['visitors'] } },
      dave: { password: 'dave-pw', claims: { email: 'dave@example.com', email_verified: true, groups: ['admins'], department: 'ops' } },
      erin: { password: 'erin-pw', claims: { email: 'erin@example.com', email_verified: true, groups: ['admins', 'team-web'] } },
      frank: { password: 'frank-pw', claims: { email: 'frank@example.com', email_verified: true, groups: ['admins'] } },
    },
  });
});
afterAll(async () => {
  await idp.close();
});

function connector(spec: Record<string, unknown> = {}, issuer = idp.issuer): ConnectorResource {
  return {
    kind: 'oidc',
    version: 'v3',
    metadata: { name: 'test-idp' },
    spec: {
      issuer_url: issuer,
      client_id: CLIENT.client_id,
      client_secret: CLIENT.client_secret,
      redirect_url: [CALLBACK],
      claims_to_roles: [
        { claim: 'groups', value: 'admins', roles: ['admin', 'auditor'] },
        { claim: 'groups', value: '^team-(.*)$', roles: ['$1-dev'] },
      ],
      ...spec,
    },
  };
}

const newId = () => randomBytes(16).toString('hex');

/** begin, the provider's pages, and the callback's query: what the proxy would hand to auth. */
async function login(conn: ConnectorResource, account: string, password: string, provider = idp) {
  const requestId = newId();
  const begun = await driver.begin({ connector: conn, requestId, callbackUrl: CALLBACK });
  const callback = await provider.loginWithoutBrowser(begun.url, account, password);
  expect(callback.origin + callback.pathname).toBe(CALLBACK);
  return { requestId, keep: begun.keep, url: new URL(begun.url), params: Object.fromEntries(callback.searchParams) };
}

async function refusal(p: Promise<unknown>): Promise<SsoLoginError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SsoLoginError);
  return err as SsoLoginError;
}

describe('OIDC driver against a real OpenID provider', () => {
  it('maps groups to roles, keeps every claim as a trait, and sends PKCE S256, state and nonce', async () => {
    const conn = connector({ scope: ['groups'] });
    const l = await login(conn, 'alice', 'alice-pw');
    expect(l.url.searchParams.get('state')).toBe(l.requestId);
    expect(l.url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(l.url.searchParams.get('nonce')).toBe(l.keep['nonce']);
    expect(l.url.searchParams.get('scope')?.split(' ')).toEqual(['openid', 'email', 'profile', 'groups']);
    expect(l.url.searchParams.get('redirect_uri')).toBe(CALLBACK);
    expect(Object.keys(l.keep).sort()).toEqual(['nonce', 'verifier']);

    const id = await driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params });
    expect(id.username).toBe('alice@example.com');
    expect(id.subject).toBe('alice');
    expect(id.roles).toEqual(['admin', 'auditor', 'payments-dev']);
    // {{external.groups}} in a role template reads this trait.
    expect(id.traits['groups']).toEqual(['admins', 'team-payments']);
    expect(id.traits['email']).toEqual(['alice@example.com']);
    expect(id.traits['email_verified']).toEqual(['true']);
    // userinfo's claims merged with the ID token's (the ID token alone carries the nonce).
    expect(id.received).toMatchObject({ sub: 'alice', email: 'alice@example.com', groups: ['admins', 'team-payments'], nonce: l.keep['nonce'] });
  });

  it('takes the user name from username_claim, and refuses when that claim is missing', async () => {
    const byName = connector({ username_claim: 'preferred_username' });
    const l = await login(byName, 'alice', 'alice-pw');
    const id = await driver.complete({ connector: byName, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params });
    expect(id.username).toBe('alice');

    // carol has no preferred_username
    const l2 = await login(connector({ username_claim: 'preferred_username', claims_to_roles: [{ claim: 'groups', value: '*', roles: ['any'] }] }), 'carol', 'carol-pw');
    const err = await refusal(driver.complete({ connector: connector({ username_claim: 'preferred_username', claims_to_roles: [{ claim: 'groups', value: '*', roles: ['any'] }] }), requestId: l2.requestId, callbackUrl: CALLBACK, keep: l2.keep, params: l2.params }));
    expect(err.reason).toBe('missing username claim');
  });

  it('sees claims the provider changed at the next login (custom claims become traits)', async () => {
    const conn = connector({ claims_to_roles: [{ claim: 'department', value: '*', roles: ['dept-$1'] }] });
    let l = await login(conn, 'dave', 'dave-pw');
    let id = await driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params });
    expect(id.roles).toEqual(['dept-ops']);
    idp.setClaims('dave', { email: 'dave@example.com', email_verified: true, groups: ['admins'], department: 'sales' });
    l = await login(conn, 'dave', 'dave-pw');
    id = await driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params });
    expect(id.roles).toEqual(['dept-sales']);
    expect(id.traits['department']).toEqual(['sales']);
  });

  it('refuses a callback whose state was changed', async () => {
    const conn = connector();
    const l = await login(conn, 'alice', 'alice-pw');
    const err = await refusal(driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: { ...l.params, state: newId() } }));
    expect(err.reason).toBe('state mismatch');
    const missing: Record<string, string> = { ...l.params };
    delete missing['state'];
    expect((await refusal(driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: missing }))).reason).toBe('state mismatch');
  });

  it('refuses a replayed callback: the same code cannot be exchanged twice', async () => {
    const conn = connector();
    const l = await login(conn, 'alice', 'alice-pw');
    const input = { connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params };
    await expect(driver.complete(input)).resolves.toMatchObject({ username: 'alice@example.com' });
    const err = await refusal(driver.complete(input));
    expect(err.reason).toBe('code exchange failed');
    expect(err.data).toEqual({ error: 'invalid_grant' });
    expect(err.message).not.toContain(l.params['code'] ?? '-');
  });

  it("refuses a response meant for another login request (its state, or that request's secrets)", async () => {
    const conn = connector();
    const a = await login(conn, 'alice', 'alice-pw');
    const b = await login(conn, 'bob', 'bob-pw');
    // B's request (id and secrets) with A's callback: A's state is not B's.
    let err = await refusal(driver.complete({ connector: conn, requestId: b.requestId, callbackUrl: CALLBACK, keep: b.keep, params: a.params }));
    expect(err.reason).toBe('state mismatch');
    // A's id and callback but B's stored secrets: the provider refuses B's verifier for A's code.
    err = await refusal(driver.complete({ connector: conn, requestId: a.requestId, callbackUrl: CALLBACK, keep: b.keep, params: a.params }));
    expect(err.reason).toBe('code exchange failed');
  });

  it("refuses another connector's code injected into this request's callback", async () => {
    const conn = connector();
    const mine = await driver.begin({ connector: conn, requestId: newId(), callbackUrl: CALLBACK });
    const requestId = new URL(mine.url).searchParams.get('state') ?? '';
    const theirs = await login(connector({ client_id: OTHER.client_id, client_secret: OTHER.client_secret }), 'alice', 'alice-pw');
    const err = await refusal(driver.complete({ connector: conn, requestId, callbackUrl: CALLBACK, keep: mine.keep, params: { ...theirs.params, state: requestId } }));
    expect(err.reason).toBe('code exchange failed');
  });

  it('refuses a callback naming another issuer (mix-up)', async () => {
    const conn = connector();
    const l = await login(conn, 'alice', 'alice-pw');
    expect(l.params['iss']).toBe(idp.issuer);
    const err = await refusal(driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: { ...l.params, iss: 'https://evil.example.com' } }));
    expect(err.reason).toBe('issuer mismatch');
  });

  it('refuses a code exchanged with a wrong PKCE verifier', async () => {
    const conn = connector();
    const l = await login(conn, 'alice', 'alice-pw');
    const err = await refusal(
      driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: { ...l.keep, verifier: randomPKCECodeVerifier() }, params: l.params }),
    );
    expect(err.reason).toBe('code exchange failed');
    expect(err.data).toEqual({ error: 'invalid_grant' });
  });

  it('refuses an ID token whose nonce is not the one kept for the request', async () => {
    const conn = connector();
    const l = await login(conn, 'alice', 'alice-pw');
    const err = await refusal(driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: { ...l.keep, nonce: newId() }, params: l.params }));
    expect(err.reason).toBe('nonce mismatch');
    // and a request with no secrets kept at all never reaches the provider
    const none = await refusal(driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: {}, params: l.params }));
    expect(none.reason).toBe('code exchange failed');
  });

  it('refuses when the provider says error, naming only its (bounded) error code', async () => {
    // prompt=none without a session at the provider: a real login_required error redirect.
    const conn = connector({ prompt: 'none' });
    const requestId = newId();
    const begun = await driver.begin({ connector: conn, requestId, callbackUrl: CALLBACK });
    const cb = await idp.loginWithoutBrowser(begun.url, 'alice', 'alice-pw');
    const params = Object.fromEntries(cb.searchParams);
    expect(params['error']).toBe('login_required');
    let err = await refusal(driver.complete({ connector: conn, requestId, callbackUrl: CALLBACK, keep: begun.keep, params }));
    expect(err.reason).toBe('provider refused');
    expect(err.data).toEqual({ error: 'login_required' });
    expect(err.message).not.toContain(params['error_description'] ?? '-');

    err = await refusal(driver.complete({ connector: conn, requestId, callbackUrl: CALLBACK, keep: begun.keep, params: { error: '<script>alert(1)</script>'.repeat(100), state: requestId } }));
    expect(err.reason).toBe('provider refused');
    expect(err.data).toEqual({ error: 'invalid' });
    expect(err.message.length).toBeLessThan(200);
  });

  it('refuses a person no claims_to_roles line matches, naming the connector and the claims checked', async () => {
    const conn = connector();
    const l = await login(conn, 'carol', 'carol-pw');
    const err = await refusal(driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params }));
    expect(err.reason).toBe('no role matched');
    expect(err.message).toContain('test-idp');
    expect(err.message).toContain('groups');
    expect(err.data).toEqual({ connector: 'test-idp', claims: ['groups'] });
  });

  it('refuses an unverified email unless allow_unverified_email', async () => {
    const conn = connector();
    const l = await login(conn, 'bob', 'bob-pw');
    const err = await refusal(driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params }));
    expect(err.reason).toBe('email not verified');

    const lax = connector({ allow_unverified_email: true });
    const l2 = await login(lax, 'bob', 'bob-pw');
    await expect(driver.complete({ connector: lax, requestId: l2.requestId, callbackUrl: CALLBACK, keep: l2.keep, params: l2.params })).resolves.toMatchObject({
      username: 'bob@example.com',
      roles: ['admin', 'auditor'],
    });
  });

  it('sends max_age and checks auth_time', async () => {
    const conn = connector({ max_age: '1h' });
    const l = await login(conn, 'alice', 'alice-pw');
    expect(l.url.searchParams.get('max_age')).toBe('3600');
    const id = await driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params });
    expect(typeof id.received['auth_time']).toBe('number');
    expect([parseMaxAge('1h30m'), parseMaxAge(90), parseMaxAge('45'), parseMaxAge(undefined), parseMaxAge('soon'), parseMaxAge(-1)]).toEqual([5400, 90, 45, undefined, null, null]);
  });

  it('refuses a wrong password at the provider (the test provider checks it)', async () => {
    const begun = await driver.begin({ connector: connector(), requestId: newId(), callbackUrl: CALLBACK });
    await expect(idp.loginWithoutBrowser(begun.url, 'alice', 'wrong')).rejects.toThrow(/Invalid login or password/);
  });

  it('refuses an http issuer unless allowHttpIssuer, and a callback not among redirect_url', async () => {
    const strict = createOidcDriver();
    expect((await refusal(strict.begin({ connector: connector(), requestId: newId(), callbackUrl: CALLBACK }))).reason).toBe('insecure issuer');
    const err = await refusal(driver.begin({ connector: connector(), requestId: newId(), callbackUrl: 'https://evil.example.com/cb' }));
    expect(err.reason).toBe('connector invalid');
  });

  it('says "provider unreachable" when the provider is down, within the timeout', async () => {
    const other = await startTestOidcProvider({ clients: [CLIENT], accounts: { alice: { password: 'alice-pw', claims: { email: 'alice@example.com', email_verified: true, groups: ['admins'] } } } });
    const conn = connector({}, other.issuer);
    const l = await login(conn, 'alice', 'alice-pw', other);
    await other.close();
    // discovery is cached: the token request is what fails
    let err = await refusal(driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params }));
    expect(err.reason).toBe('provider unreachable');
    // a driver with nothing cached fails at discovery
    err = await refusal(createOidcDriver({ allowHttpIssuer: true, timeoutMs: 1000 }).begin({ connector: conn, requestId: newId(), callbackUrl: CALLBACK }));
    expect(err.reason).toBe('provider unreachable');
  });

  it('says "provider unreachable" when the provider accepts connections but never answers', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const issuer = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const quick = createOidcDriver({ allowHttpIssuer: true, timeoutMs: 300 });
      const err = await refusal(quick.begin({ connector: connector({}, issuer), requestId: newId(), callbackUrl: CALLBACK }));
      expect(err.reason).toBe('provider unreachable');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('does not read an unbounded response from the provider', async () => {
    const huge = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // no content-length: the driver has to stop reading by itself
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const more = (): void => {
        while (sent < 64 && res.write(chunk)) sent++;
        if (sent >= 64) res.end('{}');
        else res.once('drain', more);
      };
      more();
    });
    await new Promise<void>((resolve) => huge.listen(0, '127.0.0.1', resolve));
    try {
      const issuer = `http://127.0.0.1:${(huge.address() as AddressInfo).port}`;
      const err = await refusal(createOidcDriver({ allowHttpIssuer: true }).begin({ connector: connector({}, issuer), requestId: newId(), callbackUrl: CALLBACK }));
      expect(err.reason).toBe('provider unreachable');
      expect(err.message).toMatch(/larger than/);
    } finally {
      huge.closeAllConnections();
      await new Promise<void>((resolve) => huge.close(() => resolve()));
    }
  });

  describe('at certificate renewal (recheck with the refresh token)', () => {
    const offline = () => connector({ scope: ['offline_access'], prompt: 'consent' });

    it('keeps a refresh token from a login that asked for offline_access, and maps the provider\'s current claims at recheck', async () => {
      const conn = offline();
      const l = await login(conn, 'erin', 'erin-pw');
      const id = await driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params });
      expect(id.roles).toEqual(['admin', 'auditor', 'web-dev']);
      expect(Object.keys(id.renewal ?? {})).toEqual(['refresh_token']);
      expect(id.warnings).toEqual([]);

      idp.setClaims('erin', { email: 'erin@example.com', email_verified: true, groups: ['team-web'] });
      const again = await driver.recheck!({ connector: conn, subject: id.subject, renewal: id.renewal! });
      expect(again.username).toBe('erin@example.com');
      expect(again.roles).toEqual(['web-dev']);
      expect(again.traits['groups']).toEqual(['team-web']);
      expect(again.renewal?.['refresh_token']).toBeTruthy();

      // The mapping no longer grants a role: refused, naming the check.
      idp.setClaims('erin', { email: 'erin@example.com', email_verified: true, groups: ['visitors'] });
      const err = await refusal(driver.recheck!({ connector: conn, subject: id.subject, renewal: again.renewal! }));
      expect(err.reason).toBe('no role matched');
    });

    it('is refused once the person is removed at the provider, or for a token that is not one', async () => {
      const conn = offline();
      const l = await login(conn, 'frank', 'frank-pw');
      const id = await driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params });
      expect(id.renewal?.['refresh_token']).toBeTruthy();
      let err = await refusal(driver.recheck!({ connector: conn, subject: id.subject, renewal: { refresh_token: 'forged-token' } }));
      expect(err.reason).toBe('refresh refused');
      expect(err.message).toMatch(/invalid_grant/);
      idp.removeAccount('frank');
      err = await refusal(driver.recheck!({ connector: conn, subject: id.subject, renewal: id.renewal! }));
      expect(err.reason).toBe('refresh refused');
      // Another subject's recheck with this login's token is refused too (the token is frank's).
      err = await refusal(driver.recheck!({ connector: conn, subject: 'alice', renewal: {} }));
      expect(err.reason).toBe('renewal unavailable');
    });

    it('warns when the provider issues no refresh token (no offline_access), naming the fix', async () => {
      const conn = connector();
      const l = await login(conn, 'alice', 'alice-pw');
      const id = await driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params });
      expect(id.renewal).toBeUndefined();
      expect(id.warnings.join(' ')).toMatch(/no refresh token.*offline_access/);
    });
  });

  it('checks acr against acr_values: a provider that ignored the request is refused', async () => {
    const conn = connector({ acr_values: 'urn:keyway:mfa' });
    const l = await login(conn, 'alice', 'alice-pw');
    expect(l.url.searchParams.get('acr_values')).toBe('urn:keyway:mfa');
    const err = await refusal(driver.complete({ connector: conn, requestId: l.requestId, callbackUrl: CALLBACK, keep: l.keep, params: l.params }));
    expect(err.reason).toBe('acr mismatch');
    expect(err.message).toMatch(/acr\) is none, not one of acr_values \(urn:keyway:mfa\)/);

    const mfa = await startTestOidcProvider({ clients: [CLIENT], accounts: { alice: { password: 'pw', claims: { email: 'a@example.com', email_verified: true, groups: ['admins'] } } }, acr: 'urn:keyway:mfa' });
    try {
      const c2 = connector({ acr_values: 'urn:keyway:mfa urn:keyway:hw' }, mfa.issuer);
      const l2 = await login(c2, 'alice', 'pw', mfa);
      const id = await driver.complete({ connector: c2, requestId: l2.requestId, callbackUrl: CALLBACK, keep: l2.keep, params: l2.params });
      expect(id.received['acr']).toBe('urn:keyway:mfa');
    } finally {
      await mfa.close();
    }
  });
});
