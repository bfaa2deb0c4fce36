import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { BadParameterError } from '@keyway/errors';

export interface EmbeddedPostgres {
  /** A postgres:// URL for the pg driver, served on loopback. */
  url: string;
  close(): Promise<void>;
}

/**
 * Runs PGlite under dataDir and serves it over the Postgres wire protocol on loopback, so
 * the embedded default goes through exactly the same `pg` code path as a real Postgres.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const dir = join(dataDir, 'pgdata');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const releaseLock = acquireDirLock(join(dataDir, 'pgdata.lock'));
  let db: PGlite | undefined;
  try {
    db = await PGlite.create(dir);
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 16 });
    await server.start();
    const url = `postgres://postgres@${server.getServerConn()}/postgres?sslmode=disable`;
    const opened = db;
    return {
      url,
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

/** Lock files this process holds; a container restart may give us the pid of a stale lock. */
const heldLocks = new Set<string>();

/** PGlite must not be opened twice at once: a pid file guards the data dir. */
function acquireDirLock(path: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldLocks.add(path);
      return () => {
        heldLocks.delete(path);
        rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(path, 'utf8').trim());
      const held = pid === process.pid ? heldLocks.has(path) : pid > 0 && isAlive(pid);
      if (held) {
        throw new BadParameterError(
          `the embedded database in ${path.replace(/pgdata\.lock$/, '')} is in use by process ${pid}; stop it or use another data dir`,
          { pid },
        );
      }
      rmSync(path, { force: true }); // stale lock from a process that is gone
    }
  }
  throw new BadParameterError(`cannot lock ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
