import { describe, expect, it } from 'vitest';
import { isBadParameter } from '@keyway/errors';
import { DEFAULT_MAX_SESSION_TTL_MS, MAX_DURATION, MAX_DURATION_MS, formatDuration, parseDuration } from './duration.js';

const H = 3_600_000;
const M = 60_000;

describe('parseDuration', () => {
  it.each([
    ['8h', 8 * H],
    ['30m', 30 * M],
    ['1h30m', 90 * M],
    ['30h0m0s', 30 * H],
    ['1.5h', 90 * M],
    ['300ms', 300],
    ['2h45m30.5s', 2 * H + 45 * M + 30_500],
    ['0', 0],
    ['0s', 0],
    ['-0s', 0],
    ['+5m', 5 * M],
    ['1500us', 1.5],
    ['1µs', 0.001],
    ['.5s', 500],
    ['5.s', 5000],
  ])('parses %s', (s, ms) => {
    expect(parseDuration(s)).toBeCloseTo(ms, 9);
  });

  it.each([
    ['', /empty/],
    ['8', /missing unit/],
    ['7d', /unknown unit "d"/],
    ['h', /expected a number/],
    ['1h 30m', /expected a number/],
    ['forever', /expected a number/],
    ['1.h.5', /missing unit/],
    ['-1h', /is negative/],
    ['-0.5s', /is negative/],
    // Beyond Go's time.Duration (int64 nanoseconds, about 292 years): Go says "invalid duration".
    ['99999999999999999h', /out of range.*2562047h47m16\.854775807s/],
    ['2562048h', /out of range/],
    ['2562047h47m16.854775808s', /out of range/],
    ['9223372036854775808ns', /out of range/],
    ['2562047h2562047h', /out of range/],
    ['1' + '0'.repeat(400) + 'h', /out of range/],
  ])('rejects %j', (s, why) => {
    let caught: unknown;
    try {
      parseDuration(s);
    } catch (err) {
      caught = err;
    }
    expect(isBadParameter(caught)).toBe(true);
    expect((caught as Error).message).toMatch(why);
    expect((caught as Error).message).toContain(JSON.stringify(s));
  });

  it('accepts the whole of Go\'s range, exactly', () => {
    expect(parseDuration(MAX_DURATION)).toBe(MAX_DURATION_MS);
    expect(parseDuration('9223372036854775807ns')).toBe(MAX_DURATION_MS);
    expect(parseDuration('2562047h')).toBe(2562047 * H);
    expect(MAX_DURATION_MS).toBeCloseTo(9_223_372_036_854.775, 2);
    // Go allows one more nanosecond below zero than above it.
    expect(parseDuration('-9223372036854775808ns', { allowNegative: true })).toBeCloseTo(-9_223_372_036_854.776, 2);
    expect(() => parseDuration('-9223372036854775809ns', { allowNegative: true })).toThrow(/out of range/);
  });

  it('accepts a minus sign only when asked to, as Go does', () => {
    expect(parseDuration('-1h', { allowNegative: true })).toBe(-H);
    expect(parseDuration('-1h30m', { allowNegative: true })).toBe(-90 * M);
    expect(Object.is(parseDuration('-0s'), 0)).toBe(true);
  });

  it('never returns NaN, Infinity or a value with the wrong sign', () => {
    for (const s of ['1' + '9'.repeat(30) + 'ns', '.' + '9'.repeat(400) + 'h', '2562047h47m16.8547758079999s']) {
      let v: number | undefined;
      try {
        v = parseDuration(s);
      } catch (err) {
        expect(isBadParameter(err)).toBe(true);
        continue;
      }
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(0);
    }
    // Fractions below a nanosecond are truncated, as in Go.
    expect(parseDuration('1.9ns')).toBe(0.000_001);
  });

  it('knows Teleport default max_session_ttl', () => {
    expect(DEFAULT_MAX_SESSION_TTL_MS).toBe(parseDuration('30h'));
  });
});

describe('formatDuration', () => {
  it.each([
    [8 * H, '8h'],
    [90 * M, '1h30m'],
    [30 * M, '30m'],
    [45_000, '45s'],
    [M + 500, '1m0.5s'],
    [250, '250ms'],
    [0, '0s'],
    [-H, '-1h'],
    [1.5, '1.5ms'],
    [0.0015, '1.5us'],
    [0.000_001, '1ns'],
    [30 * H, '30h'],
    [H + 1, '1h0.001s'],
  ])('formats %d as %s', (ms, s) => {
    expect(formatDuration(ms)).toBe(s);
  });

  it('formats the largest durations exactly and refuses larger ones', () => {
    expect(formatDuration(MAX_DURATION_MS)).toBe('2562047h47m16.854775391s');
    expect(parseDuration(formatDuration(MAX_DURATION_MS))).toBe(MAX_DURATION_MS);
    expect(formatDuration(2562047 * H)).toBe('2562047h');
    for (const bad of [MAX_DURATION_MS + 1, 1e17 * H, Infinity, NaN]) {
      expect(() => formatDuration(bad)).toThrow(/cannot format duration/);
    }
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [1, 999, 1000, 61_001, 8 * H, 30 * H + 59 * M + 59_999, 1234.5]) {
      expect(parseDuration(formatDuration(ms))).toBeCloseTo(ms, 6);
    }
  });
});
