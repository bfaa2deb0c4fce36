import { describe, expect, it } from 'vitest';
import { silentLogger } from '@keyway/log';
import { SessionRecorder, type SessionChunk } from './recorder.js';

const meta = { id: '00000000-0000-4000-8000-000000000000', user: 'jimbo', cluster: 'k', namespace: 'default', pod: 'web', container: '', command: ['sh'], started: new Date(0) };

describe('SessionRecorder', () => {
  it('cuts chunks at the size limit, in order, and ends with the last one', async () => {
    const got: SessionChunk[] = [];
    const r = new SessionRecorder(meta, async (c) => void got.push(c), silentLogger(), { maxChunkBytes: 100, flushMs: 10_000 });
    for (let i = 0; i < 10; i++) r.record({ t: i, type: 'stdout', data: 'x'.repeat(40) });
    await r.close(new Date(5));
    expect(got.map((c) => c.seq)).toEqual(got.map((_, i) => i));
    expect(got.length).toBeGreaterThan(3);
    expect(got.at(-1)?.ended).toEqual(new Date(5));
    const events = got.flatMap((c) => c.events.split('\n').filter(Boolean)).map((l) => JSON.parse(l) as { t: number });
    expect(events.map((e) => e.t)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('flushes after the interval and retries a failed upload', async () => {
    const got: SessionChunk[] = [];
    let failures = 1;
    const r = new SessionRecorder(
      meta,
      async (c) => {
        if (failures-- > 0) throw new Error('auth is away');
        got.push(c);
      },
      silentLogger(),
      { flushMs: 20, retryDelaysMs: [10] },
    );
    r.record({ t: 0, type: 'stdin', data: 'ls\n' });
    await new Promise((res) => setTimeout(res, 100));
    expect(got.map((c) => c.events)).toEqual(['{"t":0,"type":"stdin","data":"ls\\n"}']);
    await r.close(new Date());
  });

  it('drops events past the pending bound and says so', async () => {
    const got: SessionChunk[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((res) => (release = res));
    const r = new SessionRecorder(
      meta,
      async (c) => {
        await gate;
        got.push(c);
      },
      silentLogger(),
      { maxChunkBytes: 100, maxPendingBytes: 200 },
    );
    for (let i = 0; i < 20; i++) r.record({ t: i, type: 'stdout', data: 'y'.repeat(30) });
    release();
    r.record({ t: 99, type: 'stdout', data: 'z' });
    await r.close(new Date());
    const lines = got.flatMap((c) => c.events.split('\n').filter(Boolean));
    expect(lines.length).toBeLessThan(20);
    expect(lines.some((l) => /event\(s\) dropped: the recording store is behind/.test(l))).toBe(true);
  });

  it('never makes a chunk larger than its limit, and drops (and notes) an event that alone would be', async () => {
    const got: SessionChunk[] = [];
    const r = new SessionRecorder(meta, async (c) => void got.push(c), silentLogger(), { maxChunkBytes: 200, flushMs: 10_000 });
    const sizes = [10, 150, 60, 90, 500, 5, 160, 120, 'ü'.repeat(80)];
    sizes.forEach((n, i) => r.record({ t: i, type: 'stdout', data: typeof n === 'number' ? 'x'.repeat(n) : n }));
    await r.close(new Date(9));
    for (const c of got) expect(Buffer.byteLength(c.events)).toBeLessThanOrEqual(200);
    const events = got.flatMap((c) => c.events.split('\n').filter(Boolean)).map((l) => JSON.parse(l) as { t: number; type: string; message?: string });
    expect(events.filter((e) => e.type === 'stdout').map((e) => e.t)).toEqual([0, 1, 2, 3, 5, 6, 7, 8]);
    expect(events.find((e) => e.type === 'observer')?.message).toBe('1 event(s) dropped: each larger than a chunk (200 bytes)');
  });
});
