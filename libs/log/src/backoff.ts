import type { Logger } from 'pino';

export interface BackoffOptions {
  /** First delay (default 500 ms). */
  minMs?: number;
  /** Largest delay (default 10 s). */
  maxMs?: number;
  /** Growth per failure (default 2). */
  factor?: number;
  /**
   * Share of each delay that is random (default 0.5: a delay lies between half and all of
   * its step), so hosts that lost the same peer at the same moment do not redial in step.
   */
  jitter?: number;
  /** For tests. */
  random?: () => number;
}

/**
 * Jittered, capped exponential backoff: the one retry schedule for every loop that waits on
 * a peer (agents dialling proxies, proxies watching auth, start-up waits). `next()` gives the
 * delay before the next attempt and moves one step up; `reset()` after a success.
 */
export class Backoff {
  private failures = 0;
  private readonly o: Required<BackoffOptions>;

  constructor(options: BackoffOptions = {}) {
    this.o = { minMs: 500, maxMs: 10_000, factor: 2, jitter: 0.5, random: Math.random, ...options };
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.failures;
  }

  /** The step the next delay is drawn from, without jitter. */
  get stepMs(): number {
    // Capped exponent: the power cannot overflow however long the outage lasts.
    return Math.min(this.o.maxMs, this.o.minMs * this.o.factor ** Math.min(this.failures, 64));
  }

  next(): number {
    const step = this.stepMs;
    this.failures++;
    const jitter = Math.min(Math.max(this.o.jitter, 0), 1);
    return Math.round(step * (1 - jitter * this.o.random()));
  }

  reset(): void {
    this.failures = 0;
  }
}

/**
 * Says what a retry loop is waiting for, once per state change instead of once per attempt:
 * the first failure (and any failure with a new reason) at warn, with the delay before the
 * next try; repeats of the same reason at debug; the recovery at info, with how long it took.
 */
export class Outage {
  private since: number | undefined;
  private lastReason: string | undefined;

  constructor(
    private readonly logger: Logger,
    /** What is awaited, as a phrase: "the auth server at 10.0.0.1:3025". */
    private readonly what: string,
    private readonly fields: Record<string, unknown> = {},
  ) {}

  get down(): boolean {
    return this.since !== undefined;
  }

  /** `reason`: a short description of `err` ("connection refused"), where the caller has one. */
  failed(err: unknown, retryInMs: number, reason = err instanceof Error ? err.message : String(err)): void {
    const retryIn = `${(retryInMs / 1000).toFixed(1)} s`;
    if (this.since === undefined) this.since = Date.now();
    const log = { ...this.fields, err: reason, retryInMs };
    if (reason !== this.lastReason) this.logger.warn(log, `waiting for ${this.what}: ${reason}; retrying in ${retryIn}`);
    else this.logger.debug(log, `still waiting for ${this.what}; retrying in ${retryIn}`);
    this.lastReason = reason;
  }

  recovered(message?: string): void {
    if (this.since === undefined) return;
    const downMs = Date.now() - this.since;
    this.since = undefined;
    this.lastReason = undefined;
    this.logger.info({ ...this.fields, downMs }, message ?? `${this.what} is reachable again after ${(downMs / 1000).toFixed(1)} s`);
  }
}

/**
 * Calls `fn` until it succeeds, waiting by `backoff` between attempts and saying what it
 * waits for. Errors for which `retryable` is false end the loop (a refused token will not
 * start working by being retried). Stops with the signal's reason when aborted.
 */
export async function retryForever<T>(
  fn: () => Promise<T>,
  o: { what: string; logger: Logger; backoff?: Backoff; retryable?: (err: unknown) => boolean; describe?: (err: unknown) => string; signal?: AbortSignal },
): Promise<T> {
  const backoff = o.backoff ?? new Backoff();
  const outage = new Outage(o.logger, o.what);
  for (;;) {
    o.signal?.throwIfAborted();
    try {
      const out = await fn();
      outage.recovered();
      return out;
    } catch (err) {
      if (o.retryable && !o.retryable(err)) throw err;
      const delay = backoff.next();
      outage.failed(err, delay, o.describe?.(err));
      await sleep(delay, o.signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    // Not unref'd: a process whose only job is to wait for its dependency must stay up.
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
