import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestOidcProvider, type TestOidcProvider } from '@keyway/testing/sso';
import { waitUntil as waitFor } from './harness.js';
import { browse, expectLoggedIn, printedUrl, startSsoStack, type SsoStack } from './sso-harness.js';


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

  it('kwctl sso test logs in through a connector that is not stored, prints what it received and maps, and creates nobody', async () => {
    const yaml = `kind: oidc
version: v3
metadata: {name: okta-test}
spec:
  issuer_url: ${idp.issuer}
  client_id: keyway
  client_secret: oidc-s3cret
  redirect_url: https://${s.proxy}/v1/webapi/oidc/callback
  claims_to_roles: [{claim: groups, value: '^(.*)$', roles: ['team-$1']}]
`;
    const run = s.kwctlLive(['sso', 'test', '-', '--browser=none'], yaml);
    await waitFor(() => /Open this URL/.test(run.err()), 'kwctl to print the login URL');
    const url = /Open this URL in a browser on this machine to log in:\n\s+(\S+)/.exec(run.err())?.[1] as string;
    const page = await browse((await idp.loginWithoutBrowser(url, 'eve', 'eve-password')).toString());
    expect(page.body).toContain('Connector test done');
    expect(await run.done, run.err()).toBe(0);
    expect(JSON.parse(run.out())).toMatchObject({ connector: 'okta-test', kind: 'oidc', username: 'eve@example.com', roles: ['team-contractors'], traits: { groups: ['contractors'] }, received: { groups: ['contractors'] } });
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
