/**
 * The production shape, every part its own process, with every address fixed so a part can
 * be killed and started again where the others expect it: Postgres and Redis of the run's own,
 * auth on Postgres, two proxies behind a TCP balancer, two agents serving one cluster (the
 * benchmark's stand-in API server, its own process too).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  freePort,
  runCommand,
  startOwnPostgres,
  startOwnRedis,
  startProcess,
  startTcpBalancer,
  type LongRunning,
  type OwnService,
  type TcpBalancer,
} from '@keyway/testing';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = (name: string) => join(root, 'node_modules/.bin', name);

export const CLUSTER = 'bench';
const RESOURCES = `kind: role
version: v7
metadata: {name: chaos}
spec:
  allow:
    kubernetes_labels: {env: chaos}
    kubernetes_groups: [chaos]
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list, watch]}]
---
kind: user
version: v2
metadata: {name: chaos}
spec: {roles: [chaos]}
`;

export interface UserCredentials {
  cert: string;
  key: string;
  ca: string;
}

/** One part that can be killed and started again with the same command. */
export class Part {
  private proc: LongRunning | undefined;
  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly ready: RegExp,
    private readonly readyStream: 'stdout' | 'stderr' = 'stdout',
  ) {}

  async start(timeoutMs = 60_000): Promise<void> {
    this.proc = startProcess(this.command, this.args, this.env);
    if (this.readyStream === 'stdout') {
      await this.proc.waitFor(this.ready, timeoutMs);
      return;
    }
    const deadline = Date.now() + timeoutMs;
    while (!this.ready.test(this.proc.stderr())) {
      if (this.proc.child.exitCode !== null) throw new Error(`${this.name} exited (${this.proc.child.exitCode}):\n${this.proc.stderr()}`);
      if (Date.now() > deadline) throw new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.proc.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL: no drain, no flush, as a crashed node or an OOM kill. */
  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p) return;
    p.child.kill('SIGKILL');
    await p.exited;
  }

  async stop(): Promise<void> {
    await this.proc?.stop('SIGTERM', 5_000);
    this.proc = undefined;
  }

  /** Whether it is still running; a part that exits by itself is a finding. */
  running(): boolean {
    return this.proc !== undefined && this.proc.child.exitCode === null;
  }

  logs(): string {
    return this.proc ? `${this.proc.stdout()}${this.proc.stderr()}` : '';
  }
}

export class Topology {
  readonly parts = new Map<string, Part>();
  private upstream: ChildProcess | undefined;
  private constructor(
    readonly dir: string,
    readonly postgres: OwnService,
    readonly redis: OwnService,
    readonly balancer: TcpBalancer,
    readonly user: UserCredentials,
    readonly databaseUrl: string,
  ) {}

  static async start(log: (line: string) => void): Promise<Topology> {
    const dir = mkdtempSync(join(tmpdir(), 'kw-chaos-'));
    const postgres = await startOwnPostgres();
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('CREATE DATABASE keyway');
    await admin.end();
    const databaseUrl = postgres.url.replace(/\/postgres$/, '/keyway');
    const redis = await startOwnRedis();
    log(`postgres on ${postgres.port}, redis on ${redis.port}`);

    const [authPort, proxy0Port, proxy1Port] = [await freePort(), await freePort(), await freePort()];
    const authAddr = `127.0.0.1:${authPort}`;
    const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
      PATH: process.env['PATH'],
      HOME: dir,
      KEYWAY_LOG_LEVEL: 'info',
      KEYWAY_CA_KEY: 'chaos-ca-key-0123456789abcdef',
      ...extra,
    });
    const parts = new Map<string, Part>();
    const auth = new Part(
      'auth',
      bin('keyway'),
      ['start', '--data-dir', join(dir, 'auth'), '--auth-listen-addr', authAddr],
      env({ KEYWAY_PROXY_SERVICE__ENABLED: 'false', KEYWAY_DATABASE_URL: databaseUrl, KEYWAY_REDIS_URL: redis.url }),
      /auth service \(gRPC, mTLS\):\s+(\S+)/,
    );
    parts.set('auth', auth);
    await auth.start();
    const kwctl = async (args: string[], input?: string) => {
      const r = await runCommand(bin('kwctl'), ['--data-dir', join(dir, 'auth'), ...args], { env: env(), ...(input ? { input } : {}) });
      if (r.code !== 0) throw new Error(`kwctl ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await kwctl(['create', '-f', '-'], RESOURCES);
    const token = /The invite token: (\w+)/.exec(await kwctl(['tokens', 'add', '--type=proxy,kube', '--ttl=2h']))?.[1];
    if (!token) throw new Error('kwctl tokens add printed no token');

    const proxyAddrs = [proxy0Port, proxy1Port].map((p) => `127.0.0.1:${p}`);
    proxyAddrs.forEach((addr, i) => {
      parts.set(
        `proxy${i}`,
        new Part(
          `proxy${i}`,
          bin('keyway-proxy'),
          ['--auth-server', authAddr, '--token', token, '--listen-addr', addr, '--data-dir', join(dir, `proxy${i}`)],
          env({ KEYWAY_PROXY_SERVICE__REDIS_URL: redis.url }),
          /listening on (\S+?)[,\s]/,
        ),
      );
    });
    await Promise.all([0, 1].map((i) => parts.get(`proxy${i}`)?.start()));
    const balancer = await startTcpBalancer(proxyAddrs);

    const upstream = spawn(process.execPath, ['--import', 'tsx', join(root, 'tools/bench/upstream.ts')], { stdio: ['ignore', 'pipe', 'inherit'], cwd: root });
    const info = await new Promise<{ kubeconfig: string }>((resolve, reject) => {
      let out = '';
      upstream.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n') && line) resolve(JSON.parse(line) as { kubeconfig: string });
      });
      upstream.once('exit', (code) => reject(new Error(`stand-in API server exited (${code})`)));
    });
    writeFileSync(join(dir, 'upstream.kubeconfig'), info.kubeconfig);
    for (const i of [0, 1]) {
      parts.set(
        `agent${i}`,
        new Part(
          `agent${i}`,
          bin('keyway-kube-agent'),
          ['--proxy', balancer.address, '--token', token, '--kubeconfig', join(dir, 'upstream.kubeconfig'), '--labels', 'env=chaos', '--data-dir', join(dir, `agent${i}`)],
          env(),
          /tunnel to proxy established[\s\S]*tunnel to proxy established/,
          'stderr',
        ),
      );
    }
    await Promise.all([0, 1].map((i) => parts.get(`agent${i}`)?.start()));

    await kwctl(['auth', 'sign', '--user=chaos', `--kube-cluster=${CLUSTER}`, `--proxy=${balancer.address}`, '--format=tls', '--ttl=2h', `--out=${join(dir, 'chaos')}`]);
    const user = {
      cert: readFileSync(join(dir, 'chaos.crt'), 'utf8'),
      key: readFileSync(join(dir, 'chaos.key'), 'utf8'),
      ca: readFileSync(join(dir, 'chaos.cas'), 'utf8'),
    };
    const t = new Topology(dir, postgres, redis, balancer, user, databaseUrl);
    for (const [k, v] of parts) t.parts.set(k, v);
    t.upstream = upstream;
    return t;
  }

  part(name: string): Part {
    const p = this.parts.get(name);
    if (!p) throw new Error(`no part ${name}`);
    return p;
  }

  async close(): Promise<void> {
    await Promise.all([...this.parts.values()].map((p) => p.stop()));
    this.upstream?.kill('SIGKILL');
    await this.balancer.close();
    await this.redis.destroy();
    await this.postgres.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
