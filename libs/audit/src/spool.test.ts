import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@keyway/log';
import { AuditSpool, type SpooledEvent } from './spool.js';

const logger = silentLogger();
const fresh = () => join(mkdtempSync(join(tmpdir(), 'kw-spool-')), 'spool');
const line = (i: number) => JSON.stringify({ uid: `u${i}`, pad: 'x'.repeat(100) });
const open = (dir: string, o: Partial<Parameters<typeof AuditSpool.open>[0]> = {}, onDrop: (upTo: number) => void = () => undefined) =>
  AuditSpool.open({ dir, maxBytes: 64 * 1024 * 1024, mode: 'best-effort', logger, ...o }, onDrop);

describe('AuditSpool', () => {
  it('keeps every acknowledged event for the next process, in order, and shares disk flushes between appends in flight', async () => {
    const dir = fresh();
    const { spool, replay } = open(dir);
    expect(replay).toEqual([]);
    const appends = Array.from({ length: 1000 }, (_, i) => spool.append(line(i)));
    expect((await Promise.all(appends.map((a) => a.durable))).every(Boolean)).toBe(true);
    // Group commit: a handful of fdatasyncs for a thousand concurrent appends.
    expect(spool.syncs).toBeGreaterThan(0);
    expect(spool.syncs).toBeLessThan(50);
    // No close: the process "dies" here. The next one finds everything that was acknowledged.
    const again = open(dir);
    expect(again.replay.map((e) => e.line)).toEqual(Array.from({ length: 1000 }, (_, i) => line(i)));
    expect(again.replay.map((e) => e.seq)).toEqual(appends.map((a) => a.seq));
    // New appends continue the numbering, after the replayed ones.
    const next = again.spool.append(line(1000));
    expect(next.seq).toBe(1001);
    await next.durable;
    await again.spool.close();
  });

  it('lets confirmed events go, whole files at a time, and a restart re-sends only the unconfirmed', async () => {
    const dir = fresh();
    const { spool } = open(dir, { segmentBytes: 4096 });
    for (let i = 0; i < 200; i++) await spool.append(line(i)).durable;
    const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl')).length;
    expect(files).toBeGreaterThan(3);
    spool.confirm(150);
    expect(readdirSync(dir).filter((f) => f.endsWith('.jsonl')).length).toBeLessThan(files);
    const again = open(dir);
    expect(again.replay.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 151 + i));
    again.spool.confirm(200);
    await again.spool.close();
    expect(open(dir).replay).toEqual([]);
  });

  it('skips a torn last line (a write cut by a crash was never acknowledged) and never appends after it', async () => {
    const dir = fresh();
    const { spool } = open(dir);
    await Promise.all([0, 1, 2].map((i) => spool.append(line(i)).durable));
    const [seg] = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
    appendFileSync(join(dir, seg as string), '{"uid":"torn","pa');
    const again = open(dir);
    expect(again.replay.map((e) => e.line)).toEqual([0, 1, 2].map(line));
    await again.spool.append(line(3)).durable;
    const third = open(dir);
    expect(third.replay.map((e) => e.line)).toEqual([0, 1, 2, 3].map(line));
    await third.spool.close();
  });

  it('best-effort: a full spool drops its oldest unconfirmed events, counts them and says which', async () => {
    const dir = fresh();
    let droppedUpTo = 0;
    const max = 32 * 1024;
    const { spool } = open(dir, { maxBytes: max, segmentBytes: 4096 }, (upTo) => (droppedUpTo = upTo));
    const all: { seq: number }[] = [];
    for (let i = 0; i < 1000; i++) {
      const a = spool.append(line(i));
      all.push(a);
      expect(await a.durable).toBe(true);
    }
    expect(spool.bytes).toBeLessThanOrEqual(max);
    expect(spool.dropped).toBeGreaterThan(0);
    expect(droppedUpTo).toBeGreaterThan(0);
    const kept: SpooledEvent[] = open(dir).replay;
    // What survives is the newest, contiguous up to the last append; the count adds up.
    expect(kept[kept.length - 1]?.seq).toBe(1000);
    expect(kept.length + spool.dropped).toBe(1000);
    expect(kept[0]?.seq).toBe(droppedUpTo + 1);
  });

  it('strict: a full spool refuses the event instead of dropping one, and says it is not accepting', async () => {
    const dir = fresh();
    const max = 16 * 1024;
    const { spool } = open(dir, { maxBytes: max, mode: 'strict', segmentBytes: 4096 });
    let refused = 0;
    for (let i = 0; i < 300; i++) if (!(await spool.append(line(i)).durable)) refused++;
    expect(refused).toBeGreaterThan(0);
    expect(spool.accepting).toBe(false);
    expect(spool.dropped).toBe(0);
    // Confirming makes room again.
    spool.confirm(10_000);
    expect(spool.accepting).toBe(true);
    expect(await spool.append(line(1)).durable).toBe(true);
    await spool.close();
  });

  it('refuses a second live process on the same spool', () => {
    const dir = fresh();
    open(dir);
    // Our own pid is allowed (a restart in-process); a live other pid is not.
    writeFileSync(join(dir, 'lock'), String(process.ppid));
    expect(() => open(dir)).toThrow(/in use by process/);
  });
});

// A real full disk: a 64 KiB tmpfs (needs root to mount; skipped otherwise).
const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  try {
    const d = mkdtempSync(join(tmpdir(), 'kw-full-probe-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d], { stdio: 'pipe' });
    execFileSync('umount', [d], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!canMount)('AuditSpool on a full disk', () => {
  const mounts: string[] = [];
  afterAll(() => {
    for (const m of mounts) execFileSync('umount', ['-l', m], { stdio: 'pipe' });
  });
  const fullDisk = () => {
    const d = mkdtempSync(join(tmpdir(), 'kw-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d], { stdio: 'pipe' });
    mounts.push(d);
    return join(d, 'spool');
  };
  const capture = () => {
    const lines: string[] = [];
    const l = { ...logger, error: (o: unknown, msg?: string) => void lines.push(String(msg ?? o)) } as unknown as typeof logger;
    return { l, lines };
  };

  it('best-effort: appends go on (said out loud, counted as not durable) and never hang', async () => {
    const { l, lines } = capture();
    const { spool } = open(fullDisk(), { logger: l });
    let answered = 0;
    for (let i = 0; i < 2000; i++) if (await spool.append(line(i)).durable) answered++;
    expect(answered).toBe(2000);
    expect(spool.notDurable).toBeGreaterThan(0);
    expect(lines.some((m) => /spool write failed/.test(m))).toBe(true);
  });

  it('strict: what cannot be written is refused, and the spool says it is not accepting', async () => {
    const { l } = capture();
    const { spool } = open(fullDisk(), { logger: l, mode: 'strict' });
    let refused = 0;
    for (let i = 0; i < 2000; i++) if (!(await spool.append(line(i)).durable)) refused++;
    expect(refused).toBeGreaterThan(0);
    expect(spool.accepting).toBe(false);
  });
});
