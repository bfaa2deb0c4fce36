import { createHash } from 'node:crypto';
import { LimitExceededError } from '@keyway/errors';

/** One bucket's shape: `burst` calls at once, then one more every `periodMs`. */
export interface BucketRate {
  burst: number;
  periodMs: number;
}

/**
 * Token buckets by key, in memory (so per auth replica: N replicas allow N times the rate,
 * which still bounds guessing to a rate instead of a CPU budget). A bucket that has refilled
 * is the same as no bucket, so those are dropped when the map grows past `maxKeys`; if every
 * bucket is in use the oldest go first, which only ever lets a caller in earlier.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(
    private readonly rate: BucketRate,
    opts: { maxKeys?: number; now?: () => number } = {},
  ) {
    this.maxKeys = opts.maxKeys ?? 100_000;
    this.now = opts.now ?? Date.now;
  }

  /** Takes one token; returns 0 when the call may go ahead, otherwise the ms until it may. */
  take(key: string): number {
    const now = this.now();
    const b = this.buckets.get(key);
    const tokens = b ? Math.min(this.rate.burst, b.tokens + Math.max(0, now - b.at) / this.rate.periodMs) : this.rate.burst;
    if (tokens < 1) return Math.ceil((1 - tokens) * this.rate.periodMs);
    if (b) this.buckets.delete(key); // re-inserted last: Map order is then oldest use first
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    if (this.buckets.size > this.maxKeys) this.sweep(now);
    return 0;
  }

  get size(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + Math.max(0, now - b.at) / this.rate.periodMs >= this.rate.burst) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= this.maxKeys) break;
      this.buckets.delete(key);
    }
  }
}

/** The calls anonymous callers can repeat to guess something: a password, a user token, a join token, a SCIM token. */
export type LimitedCall = 'login' | 'complete_user_token' | 'get_user_token' | 'join' | 'sso_login' | 'scim';

const WHAT: Record<LimitedCall, string> = {
  login: 'login attempts',
  complete_user_token: 'signup or reset attempts',
  get_user_token: 'user token look-ups',
  join: 'join attempts',
  sso_login: 'SSO login attempts',
  scim: 'SCIM requests',
};

/**
 * SCIM requests come from an IdP's few addresses in bursts (a sync pushes every user), and a
 * SCIM token is 256 random bits, so guessing is hopeless at any rate: its address bucket bounds
 * the work a stranger can cause instead (20 look-ups a second, bursts of 100).
 */
const ADDRESS_RATES: Partial<Record<LimitedCall, BucketRate>> = { scim: { burst: 100, periodMs: 50 } };

export interface AuthRateLimitOptions {
  /** Per source address: the client's own, also behind a proxy (its relay vouches for it). */
  perAddress: BucketRate;
  /** Per user name (login) or per token (user tokens, joins). */
  perSubject: BucketRate;
  now?: () => number;
}

/** Teleport-like defaults: a burst of 10 per user, then one every 5 s; addresses get more, as a relay's address is shared. */
export const DEFAULT_RATE_LIMITS: AuthRateLimitOptions = {
  perAddress: { burst: 20, periodMs: 1_000 },
  perSubject: { burst: 10, periodMs: 5_000 },
};

/**
 * Rate limits of the auth service's unauthenticated calls, checked before any work (argon2,
 * store look-ups) is done. Every call kind has its own buckets. The subject (a user name, a
 * token) is hashed before it is used as a key, so the map holds no secrets.
 */
export class AuthRateLimits {
  private readonly byAddress = new Map<LimitedCall, TokenBuckets>();
  private readonly bySubject = new Map<LimitedCall, TokenBuckets>();

  constructor(private readonly o: AuthRateLimitOptions = DEFAULT_RATE_LIMITS) {}

  /**
   * Throws LimitExceededError (gRPC RESOURCE_EXHAUSTED) with a retry-after when the address or
   * the subject has no token left. The address is the client's: the TCP peer, or the address a
   * proxy's signed relay header vouches for. Without a subject only the address is limited.
   */
  check(call: LimitedCall, address: string | undefined, subject?: string): void {
    const addressWait = this.buckets(this.byAddress, call, ADDRESS_RATES[call] ?? this.o.perAddress).take(address ?? '');
    if (addressWait > 0) throw limited(call, 'from this address', addressWait);
    if (subject === undefined) return;
    const subjectKey = createHash('sha256').update(subject).digest('base64url').slice(0, 22);
    const subjectWait = this.buckets(this.bySubject, call, this.o.perSubject).take(subjectKey);
    if (subjectWait > 0) throw limited(call, call === 'login' ? 'for this user' : 'with this token', subjectWait);
  }

  private buckets(map: Map<LimitedCall, TokenBuckets>, call: LimitedCall, rate: BucketRate): TokenBuckets {
    let b = map.get(call);
    if (!b) map.set(call, (b = new TokenBuckets(rate, this.o.now ? { now: this.o.now } : {})));
    return b;
  }
}

function limited(call: LimitedCall, scope: string, waitMs: number): LimitExceededError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new LimitExceededError(`too many ${WHAT[call]} ${scope}; retry after ${seconds}s`, { retryAfterSeconds: seconds, limit: call });
}

/** The options from the `auth_service.rate_limits` section of the configuration. */
export function rateLimitsOf(c: { per_address: { burst: number; period: number }; per_user: { burst: number; period: number } }): AuthRateLimitOptions {
  return {
    perAddress: { burst: c.per_address.burst, periodMs: c.per_address.period },
    perSubject: { burst: c.per_user.burst, periodMs: c.per_user.period },
  };
}
