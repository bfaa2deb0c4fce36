import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionProblemError } from '@keyway/errors';
import type { Logger } from '@keyway/log';

/** First retry after this long, doubling up to MAX_DELAY_MS. */
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

export interface WaitOptions {
  /** What is waited for, as the log names it: "Postgres at db:5432", "the auth service at auth:3025". */
  what: string;
  logger: Logger;
  /** Why `err` means `what` is not reachable yet, or undefined when it is another failure (that ends the wait). */
  reasonOf?: (err: unknown) => string | undefined;
  signal?: AbortSignal;
}

/** A ConnectionProblem from a call (see callFailure) names its short reason in its data. */
export function unreachableReason(err: unknown): string | undefined {
  if (!(err instanceof ConnectionProblemError)) return undefined;
  const reason = err.data['reason'];
  return typeof reason === 'string' ? reason : err.message;
}

/**
 * Runs `attempt` until it succeeds, as long as it fails because a dependency is not reachable
 * yet (services start in any order: Postgres after auth, auth after the proxy), logging
 * "waiting for <what> (<reason>); retrying in Ns" at every failure, with jittered backoff so
 * replicas that started together do not retry in step. Any other failure ends the wait.
 */
export async function untilReachable<T>(attempt: () => Promise<T>, o: WaitOptions): Promise<T> {
  const reasonOf = o.reasonOf ?? unreachableReason;
  let delay = FIRST_DELAY_MS;
  for (let n = 1; ; n++) {
    try {
      const result = await attempt();
      if (n > 1) o.logger.info({ attempts: n }, `${o.what} is reachable`);
      return result;
    } catch (err) {
      const reason = reasonOf(err);
      if (reason === undefined) throw err;
      const wait = Math.round(delay * (0.75 + Math.random() * 0.5));
      o.logger.warn({ attempt: n, retryInMs: wait }, `waiting for ${o.what} (${reason}); retrying in ${(wait / 1000).toFixed(1)}s`);
      await sleep(wait, undefined, o.signal ? { signal: o.signal } : {});
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}
