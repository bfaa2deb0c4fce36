import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';

/** Lock files this process holds: a restarted container may be given the pid of a stale lock. */
const held = new Set<string>();

export interface PidLockOptions {
  /** The error to throw when a live process holds the lock. */
  inUse(pid: number): Error;
  /**
   * What to do when the lock names this process and this process holds it: refuse (a second
   * open of the same directory), or take it over (the holder was abandoned without closing,
   * as tests do to act out a killed process).
   */
  sameProcess?: 'refuse' | 'take-over';
}

/**
 * One process at a time for a directory: a pid file created exclusively (no window between
 * reading and writing it), taken over when the process it names is gone. Returns the release.
 */
export function acquirePidLock(path: string, o: PidLockOptions): () => void {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      held.add(path);
      return () => {
        held.delete(path);
        rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let pid = 0;
      try {
        pid = Number(readFileSync(path, 'utf8').trim());
      } catch {
        continue; // removed meanwhile: try again
      }
      const ours = pid === process.pid;
      const inUse = ours ? held.has(path) && o.sameProcess !== 'take-over' : pid > 0 && isAlive(pid);
      if (inUse) throw o.inUse(pid);
      rmSync(path, { force: true }); // a stale lock of a process that is gone
    }
  }
  throw o.inUse(0);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
