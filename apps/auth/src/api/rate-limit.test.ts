import { describe, expect, it } from 'vitest';
import { isKind } from '@keyway/errors';
import { AuthRateLimits, TokenBuckets } from './rate-limit.js';

describe('TokenBuckets', () => {
  it('allows a burst, then one call per period, and says how long to wait', () => {
    let now = 0;
    const b = new TokenBuckets({ burst: 3, periodMs: 1000 }, { now: () => now });
    expect([b.take('a'), b.take('a'), b.take('a')]).toEqual([0, 0, 0]);
    expect(b.take('a')).toBe(1000);
    now = 400;
    expect(b.take('a')).toBe(600);
    now = 1000;
    expect(b.take('a')).toBe(0);
    expect(b.take('a')).toBe(1000);
    // Another key has its own bucket.
    expect(b.take('b')).toBe(0);
    // A long pause refills to the burst, no more.
    now = 100_000;
    expect([b.take('a'), b.take('a'), b.take('a'), b.take('a')]).toEqual([0, 0, 0, 1000]);
  });

  it('stays within its key budget under a spray of keys, keeping the buckets in use', () => {
    let now = 0;
    const b = new TokenBuckets({ burst: 2, periodMs: 60_000 }, { maxKeys: 100, now: () => now });
    b.take('attacker');
    b.take('attacker');
    for (let i = 0; i < 10_000; i++) {
      now += 1;
      b.take(`spray-${i}`);
      if (i % 50 === 0) b.take('attacker'); // keeps its bucket recently used, and empty
    }
    expect(b.size).toBeLessThanOrEqual(101);
    expect(b.take('attacker')).toBeGreaterThan(0);
  });
});

describe('AuthRateLimits', () => {
  const refusal = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      expect(isKind(err, 'LimitExceeded')).toBe(true);
      return err as Error & { data: Record<string, unknown> };
    }
    throw new Error('not limited');
  };

  it('limits per address and per subject, each call kind on its own, with a retry-after', () => {
    let now = 0;
    const limits = new AuthRateLimits({ perAddress: { burst: 4, periodMs: 1000 }, perSubject: { burst: 2, periodMs: 3000 }, now: () => now });
    limits.check('login', '10.0.0.1', 'alice');
    limits.check('login', '10.0.0.1', 'alice');
    const perUser = refusal(() => limits.check('login', '10.0.0.2', 'alice'));
    expect(perUser.message).toBe('too many login attempts for this user; retry after 3s');
    expect(perUser.data).toMatchObject({ retryAfterSeconds: 3, limit: 'login' });
    // Other users from the same address still get in, until the address runs dry.
    limits.check('login', '10.0.0.1', 'bob');
    limits.check('login', '10.0.0.1', 'dave');
    const perAddress = refusal(() => limits.check('login', '10.0.0.1', 'carol'));
    expect(perAddress.message).toBe('too many login attempts from this address; retry after 1s');
    // Joins and user tokens are counted apart from logins.
    limits.check('join', '10.0.0.1', 'token-1');
    limits.check('complete_user_token', '10.0.0.1', 'tok');
    limits.check('get_user_token', '10.0.0.1', 'tok');
    now = 3000;
    limits.check('login', '10.0.0.1', 'alice');
  });
});
