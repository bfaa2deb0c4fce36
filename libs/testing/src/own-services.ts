import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Postgres and Redis instances of a test's own, on ports of their own, for tests that make
 * them fail: the shared services on the default ports are never stopped or flushed.
 */

/** A port that was free a moment ago (bound and released), for services that must keep one port across restarts. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface OwnService {
  port: number;
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops it for good and removes its files. */
  destroy(): Promise<void>;
}

function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((v) => join(root, v, 'bin')).find((d) => existsSync(join(d, 'pg_ctl')));
  if (!found) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)');
  return found;
}

/** Postgres refuses to run as root; its files then belong to the postgres user. */
function asPostgres(cmd: string, args: string[]): string[] {
  return process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', cmd, ...args] : [cmd, ...args];
}

function run(argv: string[]): void {
  const [cmd, ...args] = argv as [string, ...string[]];
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
}

/** A throwaway Postgres cluster (initdb) on its own port, trust auth, user postgres; `start: false` leaves it stopped. */
export async function startOwnPostgres(o: { port?: number; start?: boolean } = {}): Promise<OwnService> {
  const bin = postgresBinDir();
  const port = o.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'kw-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  run(asPostgres(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']));
  const pgCtl = (action: 'start' | 'stop', extra: string[]) =>
    run(asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', ...extra, action]));
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const service: OwnService = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      pgCtl('start', ['-o', options]);
    },
    async stop() {
      // Immediate: like a crash or a network cut, not a polite shutdown that waits for clients.
      pgCtl('stop', ['-m', 'immediate']);
    },
    async destroy() {
      try {
        pgCtl('stop', ['-m', 'immediate']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (o.start !== false) await service.start();
  return service;
}

/** A Redis that keeps nothing on disk, on its own port: a restart loses every queued job, as in production without persistence. */
export async function startOwnRedis(o: { port?: number } = {}): Promise<OwnService> {
  const port = o.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'kw-redis-'));
  let child: ReturnType<typeof spawn> | undefined;
  const service: OwnService = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
      const deadline = Date.now() + 10_000;
      while (!(await canConnect(port))) {
        if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
    async destroy() {
      await service.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await service.start();
  return service;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
