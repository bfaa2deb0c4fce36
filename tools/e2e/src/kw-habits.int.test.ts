import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addLocalUser, podReaderRole, startSsoStack, type SsoStack } from './sso-harness.js';

// tsh's habits in kw: `kw login` alone logs in again where and as whom the last login did,
// status and version in tsh's shapes, help grouped as tsh's, and kw logout leaving no
// kubeconfig behind when there was none before kw wrote one.

const PASSWORD = 'habits passphrase 42';

describe("kw with tsh's habits", () => {
  let s: SsoStack;

  beforeAll(async () => {
    const stack = await startSsoStack([{ groups: ['devs'], verbs: ['get', 'list'], resources: ['pods'], namespaces: ['default'] }], {
      configEnv: { KEYWAY_AUTH_SERVICE__AUTHENTICATION__SECOND_FACTOR: 'off' },
    });
    s = stack;
    const created = await s.kwctl(['create', '-f', '-'], podReaderRole('dev', 'devs'));
    expect(created.code, created.err).toBe(0);
    await addLocalUser(s, 'tess', 'dev', PASSWORD);
    await stack.startAgent();
  }, 90_000);

  afterAll(async () => {
    await s?.close();
  });

  it('asks for --proxy on the first login, naming an example', async () => {
    const r = await s.kw(['login']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('ERROR: --proxy is required for the first login, e.g. kw login --proxy=keyway.example.com --user=alice\n');
  });

  it('logs in again with no flags: the last proxy, user and method, and the CAs it trusted then', async () => {
    const first = await s.kw(['login', `--proxy=${s.proxy}`, '--user=tess', '--insecure'], `${PASSWORD}\n`);
    expect(first.code, first.stderr).toBe(0);
    const again = await s.kw(['login'], `${PASSWORD}\n`);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('Enter password for Keyway user tess:');
    expect(again.stdout).toMatch(/Logged in as:\s+tess/);
    expect(again.stdout).toContain(`Profile URL:        https://${s.proxy}`);
  });

  it('prints status as JSON and YAML, as tsh status --format does', async () => {
    const json = await s.kw(['status', '--format=json']);
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as { active: Record<string, unknown>; profiles: unknown[] };
    expect(doc.active).toMatchObject({ profile_url: `https://${s.proxy}`, username: 'tess', cluster: 'acme', roles: ['dev'], kubernetes_enabled: true, kubernetes_groups: ['devs'], expired: false, auth: 'local' });
    expect(doc.profiles).toEqual([]);
    const yaml = await s.kw(['status', '-f', 'yaml']);
    expect(parseYaml(yaml.stdout)).toEqual(doc);
    const login = await s.kw(['login', '--format=json'], `${PASSWORD}\n`);
    expect((JSON.parse(login.stdout) as { active: { username: string } }).active.username).toBe('tess');
  });

  it("prints the client's version and the proxy's, and --version", async () => {
    const v = await s.kw(['version']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^Keyway v\d+\.\d+\.\d+ git:\S+ node\d+\.\d+\.\d+\n/);
    expect(v.stdout).toContain(`Proxy version: 0.1.0\nProxy: ${s.proxy}\n`);
    expect((await s.kw(['--version'])).stdout).toMatch(/^Keyway v\d+\.\d+\.\d+ git:\S+ node\d+\.\d+\.\d+\n$/);
    expect(JSON.parse((await s.kw(['version', '--format=json'])).stdout)).toMatchObject({ version: '0.1.0', proxyVersion: '0.1.0', proxyPublicAddress: s.proxy });
  });

  it("groups kw --help as tsh's", async () => {
    const help = (await s.kw(['--help'])).stdout;
    const order = ['Core Commands:', 'Kubernetes Commands:', 'Session Commands:'].map((h) => help.indexOf(h));
    expect(order.every((i) => i > 0)).toBe(true);
    expect(help).toMatch(/Core Commands:\n\s+login .*Log in to a cluster/);
  });

  it('logs out leaving no kubeconfig when kw created it, and keeps one that was there', async () => {
    const kubeconfig = join(s.kwHome, '..', 'kubeconfig');
    expect(existsSync(kubeconfig)).toBe(false);
    expect((await s.kw(['kube', 'login', 'kubernetes', '--insecure'])).code).toBe(0);
    expect(existsSync(kubeconfig)).toBe(true);
    expect((await s.kubectl(['get', 'pods', '-o', 'name', '-n', 'default'])).stdout).toContain('pod/web');
    const out = await s.kw(['logout']);
    expect(out.code, out.stderr).toBe(0);
    expect(existsSync(kubeconfig)).toBe(false);

    // A kubeconfig of the person's own stays, with their context selected again.
    const own = 'apiVersion: v1\nkind: Config\nclusters: [{name: mine, cluster: {server: "https://127.0.0.1:1"}}]\ncontexts: [{name: mine, context: {cluster: mine, user: me}}]\nusers: [{name: me, user: {}}]\ncurrent-context: mine\n';
    writeFileSync(kubeconfig, own);
    expect((await s.kw(['login', `--proxy=${s.proxy}`, '--user=tess', '--insecure'], `${PASSWORD}\n`)).code).toBe(0);
    expect((await s.kw(['kube', 'login', 'kubernetes', '--insecure'])).code).toBe(0);
    expect((await s.kw(['logout'])).code).toBe(0);
    const left = parseYaml(readFileSync(kubeconfig, 'utf8')) as { 'current-context': string; contexts: { name: string }[] };
    expect(left['current-context']).toBe('mine');
    expect(left.contexts.map((c) => c.name)).toEqual(['mine']);
  });
});
