import { describe, expect, it } from 'vitest';
import { isBadParameter } from '@keyway/errors';
import { DEFAULT_MAX_SESSION_TTL_MS, formatDuration, parseDuration } from './duration.js';

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
    ['-1h', -H],
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

  it('round-trips through parseDuration', () => {
    for (const ms of [1, 999, 1000, 61_001, 8 * H, 30 * H + 59 * M + 59_999, 1234.5]) {
      expect(parseDuration(formatDuration(ms))).toBeCloseTo(ms, 6);
    }
  });
});
