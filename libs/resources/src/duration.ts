import { BadParameterError } from '@keyway/errors';

/**
 * Go-style durations, as Teleport writes them in resources (`8h`, `30m`, `1h30m`, `30h0m0s`,
 * `1.5h`, `300ms`). Keyway keeps Go's grammar exactly (no `d` unit) so a value that Teleport
 * accepts is accepted here and the other way round.
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 micro sign, as Go prints it
  'μs': 1e-3, // U+03BC greek mu, also accepted by Go
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

/** Teleport's default (and maximum) `max_session_ttl`: 30 hours (`defaults.MaxCertDuration`). */
export const DEFAULT_MAX_SESSION_TTL = '30h';
export const DEFAULT_MAX_SESSION_TTL_MS = 30 * HOUR_MS;

/**
 * Parses a Go duration string and returns milliseconds (fractional below one millisecond).
 * A sign is allowed, as in Go; callers decide whether negative values make sense.
 * Throws BadParameterError naming the value and what is wrong with it.
 */
export function parseDuration(s: string): number {
  const fail = (why: string): never => {
    throw new BadParameterError(`invalid duration ${JSON.stringify(s)}: ${why}`, { value: s });
  };
  if (typeof s !== 'string') fail('must be a string such as "8h" or "1h30m"');
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') fail('empty duration (use a number with a unit, such as "8h" or "30m")');
  let total = 0;
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
    const factor = UNIT_MS[unit];
    if (factor === undefined) fail(`unknown unit ${JSON.stringify(unit)} (use h, m, s, ms, us or ns)`);
    const value = Number(`${whole === '' ? '0' : whole}.${frac ?? '0'}`);
    total += value * factor!;
    rest = rest.slice(m![0].length);
  }
  if (!Number.isFinite(total)) fail('out of range');
  return sign * total;
}

/**
 * Formats milliseconds as a compact Go duration that parseDuration (and Go) reads back:
 * `8h`, `1h30m`, `45s`, `1m0.5s`, `250ms`, `0s`. Zero units are left out, unlike Go's own
 * `8h0m0s`, because people read these in YAML.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new BadParameterError(`cannot format duration ${ms}`);
  if (ms === 0) return '0s';
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 1000) {
    const ns = Math.round(ms * 1e6);
    if (ns % 1_000_000 === 0) return `${ns / 1_000_000}ms`;
    if (ns < 1000) return `${ns}ns`;
    if (ns < 1_000_000) return `${trimDecimal(ns / 1000)}us`;
    return `${trimDecimal(ns / 1_000_000)}ms`;
  }
  const whole = Math.floor(ms);
  const h = Math.floor(whole / HOUR_MS);
  const m = Math.floor((whole % HOUR_MS) / MINUTE_MS);
  const secMs = whole % MINUTE_MS + (ms - whole);
  let out = '';
  if (h > 0) out += `${h}h`;
  if (m > 0) out += `${m}m`;
  if (secMs > 0) out += `${trimDecimal(secMs / 1000)}s`;
  return out;
}

function trimDecimal(n: number): string {
  // Up to nanosecond precision, without trailing zeros or float noise.
  return n.toFixed(9).replace(/\.?0+$/, '');
}
