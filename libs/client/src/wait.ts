import { ConnectionProblemError } from '@keyway/errors';
import { retryForever, type Logger } from '@keyway/log';

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
 * yet (services start in any order: Postgres after auth, auth after the proxy), saying
 * "waiting for <what>: <reason>; retrying in N s" (the one retry loop, `retryForever`, with
 * its jittered backoff). Any other failure ends the wait.
 */
export function untilReachable<T>(attempt: () => Promise<T>, o: WaitOptions): Promise<T> {
  const reasonOf = o.reasonOf ?? unreachableReason;
  return retryForever(attempt, {
    what: o.what,
    logger: o.logger,
    retryable: (err) => reasonOf(err) !== undefined,
    describe: (err) => reasonOf(err) ?? String(err),
    ...(o.signal ? { signal: o.signal } : {}),
  });
}
