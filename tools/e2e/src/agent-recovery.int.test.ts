import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBE_SNI } from '@keyway/client';
import { runCommand, runKubectl, startKubectl, startProcess, startTcpBalancer, startTestKubeApiServer, type LongRunning, type TcpBalancer, type TestKubeApiServer } from '@keyway/testing';

// Issue 10, class 7, as processes: auth, proxies behind a TCP round-robin balancer, two
// agents (the real bins), the test API server as the cluster. Proxies die and come back;
// the agents must stay up, say what happens, and reach every proxy again; a proxy that has
// no tunnel yet for a cluster that exists answers a retryable 503, never 404.
const bin = (name: string) => join(fileURLToPath(new URL('../../..', import.meta.url)), 'node_modules/.bin', name);
const CLUSTER = 'agent'; // agents serve each context of their kubeconfig under its name

const RESOURCES = `kind: role
version: v7
metadata: {name: viewers}
spec:
  allow:
    kubernetes_labels: {env: dev}
    kubernetes_groups: [pool-view]
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list]}]
---
kind: user
version: v2
metadata: {name: jimbo}
spec: {roles: [viewers]}
`;

interface LogLine {
  time: number;
  msg: string;
  proxyId?: string;
}

function logLines(p: LongRunning): LogLine[] {
  return p
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The CA, client certificate and key a kubeconfig written by `kwctl auth sign` embeds. */
function tlsOfKubeconfig(path: string): { ca: string; cert: string; key: string } {
  const kc = parseYaml(readFileSync(path, 'utf8')) as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
  const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString();
  return { ca: b64(kc.clusters[0]?.cluster['certificate-authority-data']), cert: b64(kc.users[0]?.user['client-certificate-data']), key: b64(kc.users[0]?.user['client-key-data']) };
}

/**
 * A TCP forwarder in front of one proxy that the test can shut and reopen on the same port:
 * while shut, the balancer skips it (connection refused), so agents cannot reach that proxy
 * but everything else (heartbeats, the other proxies) goes on.
 */
async function startGate(target: () => number): Promise<{ port: number; shut(): Promise<void>; open(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const port = await freePort();
  let server: net.Server | undefined;
  const open = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((client) => {
        const upstream = net.connect({ host: '127.0.0.1', port: target() });
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => {
            sockets.delete(s);
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const shut = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
    });
  await open();
  return { port, shut, open };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('agents and proxies never give up', () => {
  const procs = new Set<LongRunning>();
  let dir: string;
  let kube: TestKubeApiServer;
  let lb: TcpBalancer;
  let authAddr: string;
  let token: string;
  const ports: number[] = [];
  const proxies: LongRunning[] = [];
  const proxyIds: string[] = [];
  let agents: LongRunning[];
  let kubeconfig: string;
  let userTls: { ca: string; cert: string; key: string };
  let gate1: Awaited<ReturnType<typeof startGate>>;
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ PATH: process.env['PATH'], HOME: dir, KEYWAY_LOG_LEVEL: 'info', ...extra });
  const kwctl = (args: string[], input?: string) => runCommand(bin('kwctl'), ['--data-dir', join(dir, 'auth'), ...args], { env: env(), ...(input ? { input } : {}) });

  async function startProxy(i: number): Promise<{ proc: LongRunning; listeningAt: number; spawnedAt: number }> {
    const spawnedAt = Date.now();
    const proc = startProcess(
      bin('keyway-proxy'),
      ['--auth-server', authAddr, '--token', token, '--listen-addr', `127.0.0.1:${ports[i]}`, '--data-dir', join(dir, `proxy${i}`)],
      env(),
    );
    procs.add(proc);
    const m = await proc.waitFor(/listening on \S+ \(host id (\S+)\)/, 90_000);
    proxies[i] = proc;
    proxyIds[i] = m[1] as string;
    // When it started listening, by its own clock (the agents' log times are on the same one).
    await waitUntil(() => logLines(proc).some((l) => l.msg === 'proxy listening'), 'the proxy to log that it listens');
    return { proc, spawnedAt, listeningAt: logLines(proc).find((l) => l.msg === 'proxy listening')?.time as number };
  }

  async function killProxy(i: number): Promise<void> {
    const p = proxies[i] as LongRunning;
    p.child.kill('SIGKILL');
    await p.exited;
    procs.delete(p);
  }

  /** Times at which `agent` logged a new tunnel to `proxyId`. */
  const connectedAt = (agent: LongRunning, proxyId: string) =>
    logLines(agent)
      .filter((l) => l.proxyId === proxyId && l.msg.startsWith('tunnel to proxy established'))
      .map((l) => l.time);

  /** One GET through proxy i itself (not the balancer), as jimbo: status, Retry-After, body. */
  function getPods(i: number, tlsOf = userTls): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port: ports[i], servername: KUBE_SNI, path: '/api/v1/namespaces/default/pods', ...tlsOf, timeout: 10_000 },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined, body }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    });
  }

  /** GET /readyz of proxy i's web API. */
  function readyz(i: number): Promise<{ status: number; body: { status: string; waiting_for: string[] } }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: ports[i], path: '/readyz', ca: userTls.ca, servername: 'localhost', timeout: 10_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as { status: string; waiting_for: string[] } }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-recovery-'));
    kube = await startTestKubeApiServer({ pods: [{ name: 'web' }] });
    kube.setRbac([{ groups: ['pool-view'], verbs: ['get', 'list'], resources: ['pods'], namespaces: ['default'] }]);
    const auth = startProcess(bin('keyway'), ['start', '--data-dir', join(dir, 'auth'), '--auth-listen-addr', '127.0.0.1:0'], env({ KEYWAY_PROXY_SERVICE__ENABLED: 'false' }));
    procs.add(auth);
    authAddr = (await auth.waitFor(/auth service \(gRPC, mTLS\):\s+(\S+)/, 90_000))[1] as string;
    expect((await kwctl(['create', '-f', '-'], RESOURCES)).code).toBe(0);
    token = /The invite token: (\w+)/.exec((await kwctl(['tokens', 'add', '--type=proxy,kube', '--ttl=1h'])).stdout)?.[1] as string;

    // Three slots behind the balancer; the third proxy joins later (a refused slot is skipped).
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    await Promise.all([startProxy(0), startProxy(1)]);
    // Proxy 1 is behind a gate the test can shut (see the 503 test).
    gate1 = await startGate(() => ports[1] as number);
    lb = await startTcpBalancer([ports[0], gate1.port, ports[2]].map((p) => `127.0.0.1:${p}`));

    agents = [0, 1].map((i) =>
      startProcess(bin('keyway-kube-agent'), ['--proxy', lb.address, '--token', token, '--kubeconfig', kube.agentKubeconfig, '--labels', 'env=dev', '--data-dir', join(dir, `agent${i}`)], env()),
    );
    for (const a of agents) procs.add(a);
    for (const a of agents) {
      await a.waitFor(/serving/, 90_000);
      await waitUntil(() => proxyIds.every((id) => connectedAt(a, id).length > 0), 'each agent to reach both proxies');
    }
    kubeconfig = join(dir, 'jimbo.kubeconfig');
    expect((await kwctl(['auth', 'sign', '--user=jimbo', `--kube-cluster=${CLUSTER}`, `--proxy=${lb.address}`, `--out=${kubeconfig}`])).code).toBe(0);
    userTls = tlsOfKubeconfig(kubeconfig);
  }, 240_000);

  afterAll(async () => {
    await Promise.all([...procs].map((p) => p.stop('SIGTERM', 5_000)));
    await lb?.close();
    await gate1?.shut();
    await kube?.close();
  });

  it('serves through the balancer, and each proxy is ready', async () => {
    const r = await runKubectl(['get', 'pods', '-n', 'default'], { kubeconfig });
    expect(r.code, r.stderr).toBe(0);
    for (const i of [0, 1]) expect(await readyz(i)).toEqual({ status: 200, body: expect.objectContaining({ status: 'ok', waiting_for: [] }) });
  });

  it('an agent whose proxies all die stays up, says so, and reconnects when they are back', async () => {
    const before = agents.map((a) => logLines(a).length);
    await Promise.all([killProxy(0), killProxy(1)]);
    for (const [n, a] of agents.entries()) {
      await waitUntil(() => logLines(a).slice(before[n]).filter((l) => /^tunnel to proxy closed: lost proxy /.test(l.msg)).length >= 2, 'the agent to log both losses');
      await waitUntil(() => logLines(a).slice(before[n]).some((l) => l.msg.startsWith(`waiting for the proxy at ${lb.address}: `)), 'the agent to say what it waits for');
    }
    // Before the fix the agents were gone (exit code 0) about 2 s after the last proxy.
    await new Promise((r) => setTimeout(r, 5_000));
    for (const a of agents) expect(a.child.exitCode, a.stderr()).toBeNull();

    const restartAt = Date.now();
    await Promise.all([startProxy(0), startProxy(1)]);
    for (const a of agents) {
      await waitUntil(() => proxyIds.every((id) => connectedAt(a, id).some((t) => t >= restartAt)), 'the agent to reach both restarted proxies', 60_000);
      expect(logLines(a).some((l) => l.msg.startsWith(`the proxy at ${lb.address} is reachable again`))).toBe(true);
    }
    const r = await runKubectl(['get', 'pods', '-n', 'default'], { kubeconfig });
    expect(r.code, r.stderr).toBe(0);
  }, 180_000);

  it('a restarted proxy without a tunnel yet answers 503 with Retry-After, never 404, and /readyz says what it waits for', async () => {
    // The agents keep running and heartbeating (the cluster exists), but cannot reach proxy 1.
    let retrying: LongRunning | undefined;
    await gate1.shut();
    try {
      await killProxy(1);
      await startProxy(1);
      const r = await getPods(1);
      expect(r.status, r.body).toBe(503);
      expect(r.retryAfter).toBe('1');
      expect(JSON.parse(r.body)).toMatchObject({ kind: 'Status', code: 503, reason: 'ServiceUnavailable' });
      const ready = await readyz(1);
      expect(ready.status).toBe(503);
      expect(ready.body.waiting_for).toEqual([`agent tunnels for cluster ${CLUSTER}`]);
      // kubectl itself retries on the Retry-After and succeeds once the tunnel is there
      // (a --server override drops the kubeconfig's tls-server-name: give it again).
      retrying = startKubectl(['--server', `https://127.0.0.1:${ports[1]}`, '--tls-server-name', KUBE_SNI, '-v=6', 'get', 'pods', '-n', 'default'], { kubeconfig, cacheDir: join(dir, 'kube-cache-retry') });
      const k = retrying;
      await waitUntil(() => /503 Service Unavailable/.test(k.stderr()) || k.child.exitCode !== null, 'kubectl to meet the 503');
    } finally {
      await gate1.open();
    }
    expect(await retrying?.exited, retrying?.stderr()).toBe(0);
    expect(retrying?.stdout()).toContain('web');
    const statuses = new Map<number, number>();
    await waitUntil(async () => {
      const r = await getPods(1);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      return r.status === 200;
    }, 'the restarted proxy to serve the cluster');
    expect([...statuses.keys()].every((s) => s === 200 || s === 503)).toBe(true);
    await waitUntil(async () => (await readyz(1)).status === 200, '/readyz to turn 200');
    // A cluster that does not exist is still 404 with the usual message.
    expect((await kwctl(['auth', 'sign', '--user=jimbo', '--kube-cluster=nowhere', `--proxy=127.0.0.1:${ports[1]}`, `--out=${join(dir, 'nowhere.kubeconfig')}`])).code).toBe(0);
    const nowhere = await getPods(1, tlsOfKubeconfig(join(dir, 'nowhere.kubeconfig')));
    expect(nowhere.status).toBe(404);
    expect(JSON.parse(nowhere.body)).toMatchObject({ code: 404, message: 'keyway: Kubernetes cluster "nowhere" not found; you can access: agent' });
  }, 120_000);

  it('a restarted proxy gets a tunnel from every agent soon after, with no 404 through it meanwhile', async () => {
    await killProxy(0);
    const started = Date.now();
    const statuses = new Map<number, number>();
    let polling = true;
    // Hammer proxy 0 itself from before it listens until both agents have a tunnel to it.
    const poller = (async () => {
      while (polling) {
        const r = await getPods(0).catch(() => undefined);
        if (r) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        else await new Promise((res) => setTimeout(res, 20));
      }
    })();
    const { listeningAt, spawnedAt } = await startProxy(0);
    const id = proxyIds[0] as string;
    const times: number[] = [];
    for (const a of agents) {
      await waitUntil(() => connectedAt(a, id).some((t) => t >= started), 'the agent to reach the restarted proxy');
      times.push((connectedAt(a, id).find((t) => t >= started) as number) - listeningAt);
    }
    console.log(`restarted proxy: process start to "proxy listening" ${listeningAt - spawnedAt} ms`);
    polling = false;
    await poller;
    console.log(`restarted proxy: up ${listeningAt - started} ms after the kill; agent tunnels ${times.join(', ')} ms after it logged "proxy listening"; answers meanwhile ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(statuses.has(404)).toBe(false);
    expect([...statuses.keys()].every((s) => s === 200 || s === 503)).toBe(true);
  }, 120_000);

  it('a new proxy is announced to the agents over their tunnels and gets a tunnel from each', async () => {
    const started = Date.now();
    const { listeningAt, spawnedAt } = await startProxy(2);
    const id = proxyIds[2] as string;
    const times: number[] = [];
    const sources: string[] = [];
    for (const a of agents) {
      await waitUntil(() => connectedAt(a, id).length > 0, 'the agent to reach the new proxy', 60_000);
      times.push((connectedAt(a, id)[0] as number) - listeningAt);
      const learned = logLines(a).find((l) => l.time >= started && l.msg.startsWith(`learned of proxy ${id}`));
      sources.push(/\(from ([^)]+)\)/.exec(learned?.msg ?? '')?.[1] ?? 'unknown');
    }
    console.log(`new proxy ${id}: process start to "proxy listening" ${listeningAt - spawnedAt} ms; agent tunnels ${times.join(', ')} ms after it logged "proxy listening"; learned from ${sources.join(', ')}`);
    const r = await runKubectl(['get', 'pods', '-n', 'default'], { kubeconfig });
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);

  it('an agent started before its proxy is reachable waits for it, then joins and reaches every proxy', async () => {
    const port = await freePort();
    const late = startProcess(
      bin('keyway-kube-agent'),
      ['--proxy', `127.0.0.1:${port}`, '--token', token, '--kubeconfig', kube.agentKubeconfig, '--labels', 'env=dev', '--data-dir', join(dir, 'agent-late')],
      env(),
    );
    procs.add(late);
    await waitUntil(() => late.stderr().includes(`waiting for the proxy at 127.0.0.1:${port} to join the cluster: `), 'the agent to say what it waits for', 60_000);
    await new Promise((r) => setTimeout(r, 3_000));
    expect(late.child.exitCode, late.stderr()).toBeNull();
    // The balancer comes up at the address the agent was given.
    const lateLb = await startTcpBalancer(ports.map((p) => `127.0.0.1:${p}`), { port });
    try {
      await late.waitFor(/serving/, 60_000);
      await waitUntil(() => proxyIds.every((id) => connectedAt(late, id).length > 0), 'the late agent to reach all three proxies', 60_000);
    } finally {
      await late.stop('SIGTERM', 5_000);
      procs.delete(late);
      await lateLb.close();
    }
  }, 180_000);

  it('an agent whose join is refused does not retry: it exits non-zero and says why', async () => {
    const refused = startProcess(
      bin('keyway-kube-agent'),
      ['--proxy', lb.address, '--token', 'not-a-token', '--kubeconfig', kube.agentKubeconfig, '--data-dir', join(dir, 'agent-refused')],
      env(),
    );
    procs.add(refused);
    const code = await Promise.race([refused.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 60_000))]);
    procs.delete(refused);
    expect(code, refused.stderr()).toBe(1);
    expect(refused.stderr()).toMatch(/keyway-kube-agent: .*token/i);
  }, 90_000);
});
