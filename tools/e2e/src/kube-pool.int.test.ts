import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, startProcess, startTcpBalancer, type LongRunning, type TcpBalancer } from '@keyway/testing';

// The production shape, every part its own process: auth, two proxies behind a TCP
// round-robin load balancer, two agents serving the same cluster. Kill a proxy and an
// agent mid-run: new requests keep succeeding. Needs a real cluster (see kube-real).
const adminKubeconfig = process.env['KEYWAY_E2E_KUBECONFIG'];
const agentKubeconfig = process.env['KEYWAY_E2E_AGENT_KUBECONFIG'];
const bin = (name: string) => join(fileURLToPath(new URL('../../..', import.meta.url)), 'node_modules/.bin', name);

const RESOURCES = `kind: role
version: v7
metadata: {name: viewers}
spec:
  allow:
    kubernetes_labels: {env: dev}
    kubernetes_groups: ['{{internal.kubernetes_groups}}']
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list, watch]}]
---
kind: user
version: v2
metadata: {name: jimbo}
spec: {roles: [viewers], traits: {kubernetes_groups: [teleport-view]}}
`;

const CLUSTER_RBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: keyway-pool-view}
subjects: [{kind: Group, name: teleport-view, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: ClusterRole, name: view, apiGroup: rbac.authorization.k8s.io}
`;

describe.skipIf(!adminKubeconfig || !agentKubeconfig)('agent pool and proxy pool behind a load balancer', () => {
  const procs: LongRunning[] = [];
  let dir: string;
  let lb: TcpBalancer;
  let proxies: LongRunning[];
  let agents: LongRunning[];
  let kubeconfig: string;
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ PATH: process.env['PATH'], HOME: dir, KEYWAY_LOG_LEVEL: 'info', ...extra });
  const kwctl = (args: string[], input?: string) => runCommand(bin('kwctl'), ['--data-dir', join(dir, 'auth'), ...args], { env: env(), ...(input ? { input } : {}) });
  const kubectl = (args: string[]) => runCommand('kubectl', ['--kubeconfig', kubeconfig, '--request-timeout=5s', ...args], { env: env(), timeoutMs: 15_000 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-pool-'));
    const auth = startProcess(bin('keyway'), ['start', '--data-dir', join(dir, 'auth'), '--auth-listen-addr', '127.0.0.1:0'], env({ KEYWAY_PROXY_SERVICE__ENABLED: 'false' }));
    procs.push(auth);
    const authAddr = (await auth.waitFor(/auth service \(gRPC, mTLS\):\s+(\S+)/, 60_000))[1] as string;
    expect((await kwctl(['create', '-f', '-'], RESOURCES)).code).toBe(0);
    const token = /The invite token: (\w+)/.exec((await kwctl(['tokens', 'add', '--type=proxy,kube', '--ttl=1h'])).stdout)?.[1] as string;

    proxies = [0, 1].map((i) =>
      startProcess(bin('keyway-proxy'), ['--auth-server', authAddr, '--token', token, '--listen-addr', '127.0.0.1:0', '--data-dir', join(dir, `proxy${i}`)], env()),
    );
    procs.push(...proxies);
    const proxyAddrs = await Promise.all(proxies.map(async (p) => (await p.waitFor(/listening on (\S+?)[,\s]/, 60_000))[1] as string));
    lb = await startTcpBalancer(proxyAddrs);

    agents = [0, 1].map((i) =>
      startProcess(
        bin('keyway-kube-agent'),
        ['--proxy', lb.address, '--token', token, '--kubeconfig', agentKubeconfig as string, '--labels', 'env=dev', '--data-dir', join(dir, `agent${i}`)],
        env(),
      ),
    );
    procs.push(...agents);
    // Each agent reaches both proxies through the balancer.
    for (const a of agents) {
      await a.waitFor(/serving/, 60_000);
      await waitUntil(() => (a.stderr().match(/tunnel to proxy established/g) ?? []).length >= 2, 30_000, () => a.stderr());
    }
    kubeconfig = join(dir, 'jimbo.kubeconfig');
    // Agents serve each context of their kubeconfig under the context's name.
    const cluster = (parseYaml(readFileSync(agentKubeconfig as string, 'utf8')) as { contexts: { name: string }[] }).contexts[0]?.name as string;
    expect((await kwctl(['auth', 'sign', '--user=jimbo', `--kube-cluster=${cluster}`, `--proxy=${lb.address}`, `--out=${kubeconfig}`])).code).toBe(0);
    writeFileSync(join(dir, 'rbac.yaml'), CLUSTER_RBAC);
    expect((await runCommand('kubectl', ['--kubeconfig', adminKubeconfig as string, 'apply', '-f', join(dir, 'rbac.yaml')], { env: env() })).code).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGTERM', 5_000)));
    await lb?.close();
  });

  it('serves kubectl through either proxy and either agent', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await kubectl(['get', 'pods', '-n', 'default']);
      expect(r.code, r.stderr).toBe(0);
    }
    expect([...lb.counts.values()].every((n) => n > 0)).toBe(true);
  });

  it('records kube.request events from separate proxy processes', async () => {
    const r = await kwctl(['audit', 'search', '--event', 'kube.request', '--user', 'jimbo', '--format', 'json', '--limit', '100']);
    const events = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const pods = events.filter((e) => e['resource_kind'] === 'pods');
    expect(pods.length).toBeGreaterThanOrEqual(4);
    expect(pods.every((e) => e['response_code'] === 200 && e['kubernetes_cluster'] !== '')).toBe(true);
  });

  it('keeps serving within 2 s after a proxy and an agent die', async () => {
    proxies[0]?.child.kill('SIGKILL');
    agents[0]?.child.kill('SIGKILL');
    const killedAt = Date.now();
    let firstOk = 0;
    while (Date.now() - killedAt < 10_000) {
      const r = await kubectl(['get', 'pods', '-n', 'default']);
      if (r.code === 0) {
        firstOk = Date.now();
        break;
      }
    }
    expect(firstOk).toBeGreaterThan(0);
    expect(firstOk - killedAt).toBeLessThanOrEqual(2_000);
    for (let i = 0; i < 10; i++) {
      const r = await kubectl(['get', 'pods', '-n', 'default']);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 60_000);
});

async function waitUntil(check: () => boolean, timeoutMs: number, why: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out:\n${why()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
