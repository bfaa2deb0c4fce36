import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Batcher, RemoteAuditLog } from './audit-log.js';
import { silentLogger } from '@keyway/log';
import type { AuditEventRecord } from '@keyway/store';

const event = (i: number): AuditEventRecord => ({ uid: `u${i}`, time: new Date(0).toISOString(), event: 'kube.request', code: 'T3009I' });

describe('Batcher', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('waits the linger for a partial batch, once, and starts a full batch at once', () => {
    const run = vi.fn();
    const b = new Batcher(run, 20, 3);
    b.schedule(1);
    b.schedule(2);
    expect(run).not.toHaveBeenCalled();
    vi.advanceTimersByTime(19);
    expect(run).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(run).toHaveBeenCalledTimes(1);
    b.schedule(3);
    expect(run).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(100);
    expect(run).toHaveBeenCalledTimes(2);
  });

  it('now() starts at once and cancels the pending wait', () => {
    const run = vi.fn();
    const b = new Batcher(run, 20, 100);
    b.schedule(1);
    b.now();
    vi.advanceTimersByTime(100);
    expect(run).toHaveBeenCalledTimes(1);
  });
});

describe('RemoteAuditLog', () => {
  it('sends what gathered during the linger as one batch, in order, and flush sends at once', async () => {
    const sent: string[][] = [];
    const log = new RemoteAuditLog(
      async (events) => {
        sent.push(events.map((e) => (JSON.parse(e) as AuditEventRecord).uid));
      },
      silentLogger(),
      100_000,
      30,
    );
    for (let i = 0; i < 5; i++) log.emit(event(i));
    await new Promise((r) => setTimeout(r, 60));
    expect(sent).toEqual([['u0', 'u1', 'u2', 'u3', 'u4']]);
    log.emit(event(5));
    await log.flush();
    expect(sent).toEqual([['u0', 'u1', 'u2', 'u3', 'u4'], ['u5']]);
  });
});
