/**
 * `npm run bench -- proxy`: the cost of going through Keyway. One load generator measures,
 * in the same run, a stand-in API server directly (TLS) and the same server through the
 * proxy and an agent (mTLS, authorization on): latency at concurrency 1, throughput at
 * concurrency 32, proxy memory while a 1 GiB list streams through, and proxy memory per
 * idle agent tunnel (1,000 tunnels). The stand-in, the proxy and the agent each run as their
 * own process, as in production, so memory and wake-ups are measured as they would be there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { KUBE_SNI, readIdentityFile } from '@keyway/client';
import { PROXY_SERVER_NAME, TUNNEL_ALPN, serveTunnel, type KubeBackend } from '@keyway/tunnel';
import { adminDatabaseUrl } from '@keyway/testing';
import type { Benchmark } from './main.js';
import type { UpstreamInfo } from './upstream.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

async function createDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `keyway_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminDatabaseUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(adminDatabaseUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminDatabaseUrl() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}
const bin = (name: string) => join(root, 'node_modules/.bin', name);
const LIST_BYTES = 1024 ** 3;

export const benchmark: Benchmark = {
  description: 'kubectl-style requests direct vs through proxy + agent: latency, throughput, memory',
  async run(args) {
    const quick = args.includes('--quick');
    const dir = mkdtempSync(join(tmpdir(), 'kw-bench-'));
    const procs: ChildProcess[] = [];
    let dbCleanup: (() => Promise<void>) | undefined;
    try {
      const upstream = await startUpstream(procs);
      // Keyway: auth + proxy in one process, an agent in another.
      // Postgres, as in production: the embedded database would run on the proxy's own thread.
      const database = await createDatabase();
      dbCleanup = database.drop;
      const env = { ...process.env, KEYWAY_LOG_LEVEL: 'warn', KEYWAY_DATABASE_URL: database.url, KEYWAY_CA_KEY: 'bench-ca-key-0123456789abcdef' };
      const kubeListener = args.includes('--kube-listener');
      const keyway = start(
        bin('keyway'),
        ['start', '--data-dir', join(dir, 'auth'), '--auth-listen-addr', '127.0.0.1:0', '--proxy-listen-addr', '127.0.0.1:0'],
        kubeListener ? { ...env, KEYWAY_PROXY_SERVICE__KUBERNETES__LISTEN_ADDR: '127.0.0.1:0' } : env,
        procs,
      );
      const proxyAddr = (await waitFor(keyway, /proxy \(kubectl, agents\):\s+(\S+)/))[1] as string;
      // With --kube-listener, kubectl's traffic uses the dedicated Kubernetes port instead of the shared one.
      const kubeAddr = kubeListener ? ((await waitFor(keyway, /kube listener:\s+(\S+)/))[1] as string) : proxyAddr;
      const kwctl = (a: string[], input?: string) => run(bin('kwctl'), ['--data-dir', join(dir, 'auth'), ...a], env, input);
      await kwctl(['create', '-f', '-'], USER_AND_ROLE);
      const token = /The invite token: (\w+)/.exec(await kwctl(['tokens', 'add', '--type=kube']))?.[1] as string;
      writeFileSync(join(dir, 'upstream.kubeconfig'), upstream.kubeconfig);
      const agent = start(bin('keyway-kube-agent'), ['--proxy', proxyAddr, '--token', token, '--kubeconfig', join(dir, 'upstream.kubeconfig'), '--labels', 'env=bench', '--data-dir', join(dir, 'agent')], { ...env, KEYWAY_LOG_LEVEL: 'info' }, procs);
      await waitFor(agent, /tunnel to proxy established/, 'stderr');
      await kwctl(['auth', 'sign', '--user=bench', '--kube-cluster=bench', `--proxy=${proxyAddr}`, '--format=tls', `--out=${join(dir, 'bench')}`]);
      const user = { cert: readFileSync(join(dir, 'bench.crt'), 'utf8'), key: readFileSync(join(dir, 'bench.key'), 'utf8'), ca: readFileSync(join(dir, 'bench.cas'), 'utf8') };

      const [proxyHost, proxyPort] = kubeAddr.split(':') as [string, string];
      const direct = new Target('127.0.0.1', upstream.port, { ca: upstream.caPem, cert: upstream.client.cert, key: upstream.client.key, servername: 'localhost' });
      const proxied = new Target(proxyHost, Number(proxyPort), { ca: user.ca, cert: user.cert, key: user.key, servername: KUBE_SNI });
      const path = '/api/v1/namespaces/default/pods/bench';
      // Idle tunnels first, on a quiet proxy: right after the load phases the heap is still
      // settling and RSS moves by tens of MiB whatever the tunnels cost.
      const keywayPid = keyway.pid as number;
      const tunnels = await idleTunnels(proxyAddr, join(dir, 'agent', 'agent-identity.pem'), quick ? 200 : 1000, keywayPid);
      // Connected after the tunnels: an idle keep-alive connection would time out meanwhile.
      for (const t of [direct, proxied]) await t.get(path);

      const n = quick ? 500 : 3000;
      const cpuAtRest = { keyway: cpuOf(keywayPid), agent: cpuOf(agent.pid as number) };
      const warmup = quick ? 200 : 1000;
      const [latDirect, latProxy] = await latency(() => direct.get(path), () => proxied.get(path), warmup, n);
      // Per proxied request at c=1, idle-time work (heartbeats) included.
      const perRequest = (cpu: number) => (cpu / (warmup + n)) * 1e6;
      const cpuPerRequest = { keyway: perRequest(cpuOf(keywayPid) - cpuAtRest.keyway), agent: perRequest(cpuOf(agent.pid as number) - cpuAtRest.agent) };
      const floor = await relayFloor(warmup, n, procs);
      const seconds = quick ? 2 : 5;
      const tputDirect = await throughput(direct, path, 32, seconds);
      const cpuBefore = { keyway: cpuOf(keywayPid), agent: cpuOf(agent.pid as number), upstream: cpuOf(upstream.pid), bench: process.cpuUsage() };
      const tputProxy = await throughput(proxied, path, 32, seconds);
      const benchCpu = process.cpuUsage(cpuBefore.bench);
      const cpu = {
        keyway: (cpuOf(keywayPid) - cpuBefore.keyway) / seconds,
        agent: (cpuOf(agent.pid as number) - cpuBefore.agent) / seconds,
        upstream: (cpuOf(upstream.pid) - cpuBefore.upstream) / seconds,
        bench: (benchCpu.user + benchCpu.system) / 1e6 / seconds,
      };

      const listBytes = quick ? LIST_BYTES / 8 : LIST_BYTES;
      const list = await streamList(proxied, `/api/v1/namespaces/default/configmaps?bytes=${listBytes}`, keywayPid);

      const addedP50 = latProxy.p50 - latDirect.p50;
      const addedP99 = latProxy.p99 - latDirect.p99;
      const ratio = tputProxy / tputDirect;
      const rows: [string, string, string, string][] = [
        ['latency p50 (ms), c=1', latDirect.p50.toFixed(3), latProxy.p50.toFixed(3), `+${addedP50.toFixed(3)}`],
        ['latency p99 (ms), c=1', latDirect.p99.toFixed(3), latProxy.p99.toFixed(3), `+${addedP99.toFixed(3)}`],
        ['throughput (req/s), c=32', tputDirect.toFixed(0), tputProxy.toFixed(0), `${(ratio * 100).toFixed(1)}%`],
      ];
      const out: string[] = [];
      out.push(`proxy: node ${process.version}, ${n} sequential requests each (direct and proxied in turn), ${seconds} s at concurrency 32, GET ${path}`);
      out.push('');
      out.push(`  ${'measurement'.padEnd(26)} ${'direct'.padStart(10)} ${'via proxy'.padStart(10)} ${'delta'.padStart(10)}`);
      for (const r of rows) out.push(`  ${r[0].padEnd(26)} ${r[1].padStart(10)} ${r[2].padStart(10)} ${r[3].padStart(10)}`);
      out.push(
        `  floor: ${n} 300-byte echoes through two bare TCP relay processes (no TLS, no HTTP) add p50 +${(floor.relayed.p50 - floor.direct.p50).toFixed(3)} ms, p99 +${(floor.relayed.p99 - floor.direct.p99).toFixed(3)} ms; each relay spends ${floor.relayCpuMicros.toFixed(0)} µs CPU per round trip`,
      );
      out.push(`  CPU per proxied request at c=1 (µs): auth+proxy ${cpuPerRequest.keyway.toFixed(0)}, agent ${cpuPerRequest.agent.toFixed(0)}`);
      out.push(`  CPU while proxied at c=32 (cores): auth+proxy ${cpu.keyway.toFixed(2)}, agent ${cpu.agent.toFixed(2)}, upstream ${cpu.upstream.toFixed(2)}, load generator ${cpu.bench.toFixed(2)}`);
      out.push('');
      out.push(`  ${(listBytes / 1024 ** 2).toFixed(0)} MiB list through the proxy: ${list.seconds.toFixed(1)} s (${(listBytes / 1024 ** 2 / list.seconds).toFixed(0)} MiB/s), proxy RSS growth ${(list.rssGrowth / 1024 ** 2).toFixed(1)} MiB`);
      out.push(`  ${tunnels.count} idle tunnels: proxy anonymous RSS +${(tunnels.anonGrowth / 1024 ** 2).toFixed(1)} MiB, ${(tunnels.anonGrowth / tunnels.count / 1024).toFixed(1)} KiB per tunnel`);
      out.push('');
      const targets: [string, string, string, boolean][] = [
        ['added p50 latency', '<= 0.300 ms', `${addedP50.toFixed(3)} ms`, addedP50 <= 0.3],
        ['added p99 latency', '<= 1.000 ms', `${addedP99.toFixed(3)} ms`, addedP99 <= 1],
        ['throughput vs direct', '>= 50%', `${(ratio * 100).toFixed(1)}%`, ratio >= 0.5],
        ['proxy RSS growth, list', '<= 64 MiB', `${(list.rssGrowth / 1024 ** 2).toFixed(1)} MiB`, list.rssGrowth <= 64 * 1024 ** 2],
        ['proxy memory per tunnel', '<= 50 KiB', `${(tunnels.anonGrowth / tunnels.count / 1024).toFixed(1)} KiB`, tunnels.anonGrowth / tunnels.count <= 50 * 1024],
      ];
      out.push(`  ${'target'.padEnd(26)} ${'required'.padStart(12)} ${'measured'.padStart(12)}  result`);
      for (const t of targets) out.push(`  ${t[0].padEnd(26)} ${t[1].padStart(12)} ${t[2].padStart(12)}  ${t[3] ? 'PASS' : 'FAIL'}`);
      process.stdout.write(`${out.join('\n')}\n`);
      direct.close();
      proxied.close();
      return targets.every((t) => t[3]);
    } finally {
      for (const p of procs) p.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      await dbCleanup?.();
    }
  },
};

const USER_AND_ROLE = `kind: role
version: v7
metadata: {name: bench}
spec:
  allow:
    kubernetes_labels: {env: bench}
    kubernetes_groups: [bench]
    kubernetes_resources:
      - {kind: pod, namespace: default, name: '*', verbs: [get, list]}
      - {kind: configmap, namespace: default, name: '*', verbs: [list]}
---
kind: user
version: v2
metadata: {name: bench}
spec: {roles: [bench]}
`;

/**
 * The stand-in API server in a process of its own, as a real one is: sharing the load
 * generator's event loop would make the direct path free of any process wake-up.
 */
