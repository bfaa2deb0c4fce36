import { BadParameterError } from '@keyway/errors';

/**
 * Go-style durations, as Teleport writes them in resources (`8h`, `30m`, `1h30m`, `30h0m0s`,
 * `1.5h`, `300ms`). Keyway keeps Go's grammar exactly (no `d` unit) so a value that Teleport
 * accepts is accepted here and the other way round.
 */

/** Nanoseconds per unit, as exact integers (Go's time.Duration is an int64 of nanoseconds). */
const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5 micro sign, as Go prints it
  'μs': 1_000n, // U+03BC greek mu, also accepted by Go
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const HOUR_MS = 3_600_000;
const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;
const NS_PER_M = 60n * NS_PER_S;
const NS_PER_H = 60n * NS_PER_M;

/** Go's time.Duration range: an int64 of nanoseconds, [-2^63, 2^63-1]. */
const MAX_NS = 2n ** 63n - 1n;
const MIN_NS = -(2n ** 63n);

/** The longest duration Go (and so Teleport) can hold, about 292 years, as Go prints it. */
export const MAX_DURATION = '2562047h47m16.854775807s';
/** MAX_DURATION in milliseconds (as close as a double gets). */
export const MAX_DURATION_MS = nsToMs(MAX_NS);

/** Teleport's default (and maximum) `max_session_ttl`: 30 hours (`defaults.MaxCertDuration`). */
export const DEFAULT_MAX_SESSION_TTL = '30h';
export const DEFAULT_MAX_SESSION_TTL_MS = 30 * HOUR_MS;

export interface ParseDurationOptions {
  /**
   * Accept a leading `-`, as Go does. Off by default: every duration Keyway reads (TTLs,
   * timeouts, lockouts) must be zero or more, so `-1h` is an error unless the caller opts in.
   */
  allowNegative?: boolean;
}

/**
 * Parses a Go duration string and returns milliseconds (fractional below one millisecond).
 * The arithmetic is done in integer nanoseconds as Go does, so the value is exact and a total
 * outside Go's time.Duration range (about 292 years) is rejected instead of being rounded.
 * A leading `+` is allowed; a leading `-` only with `allowNegative`.
 * Throws BadParameterError naming the value and what is wrong with it.
 */
export function parseDuration(s: string, options: ParseDurationOptions = {}): number {
  const fail = (why: string): never => {
    throw new BadParameterError(`invalid duration ${JSON.stringify(s)}: ${why}`, { value: s });
  };
  if (typeof s !== 'string') fail('must be a string such as "8h" or "1h30m"');
  const outOfRange = () => fail(`out of range (the longest duration is ${MAX_DURATION}, about 292 years)`);
  let rest = s;
  let negative = false;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    negative = rest[0] === '-';
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') fail('empty duration (use a number with a unit, such as "8h" or "30m")');
  // Go allows one more nanosecond below zero than above it.
  const limit = negative ? -MIN_NS : MAX_NS;
  let total = 0n;
  const part = /^(\d*)(?:\.(\d*))?([a-zµμ]*)/;
  while (rest !== '') {
    const m = part.exec(rest);
    const whole = m?.[1] ?? '';
    const frac = m?.[2];
    const unit = m?.[3] ?? '';
    if (!m || (whole === '' && (frac === undefined || frac === ''))) {
      fail(`expected a number at ${JSON.stringify(rest)}`);
    }
    if (unit === '') fail(`missing unit after ${JSON.stringify(m![0])} (use h, m, s, ms, us or ns)`);
    const factor = UNIT_NS[unit];
    if (factor === undefined) fail(`unknown unit ${JSON.stringify(unit)} (use h, m, s, ms, us or ns)`);
    total += BigInt(whole === '' ? '0' : whole) * factor!;
    if (frac) {
      // Below a nanosecond is truncated, as in Go.
      total += (BigInt(frac) * factor!) / 10n ** BigInt(frac.length);
    }
    if (total > limit) outOfRange();
    rest = rest.slice(m![0].length);
  }
  if (total === 0n) return 0;
  if (negative && !options.allowNegative) fail('is negative (durations must be zero or more)');
  const ms = nsToMs(negative ? -total : total);
  // Cannot happen with integer arithmetic; kept so that no caller ever sees NaN or a flipped sign.
  if (!Number.isFinite(ms) || (ms < 0) !== negative) outOfRange();
  return ms;
}

/** Exact enough: the whole milliseconds and the nanosecond remainder are converted separately. */
function nsToMs(ns: bigint): number {
  return Number(ns / NS_PER_MS) + Number(ns % NS_PER_MS) / 1e6;
}

/** Milliseconds to whole nanoseconds, or undefined outside Go's range. */
function msToNs(ms: number): bigint | undefined {
  if (!Number.isFinite(ms) || Math.abs(ms) > Number.MAX_SAFE_INTEGER) return undefined;
  const whole = Math.trunc(ms);
  const ns = BigInt(whole) * NS_PER_MS + BigInt(Math.round((ms - whole) * 1e6));
  return ns > MAX_NS || ns < MIN_NS ? undefined : ns;
}

/**
 * Formats milliseconds as a compact Go duration that parseDuration (and Go) reads back:
 * `8h`, `1h30m`, `45s`, `1m0.5s`, `250ms`, `0s`. Zero units are left out, unlike Go's own
 * `8h0m0s`, because people read these in YAML. Values are rounded to the nanosecond; NaN,
 * infinities and values outside Go's range throw BadParameterError.
 */
export function formatDuration(ms: number): string {
  const ns = msToNs(ms);
  if (ns === undefined) {
    throw new BadParameterError(`cannot format duration ${ms}ms: out of range (the longest duration is ${MAX_DURATION})`, { value: ms });
  }
  if (ns === 0n) return '0s';
  if (ns < 0n) return `-${formatNs(-ns)}`;
  return formatNs(ns);
}

function formatNs(ns: bigint): string {
  if (ns < NS_PER_S) {
    if (ns % NS_PER_MS === 0n) return `${ns / NS_PER_MS}ms`;
    if (ns < 1000n) return `${ns}ns`;
    if (ns < NS_PER_MS) return `${decimal(ns, 1000n)}us`;
    return `${decimal(ns, NS_PER_MS)}ms`;
  }
  const h = ns / NS_PER_H;
  const m = (ns % NS_PER_H) / NS_PER_M;
  const sec = ns % NS_PER_M;
  let out = '';
  if (h > 0n) out += `${h}h`;
  if (m > 0n) out += `${m}m`;
  if (sec > 0n) out += `${decimal(sec, NS_PER_S)}s`;
  return out;
}

/** `n / unit` written exactly, without trailing zeros: decimal(1500n, 1000n) is `1.5`. */
function decimal(n: bigint, unit: bigint): string {
  const whole = n / unit;
  const frac = n % unit;
  if (frac === 0n) return `${whole}`;
  const digits = String(unit).length - 1;
  return `${whole}.${String(frac).padStart(digits, '0').replace(/0+$/, '')}`;
}
