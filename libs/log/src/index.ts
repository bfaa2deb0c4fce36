import { destination, pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stderr, so stdout stays free for command output.
 * KEYWAY_LOG_LEVEL overrides the level (e.g. debug, warn, silent).
 */
export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const level = process.env['KEYWAY_LOG_LEVEL'] ?? options.level ?? 'info';
  return pino({ ...options, level, base: { component } }, destination({ fd: 2, sync: false }));
}

/** A logger that writes nothing, for tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export { Backoff, Outage, retryForever, type BackoffOptions } from './backoff.js';
export { acquirePidLock, type PidLockOptions } from './pid-lock.js';
export { KEYWAY_VERSION, versionLine } from './version.js';
