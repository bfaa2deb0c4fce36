import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, readIdentityFile } from '@keyway/client';
import { generateKeyPair } from '@keyway/pki';
import { startTestOidcProvider, type TestOidcProvider } from '@keyway/testing/sso';
import { waitUntil } from './harness.js';
import { browse, expectLoggedIn, printedUrl, startSsoStack, type SsoStack } from './sso-harness.js';

// SCIM 2.0 deprovisioning as Okta and Entra ID push it, end to end: an SSO user logged in
// through the OIDC test provider watches pods through the proxy; a SCIM PATCH active=false
// with a `kwctl tokens add --type=scim` token ends the watch on the spot, refuses the next
// kubectl and the next SSO login; re-activation lets the user log in again.

interface ScimReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

describe('SCIM 2.0 deprovisioning, end to end', () => {
  let s: SsoStack;
  let idp: TestOidcProvider;
  let token: string;
  let base: string;

  const scim = (method: string, path: string, o: { token?: string | null; body?: unknown; raw?: string | Buffer; headers?: Record<string, string | number> } = {}) =>
    new Promise<ScimReply>((resolve, reject) => {
      const body = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
      const bearer = o.token === undefined ? token : o.token;
      const headers: Record<string, string | number> = { ...(bearer !== null ? { authorization: `Bearer ${bearer}` } : {}), ...(body !== undefined ? { 'content-type': 'application/scim+json', 'content-length': Buffer.byteLength(body) } : {}), ...o.headers };
      const req = https.request(`${base}${path}`, { method, headers, rejectUnauthorized: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const deactivate = (user: string, entra = false, t?: string | null) =>
    scim('PATCH', `/Users/${encodeURIComponent(user)}`, {
      ...(t !== undefined ? { token: t } : {}),
      body: { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [entra ? { op: 'Replace', value: { active: false } } : { op: 'replace', path: 'active', value: false }] },
    });
  const ssoLogin = async (account: string, password: string) => {
    const p = s.login('okta');
    const page = await browse((await idp.loginWithoutBrowser(await printedUrl(p), account, password)).toString());
    return { p, page };
  };
  const expectScimError = (r: ScimReply, status: number, detail: RegExp) => {
    expect(r.headers['content-type']).toBe('application/scim+json');
    expect(r.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: String(status) });
    expect(r.body['detail']).toMatch(detail);
    expect(r.status).toBe(status);
  };

  beforeAll(async () => {
    const stack = await startSsoStack([{ groups: ['devs'], verbs: ['get', 'list', 'watch'], resources: ['pods'], namespaces: ['default'] }]);
    s = stack;
    base = `https://${s.proxy}/scim/v2`;
    const callback = `https://${s.proxy}/v1/webapi/oidc/callback`;
    idp = await startTestOidcProvider({
      clients: [{ client_id: 'keyway', client_secret: 'oidc-s3cret', redirect_uris: [callback] }],
      accounts: {
        ada: { password: 'ada-password', claims: { email: 'ada@example.com', email_verified: true, groups: ['devs'] } },
        cy: { password: 'cy-password', claims: { email: 'cy@example.com', email_verified: true, groups: ['devs'] } },
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
    const add = await s.kwctl(['tokens', 'add', '--type=scim']);
    expect(add.code, add.err).toBe(0);
    token = /The SCIM token: (\S+)/.exec(add.out)?.[1] ?? '';
    expect(token.length).toBeGreaterThanOrEqual(32);
    await stack.startAgent();
  }, 120_000);

  afterAll(async () => {
    await s?.close();
    await idp?.close();
  });

  it('stores only the hash of a SCIM token and shows its value once', async () => {
    const ls = await s.kwctl(['tokens', 'ls', '--format=json']);
    expect(ls.out).not.toContain(token);
    expect(ls.out).toMatch(/"Scim"/);
    const bad = await s.kwctl(['tokens', 'add', '--type=scim,kube']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/joins nothing/);
  });

  it('deactivating an SSO user ends their watch at once, refuses kubectl and the next SSO login; re-activation lets them in', async () => {
    const first = await ssoLogin('ada', 'ada-password');
    await expectLoggedIn(first.p, first.page, 'ada@example.com', 'sso-dev');
    expect((await s.kw(['kube', 'login', 'kubernetes', '--insecure'])).code).toBe(0);

    const found = await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "ada@example.com"')}`);
    expect(found.status).toBe(200);
    expect(found.headers['content-type']).toBe('application/scim+json');
    expect(found.body).toMatchObject({ totalResults: 1, Resources: [{ id: 'ada@example.com', userName: 'ada@example.com', active: true }] });

    const before = s.api.requests.length;
    const watch = s.kubectl(['get', 'pods', '-n', 'default', '-w']);
    await waitUntil(() => s.api.requests.slice(before).some((r) => r.verb === 'watch' && r.user?.username === 'ada@example.com'), 'the watch to reach the API server');
    const at = Date.now();
    const off = await deactivate('ada@example.com');
    const answeredAfter = Date.now() - at;
    expect(off.status, JSON.stringify(off.body)).toBe(200);
    expect(off.body).toMatchObject({ id: 'ada@example.com', active: false });
    const ended = await watch;
    console.log(`SCIM PATCH active=false answered after ${answeredAfter} ms; kubectl get -w ended ${Date.now() - at} ms after the request was sent (exit ${ended.code})`);
    // kubectl ends the watch on the ERROR event the proxy sends, and prints it as a Status row.
    expect(ended.stdout + ended.stderr).toMatch(/locked: deprovisioned by SCIM|no longer exists/);

    const again = await s.kubectl(['get', 'pods', '-n', 'default']);
    expect(again.code).not.toBe(0);
    const user = await s.kwctl(['get', 'users/ada@example.com']);
    expect(user.code).not.toBe(0);
    const locks = await s.kwctl(['get', 'locks', '--format=json']);
    expect(JSON.parse(locks.out)).toEqual([expect.objectContaining({ metadata: expect.objectContaining({ labels: { 'keyway/scim': 'deactivated' } }), spec: expect.objectContaining({ target: { user: 'ada@example.com' }, message: 'deprovisioned by SCIM' }) })]);
    expect((await scim('GET', '/Users/ada%40example.com')).body).toMatchObject({ active: false });

    const refused = await ssoLogin('ada', 'ada-password');
    expect(refused.page.body).toContain('Login failed');
    expect(await refused.p.exited).not.toBe(0);
    expect(refused.p.stderr()).toMatch(/locked: deprovisioned by SCIM/);

    const events = await s.kwctl(['audit', 'search', '--event', 'lock.created', '--format', 'json']);
    expect(events.out).toMatch(/"scim":true/);
    const deleted = await s.kwctl(['audit', 'search', '--event', 'user.delete', '--format', 'json']);
    expect(deleted.out).toMatch(/"scim":true/);

    const on = await scim('PATCH', '/Users/ada%40example.com', { body: { Operations: [{ op: 'replace', value: { active: true } }] } });
    expect(on.status).toBe(200);
    expect(on.body).toMatchObject({ active: true });
    const back = await ssoLogin('ada', 'ada-password');
    await expectLoggedIn(back.p, back.page, 'ada@example.com', 'sso-dev');
  });

  it("takes Entra ID's PATCH form and DELETE, and locks a name that has not logged in yet", async () => {
    // Okta creates users before their first login: answered, nothing stored.
    const created = await scim('POST', '/Users', { body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'cy@example.com', active: true } });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe('/scim/v2/Users/cy%40example.com');
    expect(created.body).toMatchObject({ id: 'cy@example.com', active: true });
    expect((await deactivate('cy@example.com', true)).status).toBe(200);
    const refused = await ssoLogin('cy', 'cy-password');
    expect(refused.page.body).toContain('Login failed');
    expect(await refused.p.exited).not.toBe(0);
    // Re-created in the IdP (POST after a DELETE): the SCIM lock goes, the login works.
    expect((await scim('DELETE', '/Users/cy%40example.com')).status).toBe(204);
    expect((await scim('GET', '/Users/cy%40example.com')).status).toBe(404);
    expect((await scim('POST', '/Users', { body: { userName: 'cy@example.com' } })).status).toBe(201);
    const ok = await ssoLogin('cy', 'cy-password');
    await expectLoggedIn(ok.p, ok.page, 'cy@example.com', 'sso-dev');
    expect((await scim('DELETE', '/Users/cy%40example.com')).status).toBe(204);
    expect((await s.kwctl(['get', 'users/cy@example.com'])).code).not.toBe(0);
  });

  it('refuses missing, wrong, expired and join tokens with a SCIM 401', async () => {
    expectScimError(await scim('GET', '/Users', { token: null }), 401, /bearer token is required/);
    const wrong = await scim('GET', '/Users', { token: 'x'.repeat(43) });
    expectScimError(wrong, 401, /not a valid SCIM token/);
    expect(wrong.headers['www-authenticate']).toMatch(/^Bearer/);
    const join = /The invite token: (\w+)/.exec((await s.kwctl(['tokens', 'add', '--type=kube'])).out)?.[1] ?? '';
    expect(join).not.toBe('');
    expectScimError(await deactivate('ada@example.com', false, join), 401, /not a valid SCIM token/);
    const short = /The SCIM token: (\S+)/.exec((await s.kwctl(['tokens', 'add', '--type=scim', '--ttl=1s'])).out)?.[1] ?? '';
    await new Promise((r) => setTimeout(r, 1500));
    expectScimError(await scim('GET', '/Users', { token: short }), 401, /unknown or expired/);
    // ada is still active: none of these did anything.
    expect((await scim('GET', '/Users/ada%40example.com')).body).toMatchObject({ active: true });
  });

  it('never lets a SCIM token join a host, nor anyone but a proxy relay SCIM', async () => {
    const caPems = readIdentityFile(s.stack.auth.adminIdentityPath).caPems;
    const anonymous = new AuthClient({ address: s.stack.authAddress, caPems });
    const key = generateKeyPair();
    try {
      for (const role of ['Kube', 'Proxy', 'Scim']) {
        await expect(anonymous.call('join', { token, publicKeyPem: key.publicKeyPem, role, hostId: '', nodeName: '', dnsNames: [], ipAddresses: [] })).rejects.toMatchObject({ kind: expect.stringMatching(/AccessDenied|BadParameter/) });
      }
      await expect(anonymous.call('scimRequest', { token, method: 'GET', path: '/Users', query: '', body: '', remoteIp: '' })).rejects.toMatchObject({ kind: 'AccessDenied' });
    } finally {
      anonymous.close();
    }
    const admin = new AuthClient({ address: s.stack.authAddress, identity: readIdentityFile(s.stack.auth.adminIdentityPath) });
    try {
      await expect(admin.call('scimRequest', { token, method: 'GET', path: '/Users', query: '', body: '', remoteIp: '' })).rejects.toThrow(/may not relay SCIM/);
    } finally {
      admin.close();
    }
  });

  it('bounds bodies and answers unknown users, local users and bad requests in SCIM form', async () => {
    const huge = await scim('PATCH', '/Users/ada%40example.com', { raw: Buffer.alloc(70 * 1024, 'a') });
    expectScimError(huge, 413, /over 65536 bytes/);
    expectScimError(await scim('PATCH', '/Users/ada%40example.com', { raw: '['.repeat(1000) + ']'.repeat(1000) }), 400, /nests deeper/);
    expectScimError(await scim('PATCH', '/Users/ada%40example.com', { raw: Buffer.from([0x7b, 0xff, 0x7d]) }), 400, /not UTF-8/);
    expectScimError(await scim('PATCH', '/Users/ada%40example.com', { body: { Operations: [{ op: 'replace', path: 'active', value: 'maybe' }] } }), 400, /true or false/);
    expectScimError(await scim('GET', '/Users/nobody%40example.com'), 404, /no SCIM-managed user/);
    expectScimError(await scim('GET', `/Users?filter=${encodeURIComponent('emails co "x"')}`), 400, /only filter/);
    expectScimError(await scim('GET', '/Groups'), 404, /no SCIM endpoint/);

    expect((await s.kwctl(['users', 'add', 'root@example.com', '--roles=sso-dev'])).code).toBe(0);
    expectScimError(await deactivate('root@example.com'), 409, /local Keyway user/);
    expectScimError(await scim('DELETE', '/Users/root%40example.com'), 409, /local Keyway user/);
    expectScimError(await scim('GET', '/Users/root%40example.com'), 409, /local Keyway user/);
    expectScimError(await scim('POST', '/Users', { body: { userName: 'root@example.com' } }), 409, /local Keyway user/);
    expect((await s.kwctl(['get', 'users/root@example.com'])).code).toBe(0);
    expect((await s.kwctl(['get', 'locks', '--format=json'])).out).not.toContain('root@example.com');
  });

  it('serves the discovery documents and pages the user list', async () => {
    const spc = await scim('GET', '/ServiceProviderConfig');
    expect(spc.body).toMatchObject({ patch: { supported: true }, filter: { supported: true }, authenticationSchemes: [{ type: 'oauthbearertoken' }] });
    expect((await scim('GET', '/ResourceTypes')).body).toMatchObject({ Resources: [{ id: 'User', endpoint: '/Users' }] });
    expect((await scim('GET', '/Schemas')).body).toMatchObject({ Resources: [{ id: 'urn:ietf:params:scim:schemas:core:2.0:User' }] });
    const all = await scim('GET', '/Users?startIndex=1&count=1');
    expect(all.body).toMatchObject({ startIndex: 1, itemsPerPage: 1 });
    expect(all.body['totalResults']).toBeGreaterThanOrEqual(1);
    const names = ((await scim('GET', '/Users')).body['Resources'] as { userName: string }[]).map((u) => u.userName);
    expect(names).toContain('ada@example.com');
    expect(names).not.toContain('root@example.com');
  });
});
