/**
 * `npm run bench -- proxy`: the cost of going through Keyway. One load generator measures,
 * in the same run, a stand-in API server directly (TLS) and the same server through the
 * proxy and an agent (mTLS, authorization on): latency at concurrency 1, throughput at
 * concurrency 32, proxy memory while a 1 GiB list streams through, and proxy memory per
 * idle agent tunnel (1,000 tunnels). The proxy and the agent run as their own processes,
 * as in production, so their memory is measured apart from the load generator's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { parse as parseYaml } from 'yaml';
import { ca as authCa } from '@keyway/auth';
import { KUBE_SNI, readIdentityFile } from '@keyway/client';
import { generateKeyPair } from '@keyway/pki';
import { PROXY_SERVER_NAME, TUNNEL_ALPN, serveTunnel, type KubeBackend } from '@keyway/tunnel';
import { adminDatabaseUrl } from '@keyway/testing';
import type { Benchmark } from './main.js';

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
const POD = JSON.stringify({ kind: 'Pod', apiVersion: 'v1', metadata: { name: 'bench', namespace: 'default', uid: 'x'.repeat(36) }, spec: { containers: [{ name: 'c', image: 'busybox' }] }, status: { phase: 'Running' } });

export const benchmark: Benchmark = {
  description: 'kubectl-style requests direct vs through proxy + agent: latency, throughput, memory',
  async run(args) {
    const quick = args.includes('--quick');
    const dir = mkdtempSync(join(tmpdir(), 'kw-bench-'));
    const procs: ChildProcess[] = [];
    const upstream = await startUpstream();
    let dbCleanup: (() => Promise<void>) | undefined;
    try {
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
      const latDirect = await latency(direct, path, n);
      const latProxy = await latency(proxied, path, n);
      const floor = await relayFloor(n, procs);
      const seconds = quick ? 2 : 5;
      const tputDirect = await throughput(direct, path, 32, seconds);
      const cpuBefore = { keyway: cpuOf(keyway.pid as number), agent: cpuOf(agent.pid as number), bench: process.cpuUsage() };
      const tputProxy = await throughput(proxied, path, 32, seconds);
      const benchCpu = process.cpuUsage(cpuBefore.bench);
      const cpu = {
        keyway: (cpuOf(keyway.pid as number) - cpuBefore.keyway) / seconds,
        agent: (cpuOf(agent.pid as number) - cpuBefore.agent) / seconds,
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
      out.push(`proxy: node ${process.version}, ${n} sequential requests, ${seconds} s at concurrency 32, GET ${path}`);
      out.push('');
      out.push(`  ${'measurement'.padEnd(26)} ${'direct'.padStart(10)} ${'via proxy'.padStart(10)} ${'delta'.padStart(10)}`);
      for (const r of rows) out.push(`  ${r[0].padEnd(26)} ${r[1].padStart(10)} ${r[2].padStart(10)} ${r[3].padStart(10)}`);
      out.push(
        `  floor: ${n} 300-byte echoes through two bare TCP relay processes (no TLS, no HTTP) add p50 +${(floor.relayed.p50 - floor.direct.p50).toFixed(3)} ms, p99 +${(floor.relayed.p99 - floor.direct.p99).toFixed(3)} ms`,
      );
      out.push(`  CPU while proxied at c=32 (cores): auth+proxy ${cpu.keyway.toFixed(2)}, agent ${cpu.agent.toFixed(2)}, load generator + upstream ${cpu.bench.toFixed(2)}`);
      out.push('');
      out.push(`  ${(listBytes / 1024 ** 2).toFixed(0)} MiB list through the proxy: ${list.seconds.toFixed(1)} s (${(listBytes / 1024 ** 2 / list.seconds).toFixed(0)} MiB/s), proxy RSS growth ${(list.rssGrowth / 1024 ** 2).toFixed(1)} MiB`);
      out.push(`  ${tunnels.count} idle tunnels: proxy RSS +${(tunnels.rssGrowth / 1024 ** 2).toFixed(1)} MiB, ${(tunnels.rssGrowth / tunnels.count / 1024).toFixed(1)} KiB per tunnel`);
      out.push('');
      const targets: [string, string, string, boolean][] = [
        ['added p50 latency', '<= 0.300 ms', `${addedP50.toFixed(3)} ms`, addedP50 <= 0.3],
        ['added p99 latency', '<= 1.000 ms', `${addedP99.toFixed(3)} ms`, addedP99 <= 1],
        ['throughput vs direct', '>= 50%', `${(ratio * 100).toFixed(1)}%`, ratio >= 0.5],
        ['proxy RSS growth, list', '<= 64 MiB', `${(list.rssGrowth / 1024 ** 2).toFixed(1)} MiB`, list.rssGrowth <= 64 * 1024 ** 2],
        ['proxy memory per tunnel', '<= 50 KiB', `${(tunnels.rssGrowth / tunnels.count / 1024).toFixed(1)} KiB`, tunnels.rssGrowth / tunnels.count <= 50 * 1024],
      ];
      out.push(`  ${'target'.padEnd(26)} ${'required'.padStart(12)} ${'measured'.padStart(12)}  result`);
      for (const t of targets) out.push(`  ${t[0].padEnd(26)} ${t[1].padStart(12)} ${t[2].padStart(12)}  ${t[3] ? 'PASS' : 'FAIL'}`);
      process.stdout.write(`${out.join('\n')}\n`);
      direct.close();
      proxied.close();
      return targets.every((t) => t[3]);
    } finally {
      for (const p of procs) p.kill('SIGTERM');
      await upstream.close();
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

/** A stand-in API server: a pod GET, and a list of any size generated as it streams. */
export async function startUpstream() {
  const hostCa = authCa.createCertAuthority({ type: 'host', clusterName: 'upstream' });
  const signer = new authCa.CertSigner({ certPem: hostCa.certPem, privateKey: hostCa.privateKeyPem });
  const identity = (name: string, role: 'Auth' | 'Kube') => ({
    username: name,
    roles: [role],
    traits: {},
    kubernetesUsers: [],
    kubernetesGroups: [],
    clusterName: 'upstream',
    mfaVerified: false,
    systemRoles: [role],
  });
  const serverKey = generateKeyPair();
  const server = signer.signHostCertificate({ publicKey: serverKey.publicKeyPem, identity: identity('apiserver', 'Auth'), dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], notAfter: new Date(Date.now() + 86_400_000) });
  const clientKey = generateKeyPair();
  const client = signer.signHostCertificate({ publicKey: clientKey.publicKeyPem, identity: identity('agent', 'Kube'), dnsNames: [], ipAddresses: [], notAfter: new Date(Date.now() + 86_400_000) });
  const item = Buffer.from(`{"metadata":{"name":"cm","namespace":"default"},"data":{"k":"${'v'.repeat(900)}"}},`);
  const srv = https.createServer({ cert: server.certPem, key: serverKey.privateKeyPem, ca: hostCa.certPem, requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.url?.startsWith('/api/v1/namespaces/default/configmaps')) {
      const total = Number(new URL(req.url, 'https://x').searchParams.get('bytes') ?? LIST_BYTES);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"kind":"ConfigMapList","apiVersion":"v1","items":[');
      let sent = 0;
      const chunk = Buffer.concat(Array.from({ length: 64 }, () => item));
      const pump = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end('{}]}');
      };
      pump();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(POD) });
    res.end(POD);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: bench, cluster: {server: 'https://127.0.0.1:${port}', certificate-authority-data: ${b64(hostCa.certPem)}}}]
