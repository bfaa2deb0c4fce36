import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Backoff, Outage, retryForever } from './backoff.js';

function recordingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { logger, lines };
}

describe('Backoff', () => {
  it('stays within its bounds, grows, and never exceeds the cap however long the outage', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5_000 }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 200 }),
        (minMs, extra, jitter, randoms) => {
          const maxMs = minMs + extra;
          let i = 0;
          const b = new Backoff({ minMs, maxMs, jitter, random: () => randoms[i++ % randoms.length] as number });
          let lastStep = 0;
          for (let n = 0; n < randoms.length; n++) {
            const step = b.stepMs;
            expect(step).toBeGreaterThanOrEqual(lastStep);
            expect(step).toBeLessThanOrEqual(maxMs);
            const d = b.next();
            expect(d).toBeLessThanOrEqual(step);
            expect(d).toBeGreaterThanOrEqual(Math.floor(step * (1 - jitter)));
            lastStep = step;
          }
          b.reset();
          expect(b.stepMs).toBe(minMs);
        },
      ),
      { seed: 10, numRuns: 200 },
    );
  });

  it('reaches the 10 s cap from 0.5 s and keeps it after a thousand failures', () => {
    const b = new Backoff({ random: () => 0 });
    const delays = Array.from({ length: 1_000 }, () => b.next());
    expect(delays.slice(0, 6)).toEqual([500, 1_000, 2_000, 4_000, 8_000, 10_000]);
    expect(delays.at(-1)).toBe(10_000);
  });
});

describe('Outage', () => {
  it('warns once per reason, keeps repeats at debug, and says when the peer is back', () => {
    const { logger, lines } = recordingLogger();
    const o = new Outage(logger, 'the auth server at a:1');
    o.recovered(); // nothing was down: nothing to say
    o.failed(new Error('connect ECONNREFUSED'), 500);
    o.failed(new Error('connect ECONNREFUSED'), 1_000);
    o.failed(new Error('connect ECONNREFUSED'), 2_000);
    o.failed(new Error('certificate expired'), 4_000);
    expect(o.down).toBe(true);
    o.recovered();
    const warn = lines.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warn).toEqual([
      'waiting for the auth server at a:1: connect ECONNREFUSED; retrying in 0.5 s',
      'waiting for the auth server at a:1: certificate expired; retrying in 4.0 s',
    ]);
    expect(lines.filter((l) => l.level === 20)).toHaveLength(2);
    expect(lines.filter((l) => l.level === 30).map((l) => l.msg)).toEqual([expect.stringMatching(/^the auth server at a:1 is reachable again after/)]);
  });
});

describe('retryForever', () => {
  it('retries until the call succeeds, and gives up at once on an error that retrying cannot fix', async () => {
    const { logger } = recordingLogger();
    let calls = 0;
    const out = await retryForever(
      async () => {
        if (++calls < 4) throw new Error('down');
        return 'up';
      },
      { what: 'x', logger, backoff: new Backoff({ minMs: 1, maxMs: 2 }) },
    );
    expect([out, calls]).toEqual(['up', 4]);
    const refused = new Error('token refused');
    await expect(retryForever(() => Promise.reject(refused), { what: 'x', logger, retryable: (e) => e !== refused })).rejects.toBe(refused);
  });

  it('stops waiting when aborted', async () => {
    const { logger } = recordingLogger();
    const ac = new AbortController();
    const p = retryForever(() => Promise.reject(new Error('down')), { what: 'x', logger, backoff: new Backoff({ minMs: 60_000 }), signal: ac.signal });
    ac.abort(new Error('closing'));
    await expect(p).rejects.toThrow('closing');
  });
});