async function startUpstream(procs: ChildProcess[]): Promise<UpstreamInfo & { pid: number }> {
  const p = spawn(process.execPath, ['--import', 'tsx', join(root, 'tools/bench/upstream.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out);
    });
    p.once('exit', (code) => reject(new Error(`bench upstream exited with ${code}`)));
  });
  return { ...(JSON.parse(line) as UpstreamInfo), pid: p.pid as number };
}

class Target {
  private readonly agent: https.Agent;
  constructor(
    private readonly host: string,
    private readonly port: number,
    tlsOpts: { ca: string; cert: string; key: string; servername: string },
  ) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 64, ...tlsOpts });
  }
  get(path: string, onData?: (n: number) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: this.host, port: this.port, path, agent: this.agent }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode} for ${path}`));
        res.on('data', (d: Buffer) => onData?.(d.length));
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }
  close() {
    this.agent.destroy();
  }
}

/**
 * Sequential round trips, one per target in turn, so that every target sees the same moments
 * of this machine: on a shared VM, speed drifts within seconds and a block of samples for one
 * target, then a block for the other, would measure the drift as much as the targets.
 */
interface Percentiles {
  p50: number;
  p99: number;
}

async function latency(a: () => Promise<void>, b: () => Promise<void>, warmup: number, n: number): Promise<[Percentiles, Percentiles]> {
  const targets = [a, b];
  // Warm: JIT-compiled code and open connections, as on a proxy that has been serving a while.
  for (let i = 0; i < warmup; i++) for (const t of targets) await t();
  const samples = targets.map(() => [] as number[]);
  for (let i = 0; i < n; i++) {
    for (const [k, t] of targets.entries()) {
      const start = process.hrtime.bigint();
      await t();
      samples[k]?.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  const percentiles = (s: number[]): Percentiles => {
    s.sort((x, y) => x - y);
    const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
    return { p50: at(0.5), p99: at(0.99) };
  };
  return [percentiles(samples[0] ?? []), percentiles(samples[1] ?? [])];
}

async function throughput(t: Target, path: string, concurrency: number, seconds: number) {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        await t.get(path);
        done++;
      }
    }),
  );
  return done / seconds;
}

/**
 * The cost of the process hops alone: an echo process reached directly and through two relay
 * processes (as proxy and agent sit between kubectl and the API server).
 */
async function relayFloor(warmup: number, n: number, procs: ChildProcess[]) {
  const helpers: ChildProcess[] = [];
  const helper = async (arg: string) => {
    const p = spawn(process.execPath, [join(root, 'tools/bench/relay.mjs'), arg], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(p);
    helpers.push(p);
    const [line] = (await once(p.stdout, 'data')) as [Buffer];
    return Number(line.toString().trim());
  };
  const echo = async (port: number) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    await once(socket, 'connect');
    return socket;
  };
  const payload = Buffer.alloc(300, 120);
  const roundTrip = (socket: net.Socket) => async () => {
    socket.write(payload);
    let got = 0;
    while (got < payload.length) got += ((await once(socket, 'data')) as [Buffer])[0].length;
  };
  const echoPort = await helper('echo');
  const direct = await echo(echoPort);
  const relayed = await echo(await helper(String(await helper(String(echoPort)))));
  const relays = helpers.slice(1).map((h) => h.pid as number);
  const cpuBefore = relays.map(cpuOf);
  const [directLatency, relayedLatency] = await latency(roundTrip(direct), roundTrip(relayed), warmup, n);
  // What a relay that does nothing but copy 300 bytes each way spends per round trip.
  const relayCpuMicros = (relays.reduce((sum, pid, i) => sum + cpuOf(pid) - (cpuBefore[i] ?? 0), 0) / relays.length / (warmup + n)) * 1e6;
  for (const s of [direct, relayed]) s.destroy();
  for (const p of helpers) p.kill('SIGTERM');
  return { direct: directLatency, relayed: relayedLatency, relayCpuMicros };
}

/**
 * CPU seconds a process has used, all its threads, from the scheduler's nanosecond run times
 * (/proc/PID/stat's tick-sampled times overcharge a process that wakes briefly and often).
 */
function cpuOf(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ns / 1e9;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/**
 * The anonymous part of a process's RSS: what it allocated. The file-backed part (Node's own
 * code pages) moves with the kernel's reclaim (this machine runs DAMON page-out), whatever
 * the process does.
 */
function anonRssOf(pid: number): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

async function streamList(t: Target, path: string, pid: number) {
  const before = rssOf(pid);
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 50);
  const start = Date.now();
  await t.get(path);
  clearInterval(timer);
  peak = Math.max(peak, rssOf(pid));
  return { seconds: (Date.now() - start) / 1000, rssGrowth: peak - before };
}

/** Opens `count` tunnels the way an agent does and measures what they cost the proxy at rest. */
async function idleTunnels(proxyAddr: string, identityPath: string, count: number, pid: number) {
  const id = readIdentityFile(identityPath);
  const hostCas = id.caPems.filter((p) => new X509Certificate(p).subject.includes('host CA'));
  const [host, port] = proxyAddr.split(':') as [string, string];
  const backend: KubeBackend = {
    request: () => Promise.reject(new Error('idle')),
    upgrade: () => Promise.reject(new Error('idle')),
  };
  await settle();
  const before = anonRssOf(pid);
  const sockets: tls.TLSSocket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host, port: Number(port), servername: PROXY_SERVER_NAME, ALPNProtocols: [TUNNEL_ALPN], ca: hostCas, cert: id.certPem, key: id.privateKeyPem });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
    serveTunnel(socket, { backend, info: () => ({ hostId: `idle-${i}`, hostname: 'bench', version: '0', clusters: [{ name: `idle-${i % 10}`, labels: {} }] }) });
    sockets.push(socket);
  }
  await settle();
  const after = anonRssOf(pid);
  for (const s of sockets) s.destroy();
  return { count, anonGrowth: after - before };
}

function settle() {
  return new Promise((r) => setTimeout(r, 2_000));
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv, procs: ChildProcess[]) {
  // KEYWAY_BENCH_PROFILE=DIR writes a CPU profile of each Keyway process there.
  const profile = process.env['KEYWAY_BENCH_PROFILE'];
  const p = profile
    ? spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profile}`, cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  const buf = { stdout: '', stderr: '' };
  p.stdout?.on('data', (d: Buffer) => (buf.stdout += d.toString()));
  p.stderr?.on('data', (d: Buffer) => (buf.stderr += d.toString()));
  (p as ChildProcess & { buf: typeof buf }).buf = buf;
  return p;
}

async function waitFor(p: ChildProcess, re: RegExp, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpExecArray> {
  const buf = (p as ChildProcess & { buf: { stdout: string; stderr: string } }).buf;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = re.exec(buf[stream]);
    if (m) return m;
    if (p.exitCode !== null || Date.now() > deadline) throw new Error(`waiting for ${re}: ${buf.stdout}\n${buf.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: ${err}`))));
    p.stdin.end(input ?? '');
  });
}
