import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquirePidLock } from './pid-lock.js';

const inUse = (pid: number) => new Error(`in use by ${pid}`);
const lockPath = () => join(mkdtempSync(join(tmpdir(), 'kw-pidlock-')), 'lock');

describe('acquirePidLock', () => {
  it('holds the directory for this process until released', () => {
    const path = lockPath();
    const release = acquirePidLock(path, { inUse });
    expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
    expect(() => acquirePidLock(path, { inUse })).toThrow(`in use by ${process.pid}`);
    release();
    expect(existsSync(path)).toBe(false);
    acquirePidLock(path, { inUse })();
  });

  it('lets this process take over a lock it abandoned when asked to', () => {
    const path = lockPath();
    acquirePidLock(path, { inUse });
    const again = acquirePidLock(path, { inUse, sameProcess: 'take-over' });
    again();
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a lock of another live process and takes over one of a process that is gone', () => {
    const path = lockPath();
    writeFileSync(path, String(process.ppid));
    expect(() => acquirePidLock(path, { inUse, sameProcess: 'take-over' })).toThrow(`in use by ${process.ppid}`);
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(path, gone);
    const release = acquirePidLock(path, { inUse });
    expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
    release();
  });

  it('takes over a lock file that names no pid (a torn write)', () => {
    const path = lockPath();
    writeFileSync(path, '');
    acquirePidLock(path, { inUse })();
  });

  it('says a lock held by a process of our pid but not by us is stale (a restarted container)', () => {
    const path = lockPath();
    writeFileSync(path, String(process.pid));
    acquirePidLock(path, { inUse })();
  });
});
