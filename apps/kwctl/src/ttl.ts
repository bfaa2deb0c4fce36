import { BadParameterError } from '@keyway/errors';
import { formatDuration, parseDuration } from '@keyway/resources';

/**
 * A --ttl flag as whole seconds for the API. Below one second it is an error rather than
 * a rounding to 0, which the API reads as "the default" (or, for locks, "forever").
 */
export function ttlSeconds(flag: string, value: string, maxMs?: number): number {
  const ms = parseDuration(value);
  if (ms < 1000) throw new BadParameterError(`${flag} must be at least 1s (got ${value})`);
  if (maxMs !== undefined && ms > maxMs) throw new BadParameterError(`${flag} must be at most ${formatDuration(maxMs)} (got ${value})`);
  return Math.round(ms / 1000);
}
