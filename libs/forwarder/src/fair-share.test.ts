import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LimitExceededError } from '@keyway/errors';
import { FairShare, type Release } from './fair-share.js';

describe('FairShare', () => {
  it('never lets one user hold more than its share, and refuses beyond its queue', async () => {
    const share = new FairShare({ capacity: 10, perUser: 3, queuePerUser: 0, maxWaitMs: 1_000 });
    const mine = await Promise.all([share.acquire('mallory'), share.acquire('mallory'), share.acquire('mallory')]);
    await expect(share.acquire('mallory')).rejects.toThrow(LimitExceededError);
    await expect(share.acquire('mallory')).rejects.toThrow(/user "mallory" \(at most 3 at once\)/);
    // Somebody else still gets in at once.
    const other = await share.acquire('alice');
    expect(share.inUse('mallory')).toBe(3);
    mine[0]?.();
    mine[0]?.(); // twice: harmless
    expect(share.inUse('mallory')).toBe(2);
    expect(share.inUse()).toBe(3);
    other();
  });

  it('gives freed slots round-robin: a user behind a thousand queued requests of another waits for one', async () => {
    const share = new FairShare({ capacity: 2, perUser: 2, queuePerUser: 1_000, maxWaitMs: 10_000 });
    const held = [await share.acquire('mallory'), await share.acquire('mallory')];
    const order: string[] = [];
    const queued: Promise<Release>[] = [];
    for (let i = 0; i < 1_000; i++) queued.push(share.acquire('mallory').then((r) => (order.push('mallory'), r)));
    const alice = share.acquire('alice').then((r) => (order.push('alice'), r));
    held[0]?.();
    await Promise.resolve();
    held[1]?.();
    const aliceRelease = await alice;
    expect(order.indexOf('alice')).toBeLessThanOrEqual(1);
    aliceRelease();
    // Everyone queued is served eventually.
    for (const q of queued) (await q)();
    expect(share.inUse()).toBe(0);
  });

  it('refuses a request that waited too long', async () => {
    const share = new FairShare({ capacity: 1, perUser: 1, queuePerUser: 5, maxWaitMs: 30 });
    const held = await share.acquire('a');
    await expect(share.acquire('b')).rejects.toThrow(/pool is busy/);
    held();
    (await share.acquire('b'))();
    expect(share.inUse()).toBe(0);
  });

  it('keeps both bounds under any interleaving of acquires and releases (property)', async () => {
    const op = fc.oneof(fc.record({ kind: fc.constant('acquire' as const), user: fc.constantFrom('a', 'b', 'c') }), fc.record({ kind: fc.constant('release' as const), index: fc.nat(50) }));
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const share = new FairShare({ capacity: 4, perUser: 2, queuePerUser: 3, maxWaitMs: 5_000 });
        const held: Release[] = [];
        const pending: Promise<unknown>[] = [];
        const check = () => {
          expect(share.inUse()).toBeLessThanOrEqual(4);
          for (const u of ['a', 'b', 'c']) expect(share.inUse(u)).toBeLessThanOrEqual(2);
        };
        for (const o of ops) {
          if (o.kind === 'acquire') pending.push(share.acquire(o.user).then((r) => (check(), held.push(r)), (e: unknown) => expect(e).toBeInstanceOf(LimitExceededError)));
          else held.splice(o.index % Math.max(held.length, 1), 1)[0]?.();
          await Promise.resolve();
          check();
        }
        // Release everything as it comes: every waiter is served or refused, none is left hanging.
        let settled = false;
        const all = Promise.all(pending).then(() => (settled = true));
        while (!settled) {
          for (const r of held.splice(0)) r();
          await new Promise((r) => setImmediate(r));
        }
        await all;
        for (const r of held.splice(0)) r();
        expect(share.inUse()).toBe(0);
      }),
      { seed: 10, numRuns: 200 },
    );
  });
});
