import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOTP, Secret } from 'otpauth';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { kwctlIn, startTestAgent, waitUntil } from './harness.js';
import { runCommand, startTestKubeApiServer, type TestKubeApiServer } from '@keyway/testing';

// The seed's flow with kw as a user runs it (the real binary, the real kubectl): signup,
// login with password + TOTP, kube ls, kube login, kubectl through the exec plugin,
// the certificate cache and its lock, an expired login, logout.

const kwBin = fileURLToPath(new URL('../../../apps/kw/bin/kw.mjs', import.meta.url));
const PASSWORD = 'correct horse battery staple';
const RESOURCES = `kind: role
version: v7
metadata: {name: junior-devs}
spec:
  allow:
    kubernetes_labels: {env: [dev, staging]}
    kubernetes_groups: ['{{internal.kubernetes_groups}}']
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list, watch]}]
---
kind: user
version: v2
metadata: {name: jimbo}
spec:
  roles: ['junior-devs']
  traits:
    kubernetes_groups: ['teleport-view']
`;

describe('kw: the seed flow with kubectl', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let agent: KubeAgent;
  let dir: string;
  let proxy: string;
  let secret = '';
  let issued = 0;
  // Logins step through TOTP windows on a clock ten minutes back, as in auth-kwctl.
  let offset = -10 * 60_000;
  const clock = () => new Date(Date.now() + offset);
  const nextCode = () => {
    offset += 30_000;
    return new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' }).generate({ timestamp: clock().getTime() });
  };

  const env = () => ({ PATH: process.env['PATH'], HOME: dir, KW_HOME: join(dir, 'kw'), KUBECONFIG: join(dir, 'kubeconfig') });
  const kw = (args: string[], input = '') => runCommand(process.execPath, [kwBin, ...args], { env: env(), input, timeoutMs: 30_000 });
  const kubectl = (args: string[]) => runCommand('kubectl', args, { env: env(), timeoutMs: 30_000 });
  const kwctl = kwctlIn(() => join(dir, 'auth'));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-e2e-'));
    api = await startTestKubeApiServer();
    api.addPod({ name: 'web', namespace: 'default' });
    api.setRbac([{ groups: ['teleport-view'], verbs: ['get', 'list', 'watch'], resources: ['pods'], namespaces: ['default'] }]);
    const config = loadConfig({
      env: { KEYWAY_DATA_DIR: join(dir, 'auth'), KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'acme' },
    });
    stack = await startStack(config, silentLogger(), clock);
    proxy = stack.proxyAddress as string;
    // Count issuances of kube certificates, to see the cache and the lock work.
    const api_ = stack.auth.api;
    const original = api_.generateUserCerts.bind(api_);
    api_.generateUserCerts = (...a) => {
      issued++;
      return original(...a);
    };
    expect((await kwctl(['create', '-f', '-'], RESOURCES)).code).toBe(0);
    agent = await startTestAgent(stack, { kubeconfig: api.agentKubeconfig, cluster: 'kubernetes', labels: { env: 'dev' }, dir, kwctl, logger: silentLogger() });
    await waitUntil(async () => (await stack.auth.store.listPresence('kube_server', clock())).length > 0, 'the agent heartbeat');
    // A kubeconfig the user already had, with its own selected context.
    writeFileSync(
      join(dir, 'kubeconfig'),
      'apiVersion: v1\nkind: Config\nclusters: [{name: other, cluster: {server: "https://other.example:6443"}}]\nusers: [{name: other, user: {token: abc}}]\ncontexts: [{name: other, context: {cluster: other, user: other}}]\ncurrent-context: other\n',
      { mode: 0o600 },
    );
  }, 90_000);

  afterAll(async () => {
    await agent?.close();
    await stack?.close();
    await api?.close();
  });

  it('signs jimbo up through the proxy, with a QR code for the authenticator', async () => {
    const reset = await kwctl(['users', 'reset', 'jimbo']);
    const token = /^ {2}([0-9a-f]{48})$/m.exec(reset.out)?.[1] as string;
    const info = await (async () => {
      const { AuthClient } = await import('@keyway/client');
      const c = new AuthClient({ address: proxy, insecureSkipVerify: true });
      try {
        return await c.call('getUserToken', { token });
      } finally {
        c.close();
      }
    })();
    secret = info.totpSecret;
    const code = new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' }).generate({ timestamp: clock().getTime() });
    const r = await kw(['signup', `--proxy=${proxy}`, `--token=${token}`, '--insecure'], `${PASSWORD}\n${PASSWORD}\n${code}\n`);
    expect(r.stderr).toMatch(/--insecure/);
    expect(r.stdout).toMatch(/otpauth:\/\/totp\//);
    expect(r.stdout).toMatch(/[▀▄█]/); // the QR code
    expect(r.stdout).toMatch(/User "jimbo" is ready to log in/);
    expect(r.code).toBe(0);
  });

  it('logs in with password and TOTP and prints the status block', async () => {
    const r = await kw(['login', `--proxy=${proxy}`, '--auth=local', '--user=jimbo', '--insecure'], `${PASSWORD}\n${nextCode()}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Logged in as:\s+jimbo/);
    expect(r.stdout).toMatch(/Roles:\s+junior-devs/);
    expect(r.stdout).toMatch(/Kubernetes groups:\s+teleport-view/);
    expect(r.stdout).toMatch(/Valid until:/);
    const keyPath = join(dir, 'kw', 'profiles', proxy.replace(/[^A-Za-z0-9._-]/g, '_'), 'key.pem');
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    expect((await kw(['status'])).stdout).toMatch(/Logged in as:\s+jimbo/);
  });

  /** The test clock jumps a TOTP step per login; heartbeats catch up within their interval. */
  const agentHeartbeatFresh = async () => {
    const deadline = Date.now() + 15_000;
    while ((await stack.auth.store.listPresence('kube_server', clock())).length === 0) {
      if (Date.now() > deadline) throw new Error('no fresh agent heartbeat');
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('lists the clusters jimbo may access', async () => {
    await agentHeartbeatFresh();
    const r = await kw(['kube', 'ls']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Kube Cluster Name\s+Labels\s+Selected/);
    expect(r.stdout).toMatch(/kubernetes\s+env=dev/);
    const json = JSON.parse((await kw(['kube', 'ls', '--format', 'json'])).stdout) as { kube_cluster_name: string }[];
    expect(json.map((c) => c.kube_cluster_name)).toEqual(['kubernetes']);
    const unknown = await kw(['kube', 'login', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/"nope" not found; you can access: kubernetes/);
  });

  it('writes a kubeconfig that plain kubectl uses, keeping the other entries', async () => {
    await agentHeartbeatFresh();
    const r = await kw(['kube', 'login', 'kubernetes', '--insecure']);
    expect(r.code, r.stderr).toBe(0);
    const kc = parseYaml(readFileSync(join(dir, 'kubeconfig'), 'utf8')) as {
      'current-context': string;
      clusters: { name: string; cluster: Record<string, string> }[];
      contexts: { name: string }[];
      users: { name: string; user: { exec?: { command: string; args: string[]; apiVersion: string } } }[];
    };
    expect(statSync(join(dir, 'kubeconfig')).mode & 0o777).toBe(0o600);
    expect(kc['current-context']).toBe('acme-kubernetes');
    expect(kc.contexts.map((c) => c.name).sort()).toEqual(['acme-kubernetes', 'other']);
    const cluster = kc.clusters.find((c) => c.name === 'acme')?.cluster;
    expect(cluster?.['server']).toBe(`https://${proxy}`);
    expect(cluster?.['tls-server-name']).toBe('kube-teleport-proxy-alpn.keyway.cluster.local');
    const exec = kc.users.find((u) => u.name === 'acme-kubernetes')?.user.exec;
    expect(exec?.apiVersion).toBe('client.authentication.k8s.io/v1beta1');
    expect(exec?.command).toBe(kwBin);
    expect(exec?.args).toEqual(['kube', 'credentials', '--kube-cluster=kubernetes', '--keyway-cluster=acme', `--proxy=${proxy}`]);

    const pods = await kubectl(['get', 'pods', '-o', 'name', '-n', 'default']);
    expect(pods.stdout, pods.stderr).toBe('pod/web\n');
    const seen = api.requests.filter((q) => q.resource === 'pods').at(-1);
    expect(seen?.user).toMatchObject({ username: 'jimbo', groups: expect.arrayContaining(['teleport-view', 'system:authenticated']) });
    const secrets = await kubectl(['get', 'secrets', '-n', 'kube-system']);
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toMatch(/Forbidden.*jimbo.*junior-devs/);
  });

  it('reuses the cached certificate, and issues once for 8 parallel kubectl calls', async () => {
    issued = 0;
    for (let i = 0; i < 3; i++) expect((await kubectl(['get', 'pods', '-n', 'default'])).code).toBe(0);
    expect(issued).toBe(0);
    const cache = join(dir, 'kw', 'profiles', proxy.replace(/[^A-Za-z0-9._-]/g, '_'), 'kube', 'kubernetes.json');
    rmSync(cache);
    const runs = await Promise.all(Array.from({ length: 8 }, () => kubectl(['get', 'pods', '-n', 'default', '-o', 'name'])));
    for (const r of runs) expect(r.stdout, r.stderr).toBe('pod/web\n');
    expect(issued).toBe(1);
    expect(existsSync(cache)).toBe(true);
  });

  it('names contexts, sets namespaces and impersonation, and logs into every cluster with --all', async () => {
    const r = await kw(['kube', 'login', 'kubernetes', '--set-context-name=mine', '-n', 'default', '--as=jimbo', '--as-groups=teleport-view']);
    expect(r.code, r.stderr).toBe(0);
    const kc = parseYaml(readFileSync(join(dir, 'kubeconfig'), 'utf8')) as {
      'current-context': string;
      contexts: { name: string; context: Record<string, string> }[];
      users: { name: string; user: Record<string, unknown> }[];
    };
    expect(kc['current-context']).toBe('mine');
    expect(kc.contexts.find((c) => c.name === 'mine')?.context).toMatchObject({ cluster: 'acme', namespace: 'default' });
    expect(kc.users.find((u) => u.name === 'acme-kubernetes')?.user).toMatchObject({ as: 'jimbo', 'as-groups': ['teleport-view'] });
    const pods = await kubectl(['get', 'pods', '-o', 'name']);
    expect(pods.stdout, pods.stderr).toBe('pod/web\n');
    const all = await kw(['kube', 'login', '--all']);
    expect(all.stdout).toMatch(/Logged into Kubernetes cluster "kubernetes"/);
  });

  it('says to log in again when the login has expired, without prompting', async () => {
    const profileDir = join(dir, 'kw', 'profiles', proxy.replace(/[^A-Za-z0-9._-]/g, '_'));
    const saved = { cert: readFileSync(join(profileDir, 'cert.pem'), 'utf8'), key: readFileSync(join(profileDir, 'key.pem'), 'utf8') };
    // A login whose certificate is already past (its clock is ten minutes back).
    const r = await kw(['login', `--proxy=${proxy}`, '--user=jimbo', '--insecure', '--ttl=1m'], `${PASSWORD}\n${nextCode()}\n`);
    expect(r.code, r.stderr).toBe(0);
    rmSync(join(profileDir, 'kube'), { recursive: true, force: true });
    const creds = await kw(['kube', 'credentials', '--kube-cluster=kubernetes', '--keyway-cluster=acme', `--proxy=${proxy}`]);
    expect(creds.code).toBe(1);
    expect(creds.stderr.trim().split('\n')).toHaveLength(1);
    expect(creds.stderr).toMatch(/login .* has expired: run `kw login --proxy=\S+ --auth=local --user=jimbo` in a terminal/);
    writeFileSync(join(profileDir, 'cert.pem'), saved.cert, { mode: 0o600 });
    writeFileSync(join(profileDir, 'key.pem'), saved.key, { mode: 0o600 });
  });

  it('logs out, removing only what kw wrote and restoring the previous context', async () => {
    const r = await kw(['logout']);
    expect(r.code, r.stderr).toBe(0);
    const kc = parseYaml(readFileSync(join(dir, 'kubeconfig'), 'utf8')) as { 'current-context': string; contexts: { name: string }[]; clusters: { name: string }[] };
    expect(kc['current-context']).toBe('other');
    // Every context kw wrote (acme-kubernetes, mine) is gone; the user's own stays.
    expect(kc.contexts.map((c) => c.name)).toEqual(['other']);
    expect(kc.clusters.map((c) => c.name)).toEqual(['other']);
    expect(existsSync(join(dir, 'kw', 'profiles', proxy.replace(/[^A-Za-z0-9._-]/g, '_')))).toBe(false);
    expect((await kw(['status'])).stderr).toMatch(/not logged in/);
  });
});
