import { startGithubStandIn, type GithubStandIn, type GithubTeam } from '@keyway/testing/sso';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SsoLoginError, type ConnectorResource, type SsoDriver } from './driver.js';
import { createGithubDriver } from './github.js';

const CLIENT_ID = 'Iv1.keyway-test';
const CLIENT_SECRET = 'github-client-secret-do-not-leak';
const CALLBACK = 'https://proxy.example.com/v1/webapi/github/callback';

let gh: GithubStandIn;
const driver = createGithubDriver({ allowHttpEndpoints: true, timeoutMs: 2000 });

beforeAll(async () => {
  gh = await startGithubStandIn({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
});
afterAll(async () => {
  await gh.close();
});
beforeEach(() => {
  gh.respondWith('/api/v3/user', undefined);
  gh.respondWith('/api/v3/user/teams', undefined);
  gh.signIn('ada', 4242);
  gh.setTeams('ada', [
    { organization: 'Acme', slug: 'devs', name: 'Developers' },
    { organization: 'acme', slug: 'ops', name: 'Operations' },
  ]);
});

function connector(spec: Record<string, unknown> = {}, name = 'github'): ConnectorResource {
  return {
    kind: 'github',
    version: 'v3',
    metadata: { name },
    spec: {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_url: CALLBACK,
      endpoint_url: gh.endpointUrl,
      api_endpoint_url: gh.apiEndpointUrl,
      teams_to_roles: [
        { organization: 'acme', team: 'devs', roles: ['access', 'editor'] },
        { organization: 'other-org', team: 'devs', roles: ['admin'] },
      ],
      ...spec,
    },
  };
}

let requests = 0;
/** begin, the person presses Authorize, and the callback's query: what auth hands to complete. */
async function authorize(c: ConnectorResource, d: SsoDriver = driver) {
  const requestId = `req-${++requests}-${Math.random().toString(36).slice(2)}`;
  const begun = await d.begin({ connector: c, requestId, callbackUrl: CALLBACK });
  const back = await gh.approve(begun.url);
  return { requestId, begun, back, params: Object.fromEntries(back.searchParams) };
}

async function refusal(p: Promise<unknown>): Promise<SsoLoginError> {
  const err: unknown = await p.then(
    () => new Error('the login was accepted'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SsoLoginError);
  const e = err as SsoLoginError;
  // Whatever went wrong, neither the client secret nor a token reaches the message.
  expect(`${e.message} ${JSON.stringify(e.data)}`).not.toMatch(/github-client-secret|gho_/);
  return e;
}

describe('GitHub connector against the GitHub stand-in', () => {
  it('logs in with teams_to_roles: roles, traits, subject and what was received', async () => {
    const c = connector();
    const { requestId, begun, back, params } = await authorize(c);
    const url = new URL(begun.url);
    expect(url.origin + url.pathname).toBe(`${gh.endpointUrl}/login/oauth/authorize`);
    expect(url.searchParams.get('state')).toBe(requestId);
    expect(url.searchParams.get('scope')).toBe('read:org');
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('redirect_uri')).toBe(CALLBACK);
    expect(begun.url).not.toContain(CLIENT_SECRET);
    expect(begun.url).not.toContain(begun.keep['pkce_verifier']);
    expect(back.origin + back.pathname).toBe(CALLBACK);

    const who = await driver.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params });
    expect(who).toEqual({
      username: 'ada',
      roles: ['access', 'editor'],
      traits: { github_teams: ['devs', 'ops'], logins: ['ada'], username: ['ada'] },
      subject: '4242',
      received: { login: 'ada', id: 4242, teams: ['Acme/devs', 'acme/ops'] },
      warnings: [],
      renewal: { access_token: expect.stringMatching(/^gho_/) as unknown as string },
    });
  });

  it('checks the person again with the kept token: current teams, then refused once no team maps or the token is revoked', async () => {
    const c = connector();
    const { requestId, begun, params } = await authorize(c);
    const who = await driver.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params });
    gh.setTeams('ada', [{ organization: 'other-org', slug: 'devs', name: 'Devs' }]);
    const again = await driver.recheck!({ connector: c, subject: who.subject, renewal: who.renewal! });
    expect(again.roles).toEqual(['admin']);
    expect(again.traits['github_teams']).toEqual(['devs']);

    // Someone else's subject with this token: refused (the token answers for ada).
    expect((await refusal(driver.recheck!({ connector: c, subject: '999', renewal: who.renewal! }))).reason).toBe('subject changed');

    gh.setTeams('ada', [{ organization: 'acme', slug: 'visitors', name: 'Visitors' }]);
    expect((await refusal(driver.recheck!({ connector: c, subject: who.subject, renewal: who.renewal! }))).reason).toBe('no team matched');

    gh.setTeams('ada', [{ organization: 'acme', slug: 'devs', name: 'Developers' }]);
    gh.revokeTokens('ada');
    const revoked = await refusal(driver.recheck!({ connector: c, subject: who.subject, renewal: who.renewal! }));
    expect(revoked.reason).toBe('token revoked');
    expect(revoked.message).toMatch(/401/);
    expect((await refusal(driver.recheck!({ connector: c, subject: who.subject, renewal: {} }))).reason).toBe('renewal unavailable');
  });

  it('shows a real authorize page for the signed-in user, and the auto-approve flag redirects', async () => {
    const begun = await driver.begin({ connector: connector(), requestId: 'page', callbackUrl: CALLBACK });
    const page = await fetch(begun.url);
    const text = await page.text();
    expect(page.status).toBe(200);
    expect(text).toContain('<button type="submit" name="decision" value="authorize"');
    expect(text).toContain('<strong>ada</strong>');
    const auto = await fetch(`${begun.url}&keyway_auto_approve=1`, { redirect: 'manual' });
    await auto.body?.cancel();
    const back = new URL(auto.headers.get('location') ?? 'about:blank');
    expect(back.searchParams.get('state')).toBe('page');
    expect(back.searchParams.get('code')).toMatch(/^[0-9a-f]+$/);
  });

  it('matches a team by its name too, and by organization whatever its case', async () => {
    const c = connector({ teams_to_roles: [{ organization: 'ACME', team: 'Operations', roles: ['ops'] }] });
    const { requestId, begun, params } = await authorize(c);
    const who = await driver.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params });
    expect(who.roles).toEqual(['ops']);
  });

  it('accepts the older teams_to_logins: logins are roles, kubernetes groups and users are traits, with a warning', async () => {
    const c = connector({
      teams_to_roles: undefined,
      teams_to_logins: [{ organization: 'acme', team: 'devs', logins: ['access'], kubernetes_groups: ['system:masters'], kubernetes_users: ['ada-sa'] }],
    });
    const { requestId, begun, params } = await authorize(c);
    const who = await driver.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params });
    expect(who.roles).toEqual(['access']);
    expect(who.traits).toEqual({
      github_teams: ['devs', 'ops'],
      logins: ['ada'],
      kubernetes_groups: ['system:masters'],
      kubernetes_users: ['ada-sa'],
      username: ['ada'],
    });
    expect(who.warnings).toHaveLength(1);
    expect(who.warnings[0]).toMatch(/teams_to_logins.*deprecated.*teams_to_roles/);
  });

  it('reads teams across pages (Link headers) and maps one on the last page', async () => {
    const teams: GithubTeam[] = Array.from({ length: 250 }, (_, i) => ({ organization: 'acme', slug: `team-${i}`, name: `Team ${i}` }));
    gh.setTeams('ada', teams);
    const c = connector({ teams_to_roles: [{ organization: 'acme', team: 'team-249', roles: ['last-page'] }] });
    const { requestId, begun, params } = await authorize(c);
    const who = await driver.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params });
    expect(who.roles).toEqual(['last-page']);
    expect(who.traits['github_teams']).toHaveLength(250);
    expect(who.warnings).toEqual([]);
  });

  it('reads at most 10 pages of 100 teams, and says so', async () => {
    const teams: GithubTeam[] = Array.from({ length: 1050 }, (_, i) => ({ organization: 'acme', slug: `team-${i}`, name: `Team ${i}` }));
    gh.setTeams('ada', teams);
    const c = connector({
      teams_to_roles: [
        { organization: 'acme', team: 'team-0', roles: ['first'] },
        { organization: 'acme', team: 'team-1049', roles: ['past-the-bound'] },
      ],
    });
    const { requestId, begun, params } = await authorize(c);
    const who = await driver.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params });
    expect(who.roles).toEqual(['first']);
    expect(who.received['teams']).toHaveLength(1000);
    // The trait is bounded further, like every trait that goes into a certificate.
    expect(who.traits['github_teams']).toHaveLength(256);
    expect(who.warnings.join('\n')).toMatch(/only the first 1000/);
    expect(who.warnings.join('\n')).toMatch(/first 256 of the person's 1000 team slugs/);
  });

  it('refuses a person in no mapped team, naming the connector and a few of their teams', async () => {
    gh.setTeams('ada', Array.from({ length: 8 }, (_, i) => ({ organization: 'acme', slug: `t${i}`, name: `T${i}` })));
    const c = connector({}, 'corp-github');
    const { requestId, begun, params } = await authorize(c);
    const e = await refusal(driver.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params }));
    expect(e.reason).toBe('no team matched');
    expect(e.message).toContain('"corp-github"');
    expect(e.message).toContain('acme/t0, acme/t1, acme/t2, acme/t3, acme/t4 and 3 more');
    expect(e.message).not.toContain('acme/t5');
  });

  it('refuses a callback whose state is not this request (wrong, missing, or another request) before spending the code', async () => {
    const c = connector();
    const mine = await authorize(c);
    const other = await authorize(c);
    const before = gh.tokenRequests;
    for (const params of [
      { ...mine.params, state: 'forged' },
      { code: mine.params['code'] ?? '' },
      other.params, // another login's callback delivered to this request
    ]) {
      const e = await refusal(driver.complete({ connector: c, requestId: mine.requestId, callbackUrl: CALLBACK, keep: mine.begun.keep, params }));
      expect(e.reason).toBe('state mismatch');
    }
    expect(gh.tokenRequests).toBe(before);
    // The code was not spent: the right callback still logs in.
    const who = await driver.complete({ connector: c, requestId: mine.requestId, callbackUrl: CALLBACK, keep: mine.begun.keep, params: mine.params });
    expect(who.username).toBe('ada');
  });

  it('refuses a code used twice', async () => {
    const c = connector();
    const { requestId, begun, params } = await authorize(c);
    const input = { connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params };
    await expect(driver.complete(input)).resolves.toMatchObject({ username: 'ada' });
    const e = await refusal(driver.complete(input));
    expect(e.reason).toBe('code exchange failed');
    expect(e.message).toContain('bad_verification_code');
  });

  it('refuses when GitHub refuses the client secret, without saying the secret', async () => {
    const c = connector({ client_secret: 'github-client-secret-wrong' });
    const { requestId, begun, params } = await authorize(c);
    const e = await refusal(driver.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params }));
    expect(e.reason).toBe('code exchange failed');
    expect(e.message).toContain('incorrect_client_credentials');
  });

  it('refuses a PKCE verifier that is not the one of this request, and a request without one', async () => {
    const c = connector();
    const { requestId, begun, params } = await authorize(c);
    const elsewhere = await driver.begin({ connector: c, requestId: 'x', callbackUrl: CALLBACK });
    expect(elsewhere.keep['pkce_verifier']).not.toBe(begun.keep['pkce_verifier']);
    const e = await refusal(driver.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: elsewhere.keep, params }));
    expect(e.reason).toBe('code exchange failed');
    expect(e.message).toContain('bad_verification_code');

    const again = await authorize(c);
    const none = await refusal(driver.complete({ connector: c, requestId: again.requestId, callbackUrl: CALLBACK, keep: {}, params: again.params }));
    expect(none.reason).toBe('request invalid');
  });

  it('refuses a code exchanged with another redirect_url than the one authorized', async () => {
    const c = connector();
    const { requestId, begun, params } = await authorize(c);
    const e = await refusal(driver.complete({ connector: c, requestId, callbackUrl: 'https://evil.example.com/callback', keep: begun.keep, params }));
    expect(e.reason).toBe('code exchange failed');
    expect(e.message).toContain('redirect_uri_mismatch');
  });

  it('reports a person who pressed Cancel as provider refused', async () => {
    const c = connector();
    const begun = await driver.begin({ connector: c, requestId: 'cancelled', callbackUrl: CALLBACK });
    const back = await gh.deny(begun.url);
    const e = await refusal(driver.complete({ connector: c, requestId: 'cancelled', callbackUrl: CALLBACK, keep: begun.keep, params: Object.fromEntries(back.searchParams) }));
    expect(e.reason).toBe('provider refused');
    expect(e.message).toContain('access_denied');
  });

  it('reports GitHub down as provider unreachable', async () => {
    const down = await startGithubStandIn({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
    const c = connector({ endpoint_url: down.endpointUrl, api_endpoint_url: down.apiEndpointUrl });
    down.signIn('ada', 4242);
    const begun = await driver.begin({ connector: c, requestId: 'down', callbackUrl: CALLBACK });
    const back = await down.approve(begun.url);
    await down.close();
    const e = await refusal(driver.complete({ connector: c, requestId: 'down', callbackUrl: CALLBACK, keep: begun.keep, params: Object.fromEntries(back.searchParams) }));
    expect(e.reason).toBe('provider unreachable');
  });

  it('gives up on an API that does not answer within timeoutMs', async () => {
    gh.respondWith('/api/v3/user', () => undefined); // never answers
    const quick = createGithubDriver({ allowHttpEndpoints: true, timeoutMs: 300 });
    const c = connector();
    const { requestId, begun, params } = await authorize(c, quick);
    const e = await refusal(quick.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params }));
    expect(e.reason).toBe('provider unreachable');
  });

  it('refuses an endless /user/teams answer after a bounded read, not by buffering it', async () => {
    let sent = 0;
    gh.respondWith('/api/v3/user/teams', (_req, res) => {
      const chunk = Buffer.from(`${JSON.stringify({ slug: 'x', name: 'x', organization: { login: 'acme' } })},`.repeat(1000));
      let closed = false;
      res.on('close', () => (closed = true));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[');
      const pump = (): void => {
        while (!closed && sent < 512 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const c = connector();
    const { requestId, begun, params } = await authorize(c);
    const e = await refusal(driver.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params }));
    expect(e.reason).toBe('api error');
    expect(e.message).toMatch(/larger than 1048576 bytes/);
    // 1 MiB read plus what sits in socket buffers: far from the 512 MiB on offer.
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a declared-huge answer at once, and an unusable /user', async () => {
    gh.respondWith('/api/v3/user/teams', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024 * 1024) });
      res.write('[');
    });
    const c = connector();
    const first = await authorize(c);
    const big = await refusal(driver.complete({ connector: c, requestId: first.requestId, callbackUrl: CALLBACK, keep: first.begun.keep, params: first.params }));
    expect(big.reason).toBe('api error');

    gh.respondWith('/api/v3/user', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ login: 'ada\nroot', id: 1 }));
    });
    const second = await authorize(c);
    const bad = await refusal(driver.complete({ connector: c, requestId: second.requestId, callbackUrl: CALLBACK, keep: second.begun.keep, params: second.params }));
    expect(bad.reason).toBe('api error');
  });

  it('refuses an oversized token response without reading it all', async () => {
    gh.respondWith('/login/oauth/access_token', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"access_token":"gho_x","token_type":"bearer","pad":"${'x'.repeat(200 * 1024)}"}`);
    });
    try {
      const c = connector();
      const { requestId, begun, params } = await authorize(c);
      const e = await refusal(driver.complete({ connector: c, requestId, callbackUrl: CALLBACK, keep: begun.keep, params }));
      expect(e.reason).toBe('code exchange failed');
      expect(e.message).toMatch(/token response is larger than/);
    } finally {
      gh.respondWith('/login/oauth/access_token', undefined);
    }
  });

  it('refuses plain-http GitHub endpoints unless allowed (tests only)', async () => {
    const strict = createGithubDriver();
    const e = await refusal(strict.begin({ connector: connector(), requestId: 'r', callbackUrl: CALLBACK }));
    expect(e.reason).toBe('connector invalid');
    const defaults = await strict.begin({ connector: connector({ endpoint_url: undefined, api_endpoint_url: undefined }), requestId: 'r', callbackUrl: CALLBACK });
    expect(new URL(defaults.url).origin).toBe('https://github.com');
  });
});
