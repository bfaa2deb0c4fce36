import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGithubStandIn, type GithubStandIn } from '@keyway/testing/sso';
import { startTerminal, type Terminal } from './pty.js';
import { addLocalUser, browse, expectLoggedIn, podReaderRole, printedUrl, startSsoStack, type SsoStack } from './sso-harness.js';

// kubectl after the login expired, as a person meets it: in a terminal, `kw kube credentials`
// (kubectl's exec plugin) logs in again, once for every kubectl running at that moment (one
// password prompt, or one provider URL), while the others wait for it; without a terminal it
// says in one line how to log in. Real kubectl, each on its own pseudo-terminal.

const PASSWORD = 'relogin passphrase 42';

describe('kubectl after the Keyway login expired', () => {
  let s: SsoStack;
  let gh: GithubStandIn;
  const kubectlOnTerminal = (): Terminal => startTerminal('kubectl', ['get', 'pods', '-o', 'name', '-n', 'default'], { ...s.env(), TERM: 'xterm' });

  beforeAll(async () => {
    // Password only: TOTP is tested elsewhere, and a code cannot be used twice, which would need
    // a clock stepped per login (and heartbeats lapsing with it).
    const stack = await startSsoStack([{ groups: ['devs'], verbs: ['get', 'list'], resources: ['pods'], namespaces: ['default'] }], {
      configEnv: { KEYWAY_AUTH_SERVICE__AUTHENTICATION__SECOND_FACTOR: 'off' },
    });
    s = stack;
    gh = await startGithubStandIn({ clientId: 'gh-client', clientSecret: 'gh-s3cret' });
    gh.signIn('octocat', 583231);
    gh.setTeams('octocat', [{ organization: 'acme', slug: 'devs', name: 'Devs' }]);
    const created = await s.kwctl(
      ['create', '-f', '-'],
      `${podReaderRole('dev', 'devs')}---
kind: github
version: v3
metadata: {name: github}
spec:
  client_id: gh-client
  client_secret: gh-s3cret
  endpoint_url: ${gh.endpointUrl}
  api_endpoint_url: ${gh.apiEndpointUrl}
  redirect_url: https://${s.proxy}/v1/webapi/github/callback
  teams_to_roles: [{organization: acme, team: devs, roles: [dev]}]
`,
    );
    expect(created.code, created.err).toBe(0);
    await addLocalUser(s, 'tess', 'dev', PASSWORD);
    await stack.startAgent();
  }, 90_000);

  afterAll(async () => {
    await s?.close();
    await gh?.close();
  });

  /** A certificate with 30 s left is inside kw's refresh margin: due for a new login. */
  const dueTtl = () => '--ttl=30s';

  async function expiringLocalLogin(): Promise<void> {
    const login = await s.kw(['login', `--proxy=${s.proxy}`, '--auth=local', '--user=tess', '--insecure', dueTtl()], `${PASSWORD}\n`);
    expect(login.code, login.stderr).toBe(0);
    const kube = await s.kw(['kube', 'login', 'kubernetes', '--insecure']);
    expect(kube.code, kube.stderr).toBe(0);
  }

  it('without a terminal, says in one line how to log in, and asks nothing', async () => {
    await expiringLocalLogin();
    const r = await s.kubectl(['get', 'pods', '-n', 'default']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`your Keyway login to ${s.proxy} has expired: run \`kw login --proxy=${s.proxy} --auth=local --user=tess\` in a terminal`);
    expect(r.stderr).not.toMatch(/password/i);
  });

  it('in terminals, three kubectl at once get one password prompt and all succeed', async () => {
    await expiringLocalLogin();
    const terminals = [kubectlOnTerminal(), kubectlOnTerminal(), kubectlOnTerminal()];
    const asking = await Promise.any(terminals.map(async (t) => (await t.waitFor(/Enter password for Keyway user tess:/), t)));
    // The others wait for that login rather than asking too.
    for (const t of terminals) if (t !== asking) await t.waitFor(/Waiting for the Keyway login to .* that another kubectl started/);
    asking.type(`${PASSWORD}\r`);
    const codes = await Promise.all(terminals.map((t) => t.exited));
    for (const [i, t] of terminals.entries()) {
      expect(codes[i], t.text()).toBe(0);
      expect(t.text()).toContain('pod/web');
      expect(t.text()).not.toContain(PASSWORD);
    }
    expect(terminals.map((t) => t.text().match(/Enter password/g)?.length ?? 0).reduce((a, b) => a + b)).toBe(1);
    const status = await s.kw(['status']);
    expect(status.stdout).toMatch(/Logged in as:\s+tess/);
    expect(status.stdout).not.toContain('EXPIRED');
  }, 60_000);

  it('a failed login in one terminal fails the waiting kubectl too, instead of asking again', async () => {
    await expiringLocalLogin();
    const terminals = [kubectlOnTerminal(), kubectlOnTerminal()];
    const asking = await Promise.any(terminals.map(async (t) => (await t.waitFor(/Enter password for Keyway user tess:/), t)));
    const waiting = terminals.find((t) => t !== asking) as Terminal;
    await waiting.waitFor(/Waiting for the Keyway login/);
    asking.type('wrong password\r');
    expect(await asking.exited).not.toBe(0);
    expect(await waiting.exited).not.toBe(0);
    expect(waiting.text()).toMatch(/the Keyway login failed \(.+\): run `kw login --proxy=.* --auth=local --user=tess`/);
    // kubectl ran kw again for its next request: that did not ask either.
    expect(asking.text().match(/Enter password/g)).toHaveLength(1);
    expect(waiting.text()).not.toContain('Enter password');
  }, 60_000);

  it('for an SSO login, three kubectl at once lead to one provider login (one URL) and all succeed', async () => {
    const first = s.login('github', [dueTtl()]);
    await expectLoggedIn(first, await browse((await gh.approve(await printedUrl(first))).toString()), 'octocat', 'dev');
    const kube = await s.kw(['kube', 'login', 'kubernetes', '--insecure']);
    expect(kube.code, kube.stderr).toBe(0);
    const exchanges = gh.tokenRequests;

    const terminals = [kubectlOnTerminal(), kubectlOnTerminal(), kubectlOnTerminal()];
    // --browser=none was remembered: the URL is printed, as on a terminal of another machine.
    const [match, asking] = await Promise.any(terminals.map(async (t) => [await t.waitFor(/Open this URL in a browser on this machine to log in:\s+(\S+)/, 15_000), t] as const)).catch((err: unknown) => {
      throw new Error(`no terminal printed the URL:\n${terminals.map((t) => t.text()).join('\n---\n')}`, { cause: err });
    });
    for (const t of terminals) if (t !== asking) await t.waitFor(/Waiting for the Keyway login/);
    const page = await browse((await gh.approve(match[1] as string)).toString());
    expect(page.body).toContain('Login successful');
    const codes = await Promise.all(terminals.map((t) => t.exited));
    for (const [i, t] of terminals.entries()) {
      expect(codes[i], t.text()).toBe(0);
      expect(t.text()).toContain('pod/web');
    }
    expect(terminals.map((t) => t.text().match(/Open this URL/g)?.length ?? 0).reduce((a, b) => a + b)).toBe(1);
    expect(gh.tokenRequests - exchanges).toBe(1);
  }, 60_000);
});
