import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '@keyway/log';
import type { AuditEventRecord } from '@keyway/store';
import { SpooledAuditLog, type AuditSink } from './spooled-log.js';

const event = (i: number): AuditEventRecord => ({ uid: `u${i}`, time: new Date(0).toISOString(), event: 'kube.request', code: 'T3009I', n: i });

/**
 * A store that is idempotent on uid like the real one, behind a link that fails at random:
 * before storing (nothing stored) or after (stored, but the answer lost: the worst case for
 * duplicates). A fixed seed keeps the run reproducible.
 */
function flakyStore(seed: number) {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const stored: string[] = [];
  const seen = new Set<string>();
  let writes = 0;
  let down = false;
  const sink = (): AuditSink & { dead: boolean } => {
    const me = {
      dead: false,
      batch: 25,
      maxBatchBytes: 1 << 20,
      async send(events: AuditEventRecord[]) {
        await new Promise((r) => setTimeout(r, 1));
        if (me.dead || down) throw new Error('unreachable');
        const r = rand();
        if (r < 0.3) throw new Error('lost before storing');
        writes++;
        for (const e of events) {
          if (seen.has(e.uid)) continue;
          seen.add(e.uid);
          stored.push(e.uid);
        }
        if (r < 0.5) throw new Error('stored, answer lost');
      },
      close: () => Promise.resolve(),
    };
    return me;
  };
  return { sink, stored, writes: () => writes, setDown: (d: boolean) => (down = d) };
}

describe('SpooledAuditLog', () => {
  it('loses and duplicates nothing through a failing link and two process deaths, and stores each source in order', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'kw-spooled-')), 'spool');
    const store = flakyStore(42);
    const N = 600;
    let next = 0;
    const run = async (count: number, die: boolean) => {
      const sink = store.sink();
      const log = new SpooledAuditLog({ spoolDir: dir, sink, logger: silentLogger(), lingerMs: 2, maxRetryDelayMs: 20 });
      // Each record resolves once durable: what a response waits for.
      const answered = await Promise.all(Array.from({ length: count }, () => log.record(event(next++))));
      expect(answered.every(Boolean)).toBe(true);
      if (die) {
        // kill -9: no close, no flush; the link goes with the process.
        await new Promise((r) => setTimeout(r, 15));
        sink.dead = true;
        return log;
      }
      for (let i = 0; i < 200 && log.pending > 0; i++) await log.flush();
      await log.close();
      return log;
    };
    await run(N / 3, true);
    store.setDown(true);
    await run(N / 3, true);
    store.setDown(false);
    const last = await run(N / 3, false);
    const generated = N;
    const stored = store.stored.length;
    const duplicated = stored - new Set(store.stored).size;
    const lost = generated - new Set(store.stored).size;
    console.log(`spooled log: generated ${generated}, stored ${stored}, lost ${lost}, duplicated ${duplicated}, store writes ${store.writes()}`);
    expect(lost).toBe(0);
    expect(duplicated).toBe(0);
    expect(last.pending).toBe(0);
    // One batch in flight at a time: stored in the order recorded, across restarts.
    expect(store.stored).toEqual(Array.from({ length: N }, (_, i) => `u${i}`));
  }, 60_000);

  it('flush waits for confirmation while the sink works, and gives up waiting (not the events) when it fails', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'kw-spooled-')), 'spool');
    const got: string[] = [];
    let fail = false;
    const sink: AuditSink = {
      batch: 100,
      maxBatchBytes: 1 << 20,
      async send(events) {
        if (fail) throw new Error('down');
        got.push(...events.map((e) => e.uid));
      },
      close: () => Promise.resolve(),
    };
    const log = new SpooledAuditLog({ spoolDir: dir, sink, logger: silentLogger(), lingerMs: 10_000 });
    log.emit(event(1));
    await log.flush();
    expect(got).toEqual(['u1']);
    fail = true;
    log.emit(event(2));
    await log.flush();
    expect(log.pending).toBe(1);
    fail = false;
    await log.close();
    expect(got).toEqual(['u1', 'u2']);
  });

  it("takes over the events of the previous spool format and removes its files once they are durable", async () => {
    const base = mkdtempSync(join(tmpdir(), 'kw-spooled-'));
    const legacy = join(base, 'audit-spool.jsonl');
    writeFileSync(`${legacy}.sending`, `${JSON.stringify([event(1), event(2)])}\n`);
    writeFileSync(legacy, `${JSON.stringify([event(3)])}\n{"torn`);
    const got: string[] = [];
    const sink: AuditSink = { batch: 100, maxBatchBytes: 1 << 20, send: async (events) => void got.push(...events.map((e) => e.uid)), close: () => Promise.resolve() };
    const log = new SpooledAuditLog({ spoolDir: join(base, 'spool'), sink, logger: silentLogger(), lingerMs: 1, legacyFile: legacy });
    await log.flush();
    await log.close();
    expect(got).toEqual(['u1', 'u2', 'u3']);
    expect(existsSync(legacy) || existsSync(`${legacy}.sending`)).toBe(false);
  });
});
