import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchTestBrowser, startGithubStandIn, startTestOidcProvider, startTestSamlIdp, type BrowserPage, type GithubStandIn, type TestBrowser, type TestOidcProvider, type TestSamlIdp } from '@keyway/testing/sso';
import { expectLoggedIn, printedUrl, startSsoStack, type SsoStack } from './sso-harness.js';

// `kw login` as a person does it, in a real headless Chromium: kw prints the provider's URL
// (--browser=none), the browser opens it, a person's clicks fill in the providers' own pages
// (OIDC login and consent forms, GitHub's Authorize button, the SAML IdP's sign-in and its
// auto-posted response), the browser follows the provider → proxy → kw redirects with its own
// cookies and TLS handling, and ends on kw's page. What the HTTP-driven suites do by hand
// (sso-login, sso-github-saml), the browser does here by itself.

const KW_CALLBACK = /^http:\/\/127\.0\.0\.1:\d+\/callback\?/;

describe('SSO login in a real browser (headless Chromium), end to end', () => {
  let s: SsoStack;
  let oidc: TestOidcProvider;
  let gh: GithubStandIn;
  let saml: TestSamlIdp;
  let browser: TestBrowser;
  let shots: string;

  beforeAll(async () => {
    shots = mkdtempSync(join(tmpdir(), 'kw-browser-shots-'));
    browser = await launchTestBrowser();
    const stack = await startSsoStack([
      { groups: ['devs'], verbs: ['get', 'list', 'watch'], resources: ['pods'], namespaces: ['default'] },
      { groups: ['system:masters'], verbs: ['get', 'list', 'watch'], resources: ['pods'], namespaces: ['default'] },
      { groups: ['saml-devs'], verbs: ['get', 'list'], resources: ['pods'], namespaces: ['default'] },
    ]);
    s = stack;
    const oidcCallback = `https://${s.proxy}/v1/webapi/oidc/callback`;
    oidc = await startTestOidcProvider({
      clients: [{ client_id: 'keyway', client_secret: 'oidc-s3cret', redirect_uris: [oidcCallback] }],
      accounts: {
        ada: { password: 'ada-password', claims: { email: 'ada@example.com', email_verified: true, groups: ['devs'] } },
        eve: { password: 'eve-password', claims: { email: 'eve@example.com', email_verified: true, groups: ['contractors'] } },
      },
    });
    gh = await startGithubStandIn({ clientId: 'gh-client', clientSecret: 'gh-s3cret' });
    gh.signIn('octocat', 583231);
    gh.setTeams('octocat', [{ organization: 'acme', slug: 'admins', name: 'Admins' }]);
    const acs = `https://${s.proxy}/v1/webapi/saml/acs`;
    saml = await startTestSamlIdp({ sp: { entityId: acs, acs }, users: { 'grace@example.com': { attributes: { groups: ['saml-devs'] } } } });
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
  issuer_url: ${oidc.issuer}
  client_id: keyway
  client_secret: oidc-s3cret
  redirect_url: ${oidcCallback}
  claims_to_roles: [{claim: groups, value: devs, roles: [sso-dev]}]
---
kind: github
version: v3
metadata: {name: github}
spec:
  client_id: gh-client
  client_secret: gh-s3cret
  display: GitHub
  endpoint_url: ${gh.endpointUrl}
  api_endpoint_url: ${gh.apiEndpointUrl}
  redirect_url: https://${s.proxy}/v1/webapi/github/callback
  teams_to_logins:
    - organization: acme
      team: admins
      logins: [github-admins]
      kubernetes_groups: ["system:masters"]
---
kind: role
version: v7
metadata: {name: github-admins}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: ['{{internal.kubernetes_groups}}']
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list, watch]}]
---
kind: role
version: v7
metadata: {name: saml-dev}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: ['{{external.groups}}']
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list]}]
---
kind: saml
version: v2
metadata: {name: entra}
spec:
  acs: ${acs}
  entity_descriptor: ${JSON.stringify(saml.metadataXml)}
  attributes_to_roles: [{name: groups, value: saml-devs, roles: [saml-dev]}]
