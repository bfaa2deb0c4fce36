import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { BadParameterError } from '@keyway/errors';
import { acquirePidLock } from '@keyway/log';

export interface EmbeddedPostgres {
  /** Connection settings for the pg driver: a Unix socket in the data dir. */
  connection: { host: string; port: number; user: string; database: string };
  close(): Promise<void>;
}

/** pg finds a server's socket as <host>/.s.PGSQL.<port>. */
const SOCKET_PORT = 5432;

/**
 * Runs PGlite under dataDir and serves it over the Postgres wire protocol, so the embedded
 * default goes through exactly the same `pg` code path as a real Postgres. It listens on a
 * Unix socket inside the data dir (mode 0700): PGlite has no authentication, so a TCP port
 * would let any local user read the password hashes.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const dir = join(dataDir, 'pgdata');
  const runDir = join(dataDir, 'run');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  const socketPath = join(runDir, `.s.PGSQL.${SOCKET_PORT}`);
  if (Buffer.byteLength(socketPath) > 100) {
    throw new BadParameterError(`the data dir path is too long for the embedded database's socket (${socketPath}); use a shorter --data-dir`);
  }
  // PGlite must not be opened twice at once.
  const releaseLock = acquirePidLock(join(dataDir, 'pgdata.lock'), {
    inUse: (pid) => new BadParameterError(`the embedded database in ${dataDir} is in use by process ${pid}; stop it or use another data dir`, { pid }),
  });
  let db: PGlite | undefined;
  try {
    rmSync(socketPath, { force: true }); // left by a process that died; the lock says none runs
    db = await PGlite.create(dir);
    // One connection: PGlite is one session, and interleaving several clients' extended-protocol
    // messages on it corrupts their prepared statements.
    const server = new PGLiteSocketServer({ db, path: socketPath, maxConnections: 1 });
    await server.start();
    chmodSync(socketPath, 0o600);
    const opened = db;
    return {
      connection: { host: runDir, port: SOCKET_PORT, user: 'postgres', database: 'postgres' },
      async close() {
        await server.stop();
        await opened.close();
        releaseLock();
      },
    };
  } catch (err) {
    await db?.close().catch(() => undefined);
    releaseLock();
    throw err;
  }
}

