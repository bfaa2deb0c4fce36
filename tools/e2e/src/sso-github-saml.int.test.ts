import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGithubStandIn, startTestSamlIdp, type GithubStandIn, type TestSamlIdp } from '@keyway/testing/sso';
import { waitUntil } from './harness.js';
import { browse, expectLoggedIn, printedUrl, startSsoStack, type SsoStack } from './sso-harness.js';

// The acceptance of SSO for GitHub and SAML: the seed's GitHub connector (teams_to_logins with
// kubernetes_groups ["system:masters"]) created with kwctl, kw login against a GitHub
// Enterprise stand-in, then kubectl exec as system:masters, audited; and a SAML provider with
// attributes_to_roles, its assertion signed, posted by the "browser" to the proxy's ACS.

describe('SSO login through GitHub (the seed connector) and SAML, end to end', () => {
  let s: SsoStack;
  let gh: GithubStandIn;
  let idp: TestSamlIdp;

  beforeAll(async () => {
    const stack = await startSsoStack([
      { groups: ['system:masters'], verbs: ['get', 'list', 'watch', 'create'], resources: ['pods', 'pods/exec'], namespaces: ['default'] },
      { groups: ['saml-devs'], verbs: ['get', 'list'], resources: ['pods'], namespaces: ['default'] },
    ]);
    s = stack;
    gh = await startGithubStandIn({ clientId: 'gh-client', clientSecret: 'gh-s3cret' });
    gh.signIn('octocat', 583231);
    gh.setTeams('octocat', [{ organization: 'acme', slug: 'admins', name: 'Admins' }]);
    const acs = `https://${s.proxy}/v1/webapi/saml/acs`;
    idp = await startTestSamlIdp({ sp: { entityId: acs, acs }, users: { 'grace@example.com': { attributes: { groups: ['saml-devs'] } } } });
    const created = await s.kwctl(
      ['create', '-f', '-'],
      `kind: github
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
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: ['*']}]
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
  entity_descriptor: ${JSON.stringify(idp.metadataXml)}
  attributes_to_roles: [{name: groups, value: saml-devs, roles: [saml-dev]}]
`,
    );
    expect(created.code, created.err).toBe(0);
    await stack.startAgent();
  }, 90_000);

  afterAll(async () => {
    await s?.close();
    await gh?.close();
    await idp?.close();
  });

  it('logs octocat in with --auth=github and kubectl exec runs as system:masters, audited', async () => {
    const p = s.login('github');
    const atProxy = await gh.approve(await printedUrl(p));
    expect(atProxy.toString().startsWith(`https://${s.proxy}/v1/webapi/github/callback?`)).toBe(true);
    await expectLoggedIn(p, await browse(atProxy.toString()), 'octocat', 'github-admins');
    expect((await s.kw(['kube', 'login', 'kubernetes', '--insecure'])).code).toBe(0);
    const before = s.api.requests.length;
    const exec = await s.kubectl(['exec', 'web', '-n', 'default', '--', 'sh', '-c', 'echo hello-from-exec']);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout).toContain('hello-from-exec');
    const seen = s.api.requests.slice(before).find((r) => r.path.endsWith('/exec'));
    expect(seen?.headersDistinct['impersonate-group']).toEqual(expect.arrayContaining(['system:masters']));
    const events = await s.kwctl(['audit', 'search', '--user', 'octocat', '--format', 'json', '--limit', '50']);
    const lines = events.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((e) => e['code'] === 'T1001I')).toMatchObject({ method: 'github', connector: 'github', roles: ['github-admins'], warnings: [expect.stringContaining('teams_to_roles')] });
    expect(lines.some((e) => e['event'] === 'exec' || e['event'] === 'session.start')).toBe(true);
    // Recorded too: the session is listed with octocat's command.
    await waitUntil(async () => (await s.kwctl(['recordings', 'ls', '--format', 'json'])).out.includes('hello-from-exec'), 'the exec session to be recorded');
    const recorded = (await s.kwctl(['recordings', 'ls', '--format', 'json'])).out.trim().split('\n').map((l) => JSON.parse(l) as { user: string; pod: string; command: string[] });
    expect(recorded.find((r) => r.command.join(' ').includes('hello-from-exec'))).toMatchObject({ user: 'octocat', pod: 'web' });
  });

  it('refuses octocat once he is no longer in the team, naming the connector and the reason', async () => {
    gh.setTeams('octocat', [{ organization: 'acme', slug: 'interns', name: 'Interns' }]);
    const p = s.login('github');
    const page = await browse((await gh.approve(await printedUrl(p))).toString());
    expect(page.body).toContain('Login failed');
    expect(await p.exited).not.toBe(0);
    expect(p.stderr()).toMatch(/login failed: github connector "github": .*acme\/interns/);
  });

  it('logs grace in through SAML (attributes_to_roles) and kubectl runs as her groups', async () => {
    const p = s.login('entra');
    const authnRequestUrl = await printedUrl(p);
    expect(authnRequestUrl.startsWith(idp.ssoUrl)).toBe(true);
    const form = await idp.respond(authnRequestUrl, 'grace@example.com');
    const landed = await browse(`https://${s.proxy}/v1/webapi/saml/acs`, { form });
    await expectLoggedIn(p, landed, 'grace@example.com', 'saml-dev');
    expect((await s.kw(['kube', 'login', 'kubernetes', '--insecure'])).code).toBe(0);
    const before = s.api.requests.length;
    const pods = await s.kubectl(['get', 'pods', '-o', 'name', '-n', 'default']);
    expect(pods.code, pods.stderr).toBe(0);
    const seen = s.api.requests.slice(before).find((r) => r.path === '/api/v1/namespaces/default/pods');
    expect(seen?.headersDistinct['impersonate-group']).toEqual(expect.arrayContaining(['saml-devs']));
    // The same assertion posted again is refused (its login request is gone, and its id is used).
    const again = await browse(`https://${s.proxy}/v1/webapi/saml/acs`, { form });
    expect(again.status).toBe(400);
  });

  it('refuses a SAML response whose assertion was tampered with', async () => {
    const p = s.login('entra');
    const form = await idp.respond(await printedUrl(p), 'grace@example.com');
    const xml = Buffer.from(form.SAMLResponse, 'base64').toString('utf8').replace('saml-devs', 'saml-admins');
    const page = await browse(`https://${s.proxy}/v1/webapi/saml/acs`, { form: { ...form, SAMLResponse: Buffer.from(xml).toString('base64') } });
    expect(page.body).toContain('Login failed');
    expect(await p.exited).not.toBe(0);
    expect(p.stderr()).toMatch(/saml connector "entra"/);
  });
});
