import { describe, expect, it } from 'vitest';
import { isBadParameter } from '@keyway/errors';
import { MAX_REQUEST_STRING_BYTES, checkRequestStrings, requestStringProblem } from './request-check.js';

describe('request string bounds', () => {
  it('names the field of a NUL character, in values and map keys', () => {
    expect(requestStringProblem({ user: 'a\u0000b' })).toEqual({ field: 'user', problem: 'contains a NUL character' });
    expect(requestStringProblem({ resources: [{ kind: 'role', json: '{}' }, { kind: '\u0000', json: '' }] })?.field).toBe('resources[1].kind');
    expect(requestStringProblem({ labels: { 'a\u0000': 'v' } })?.problem).toMatch(/key with a NUL/);
  });

  it('bounds short fields in UTF-8 bytes and lets payload fields be larger', () => {
    expect(requestStringProblem({ user: 'x'.repeat(MAX_REQUEST_STRING_BYTES) })).toBeUndefined();
    expect(requestStringProblem({ user: 'é'.repeat(MAX_REQUEST_STRING_BYTES / 2 + 1) })?.problem).toMatch(/longer than the limit of 2048 bytes/);
    expect(requestStringProblem({ resources: [{ json: 'x'.repeat(100_000) }] })).toBeUndefined();
    expect(requestStringProblem({ events: ['x'.repeat(1_000_000)] })).toBeUndefined();
    expect(requestStringProblem({ session: { id: 'x', command: ['sh', '-c', 'x'.repeat(10_000)] } })).toBeUndefined();
    expect(requestStringProblem({ kubeClusters: [{ name: 'c', labels: { env: 'v'.repeat(3000) } }] })?.field).toBe('kubeClusters[0].labels.env');
    let caught: unknown;
    try {
      checkRequestStrings({ user: 'x'.repeat(2 * 1024 * 1024) });
    } catch (err) {
      caught = err;
    }
    expect(isBadParameter(caught)).toBe(true);
    expect((caught as Error).message).toBe('user is longer than the limit of 2048 bytes');
  });
});
