import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGithubStandIn, startTestOidcProvider, type GithubStandIn, type TestOidcProvider } from '@keyway/testing/sso';
import { browse, expectLoggedIn, podReaderRole, printedUrl, startSsoStack, type SsoStack } from './sso-harness.js';

// The provider's word at certificate renewal: kw asks for a new certificate (here: its cached
// kube certificate is gone, as when it expires or another cluster is used), auth asks GitHub
// (the kept token) or the OIDC provider (the refresh token) again, and the person's roles
// follow the provider's current answer; once it no longer grants a role, or no longer knows
// the person, the renewal is refused and the SSO user is gone.

describe('SSO users are checked with their provider again at renewal', () => {
  let s: SsoStack;
  let gh: GithubStandIn;
  let idp: TestOidcProvider;
  /** What kw has when its cached kube certificate expired: only the login. */
  const dropKubeCerts = () => rmSync(join(s.kwHome, 'profiles', s.proxy.replace(/[^A-Za-z0-9._-]/g, '_'), 'kube'), { recursive: true, force: true });

  beforeAll(async () => {
    const stack = await startSsoStack(
      [
        { groups: ['system:masters'], verbs: ['get', 'list'], resources: ['pods'], namespaces: ['default'] },
        { groups: ['viewers'], verbs: ['get', 'list'], resources: ['pods'], namespaces: ['default'] },
        { groups: ['devs'], verbs: ['get', 'list'], resources: ['pods'], namespaces: ['default'] },
      ],
      { ssoRecheckIntervalMs: 0 },
    );
    s = stack;
    gh = await startGithubStandIn({ clientId: 'gh-client', clientSecret: 'gh-s3cret' });
    gh.signIn('octocat', 583231);
    gh.setTeams('octocat', [{ organization: 'acme', slug: 'admins', name: 'Admins' }]);
    const oidcCallback = `https://${s.proxy}/v1/webapi/oidc/callback`;
    idp = await startTestOidcProvider({
      clients: [{ client_id: 'keyway', client_secret: 'oidc-s3cret', redirect_uris: [oidcCallback] }],
      accounts: { ada: { password: 'ada-password', claims: { email: 'ada@example.com', email_verified: true, groups: ['devs'] } } },
    });
    const role = podReaderRole;
    const created = await s.kwctl(
      ['create', '-f', '-'],
      [
        role('github-admins', '"system:masters"'),
        role('github-viewers', 'viewers'),
        role('sso-dev', "'{{external.groups}}'"),
        `kind: github
version: v3
metadata: {name: github}
spec:
  client_id: gh-client
  client_secret: gh-s3cret
  endpoint_url: ${gh.endpointUrl}
  api_endpoint_url: ${gh.apiEndpointUrl}
  redirect_url: https://${s.proxy}/v1/webapi/github/callback
  teams_to_roles:
    - {organization: acme, team: admins, roles: [github-admins]}
    - {organization: acme, team: viewers, roles: [github-viewers]}
`,
        `kind: oidc
version: v3
metadata: {name: okta}
spec:
  issuer_url: ${idp.issuer}
  client_id: keyway
  client_secret: oidc-s3cret
  redirect_url: ${oidcCallback}
  scope: [offline_access]
  prompt: consent
  claims_to_roles: [{claim: groups, value: devs, roles: [sso-dev]}]
`,
      ].join('---\n'),
    );
    expect(created.code, created.err).toBe(0);
    await stack.startAgent();
  }, 90_000);

  afterAll(async () => {
    await s?.close();
    await gh?.close();
    await idp?.close();
  });

  /** kubectl get pods; the groups the proxy impersonated, or kubectl's error. */
  async function getPods(): Promise<{ code: number | null; groups: string[]; stderr: string }> {
    const before = s.api.requests.length;
    const r = await s.kubectl(['get', 'pods', '-o', 'name', '-n', 'default']);
    const seen = s.api.requests.slice(before).find((q) => q.path === '/api/v1/namespaces/default/pods');
    return { code: r.code, groups: seen?.headersDistinct['impersonate-group'] ?? [], stderr: r.stderr };
  }

  it('GitHub: new teams give new roles at the next renewal; no mapped team ends the user', async () => {
    const p = s.login('github');
    await expectLoggedIn(p, await browse((await gh.approve(await printedUrl(p))).toString()), 'octocat', 'github-admins');
    expect((await s.kw(['kube', 'login', 'kubernetes', '--insecure'])).code).toBe(0);
    let pods = await getPods();
    expect(pods.code, pods.stderr).toBe(0);
    expect(pods.groups).toContain('system:masters');

    // Moved to another team at GitHub: the renewal carries the role that team maps to.
    gh.setTeams('octocat', [{ organization: 'acme', slug: 'viewers', name: 'Viewers' }]);
    dropKubeCerts();
    pods = await getPods();
    expect(pods.code, pods.stderr).toBe(0);
    expect(pods.groups).toContain('viewers');
    expect(pods.groups).not.toContain('system:masters');
    const user = await s.kwctl(['get', 'users/octocat', '--format=json']);
    expect(JSON.parse(user.out)).toMatchObject([{ spec: { roles: ['github-viewers'], created_by: { connector: { type: 'github', id: 'github' } } } }]);

    // Out of every mapped team: the next renewal is refused, naming the connector and why, and
    // the SSO user is deleted (which ends what is open on every proxy).
    gh.setTeams('octocat', [{ organization: 'acme', slug: 'interns', name: 'Interns' }]);
    dropKubeCerts();
    pods = await getPods();
    expect(pods.code).not.toBe(0);
    expect(pods.stderr).toMatch(/github connector "github" no longer grants octocat access: octocat is in no team/);
    expect((await s.kwctl(['get', 'users/octocat'])).code).not.toBe(0);
    const events = await s.kwctl(['audit', 'search', '--event', 'user.login', '--user', 'octocat', '--format', 'json']);
    const failed = events.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e['code'] === 'T1001W');
    expect(failed).toEqual([expect.objectContaining({ connector: 'github', reason: 'no team matched', renewal: true })]);
  });

  it('OIDC: the refresh token is refused once the person is removed at the provider, and the renewal with it', async () => {
    const p = s.login('okta');
    await expectLoggedIn(p, await browse((await idp.loginWithoutBrowser(await printedUrl(p), 'ada', 'ada-password')).toString()), 'ada@example.com', 'sso-dev');
    expect((await s.kw(['kube', 'login', 'kubernetes', '--insecure'])).code).toBe(0);
    let pods = await getPods();
    expect(pods.code, pods.stderr).toBe(0);
    expect(pods.groups).toContain('devs');

    idp.removeAccount('ada');
    dropKubeCerts();
    pods = await getPods();
    expect(pods.code).not.toBe(0);
    expect(pods.stderr).toMatch(/oidc connector "okta" no longer grants ada@example\.com access: .*refused the refresh token/);
    expect((await s.kwctl(['get', 'users/ada@example.com'])).code).not.toBe(0);
  });
});