`,
    );
    expect(created.code, created.err).toBe(0);
    await stack.startAgent();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await s?.close();
    await oidc?.close();
    await gh?.close();
    await saml?.close();
    if (shots) rmSync(shots, { recursive: true, force: true });
  });

  /** The provider's login form, filled in and sent as a person does. */
  async function signInAtOidc(page: BrowserPage, login: string, password: string): Promise<void> {
    await expect.poll(() => page.title()).toBe('Sign in');
    await page.getByLabel('Login').fill(login);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  /** Presses Continue on the consent page if the provider asks, then waits for kw's (or the proxy's) last page. */
  async function finish(page: BrowserPage): Promise<string> {
    const consent = page.getByRole('button', { name: 'Continue' });
    const last = page.getByRole('heading', { name: /^Login (successful|failed)$/ });
    await consent.or(last).first().waitFor();
    if (await consent.isVisible()) {
      consented.add(page);
      await consent.click();
    }
    await last.waitFor();
    return (await last.textContent()) ?? '';
  }
  const consented = new WeakSet<BrowserPage>();

  /** What the browser shows, in the shape sso-harness's expectLoggedIn reads. */
  async function shown(page: BrowserPage): Promise<{ status: number; body: string; url: string }> {
    return { status: 200, body: await page.content(), url: page.url() };
  }

  it('says how to install Chromium when it is not there', async () => {
    await expect(launchTestBrowser({ executablePath: '/nonexistent/chromium' })).rejects.toThrow(/no Chromium at \/nonexistent\/chromium.*apt-get install -y --no-install-recommends chromium/);
  });

  it('logs ada in through the OIDC provider’s own pages; kubectl then runs as her groups', async () => {
    const p = s.login('okta');
    const url = await printedUrl(p);
    expect(url.startsWith(oidc.issuer)).toBe(true);
    const page = await browser.open(url);
    await signInAtOidc(page, 'ada', 'ada-password');
    expect(await finish(page)).toBe('Login successful');
    expect(consented.has(page)).toBe(true); // a fresh browser has no grant: the provider asked
    expect(page.url()).toMatch(KW_CALLBACK);
    await expectLoggedIn(p, await shown(page), 'ada@example.com', 'sso-dev');

    // One picture of the page a person ends on (kept out of the repository: a temp dir).
    const shot = join(shots, 'login-successful.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(0);
    expect(readFileSync(shot).subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');

    const kube = await s.kw(['kube', 'login', 'kubernetes', '--insecure']);
    expect(kube.code, kube.stderr).toBe(0);
    const before = s.api.requests.length;
    const pods = await s.kubectl(['get', 'pods', '-o', 'name', '-n', 'default']);
    expect(pods.code, pods.stderr).toBe(0);
    expect(pods.stdout).toContain('pod/web');
    const seen = s.api.requests.slice(before).find((r) => r.path === '/api/v1/namespaces/default/pods');
    expect(seen?.headersDistinct['impersonate-group']).toEqual(expect.arrayContaining(['devs']));
    expect(seen?.headers['impersonate-user']).toBe('ada@example.com');
  });

  it('shows the provider’s error for a wrong password, and kw keeps waiting for the browser', async () => {
    const p = s.login('okta');
    const page = await browser.open(await printedUrl(p));
    await signInAtOidc(page, 'ada', 'not-her-password');
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('Invalid login or password.');
    expect(page.url().startsWith(oidc.issuer)).toBe(true);
    // Still the login form, and kw still waiting: nothing went back to it.
    expect(await page.getByLabel('Password').isVisible()).toBe(true);
    expect(p.child.exitCode).toBeNull();
    expect(p.stdout()).not.toMatch(/Logged in as/);
    // kw would wait its three minutes for a right password; end it instead.
    expect(await p.stop('SIGKILL')).toBeNull();
    expect(p.child.signalCode).toBe('SIGKILL');
  });

  it('ends eve, whose claims map to no role, on "Login failed" naming the connector; kw fails with the reason', async () => {
    const p = s.login('okta');
    const page = await browser.open(await printedUrl(p));
    await signInAtOidc(page, 'eve', 'eve-password');
    expect(await finish(page)).toBe('Login failed');
    expect(await page.locator('body').textContent()).toMatch(/okta/);
    expect(await p.exited).not.toBe(0);
    expect(p.stderr()).toMatch(/login failed: oidc connector "okta"/);
  });

  it('logs octocat in by pressing Authorize on the GitHub stand-in’s page', async () => {
    const p = s.login('github');
    const url = await printedUrl(p);
    expect(url.startsWith(`${gh.endpointUrl}/login/oauth/authorize?`)).toBe(true);
    const page = await browser.open(url);
    await page.getByRole('button', { name: 'Authorize' }).click();
    expect(await finish(page)).toBe('Login successful');
    expect(page.url()).toMatch(KW_CALLBACK);
    await expectLoggedIn(p, await shown(page), 'octocat', 'github-admins');
  });

  it('logs grace in through the SAML IdP’s sign-in page, whose response the browser posts to the ACS itself', async () => {
    const p = s.login('entra');
    const url = await printedUrl(p);
    expect(url.startsWith(saml.ssoUrl)).toBe(true);
    const page = await browser.open(url);
    await page.locator('select[name=user]').selectOption('grace@example.com');
    await page.getByRole('button', { name: 'Sign in' }).click();
    // The IdP's answer is a form its script submits: the POST to the ACS is the browser's own.
    expect(await finish(page)).toBe('Login successful');
    expect(page.url()).toMatch(KW_CALLBACK);
    await expectLoggedIn(p, await shown(page), 'grace@example.com', 'saml-dev');
  });
});