users: [{name: bench, user: {client-certificate-data: ${b64(client.certPem)}, client-key-data: ${b64(clientKey.privateKeyPem)}}}]
contexts: [{name: bench, context: {cluster: bench, user: bench}}]
current-context: bench
`;
  parseYaml(kubeconfig);
  return {
    port,
    caPem: hostCa.certPem,
    client: { cert: client.certPem, key: clientKey.privateKeyPem },
    kubeconfig,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
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

async function latency(t: Target, path: string, n: number) {
  for (let i = 0; i < Math.min(300, n / 5); i++) await t.get(path);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await t.get(path);
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number;
  return { p50: at(0.5), p99: at(0.99) };
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
 * The cost of the process hops alone: an echo in this process, reached directly and through
 * two relay processes (as proxy and agent sit between kubectl and the API server).
 */
async function relayFloor(n: number, procs: ChildProcess[]) {
  const echo = net.createServer({ noDelay: true }, (c) => c.on('data', (d: Buffer) => c.write(d)));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const relays: ChildProcess[] = [];
  const relay = async (target: number) => {
    const p = spawn(process.execPath, [join(root, 'tools/bench/relay.mjs'), String(target)], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(p);
    relays.push(p);
    const [line] = (await once(p.stdout, 'data')) as [Buffer];
    return Number(line.toString().trim());
  };
  const rtt = async (port: number) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    await once(socket, 'connect');
    const payload = Buffer.alloc(300, 120);
    const samples: number[] = [];
    for (let i = 0; i < n + 300; i++) {
      const start = process.hrtime.bigint();
      socket.write(payload);
      let got = 0;
      while (got < payload.length) got += ((await once(socket, 'data')) as [Buffer])[0].length;
      if (i >= 300) samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    socket.destroy();
    samples.sort((a, b) => a - b);
    const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number;
    return { p50: at(0.5), p99: at(0.99) };
  };
  const echoPort = (echo.address() as AddressInfo).port;
  const direct = await rtt(echoPort);
  const relayed = await rtt(await relay(await relay(echoPort)));
  for (const p of relays) p.kill('SIGTERM');
  echo.close();
  return { direct, relayed };
}

/** CPU seconds a process has used (user + system), from /proc. */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
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
  const before = rssOf(pid);
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
  const after = rssOf(pid);
  for (const s of sockets) s.destroy();
  return { count, rssGrowth: after - before };
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
