import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mapToRoles, toTraits } from './mapping.js';

describe('mapToRoles (claims_to_roles, attributes_to_roles)', () => {
  const groups = { groups: ['devs', 'team-payments', 'admins'], email: ['ada@example.com'] };
  it('matches exact values, globs and anchored regular expressions, each role once', () => {
    expect(mapToRoles([{ name: 'groups', value: 'devs', roles: ['access', 'editor'] }, { name: 'groups', value: 'admins', roles: ['editor'] }], groups)).toEqual(['access', 'editor']);
    expect(mapToRoles([{ name: 'email', value: '*@example.com', roles: ['staff'] }], groups)).toEqual(['staff']);
    expect(mapToRoles([{ name: 'groups', value: '^team-(.*)$', roles: ['$1-dev', 'team'] }], groups)).toEqual(['payments-dev', 'team']);
    expect(mapToRoles([{ name: 'groups', value: 'team-*', roles: ['${1}-ops'] }], groups)).toEqual(['payments-ops']);
  });
  it('maps nothing for a missing claim, a value that does not match, or a role that expands to nothing', () => {
    expect(mapToRoles([{ name: 'missing', value: '*', roles: ['x'] }], groups)).toEqual([]);
    expect(mapToRoles([{ name: 'groups', value: 'dev', roles: ['x'] }], groups)).toEqual([]);
    expect(mapToRoles([{ name: 'groups', value: '^(x?)devs$', roles: ['$1'] }], groups)).toEqual([]);
  });
  it('treats regular expression characters in a glob literally', () => {
    expect(mapToRoles([{ name: 'email', value: 'ada@example.c*m', roles: ['r'] }], groups)).toEqual(['r']);
    expect(mapToRoles([{ name: 'email', value: 'ada@example?com', roles: ['r'] }], groups)).toEqual([]);
  });
  it('runs in linear time on a pattern that backtracking engines take forever on', () => {
    expect(mapToRoles([{ name: 'v', value: '^(a+)+$', roles: ['r'] }], { v: [`${'a'.repeat(5000)}!`] })).toEqual([]);
  });
});

describe('toTraits', () => {
  it('keeps strings, numbers and booleans, flattens lists, drops objects, nulls and control characters', () => {
    expect(toTraits({ groups: ['a', 'b'], age: 3, ok: true, nested: { x: 1 }, none: null, bad: 'x\ny', mixed: ['a', { b: 1 }, 2] })).toEqual({ groups: ['a', 'b'], age: ['3'], ok: ['true'], mixed: ['a', '2'] });
  });
  it('bounds what a provider can put into a certificate (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 200 }), fc.oneof(fc.string({ maxLength: 2000 }), fc.array(fc.string({ maxLength: 50 }), { maxLength: 400 }), fc.integer())), (claims) => {
        const traits = toTraits(claims, { maxTraits: 10, maxNameLength: 128, maxValues: 256, maxValueLength: 1024 });
        expect(Object.keys(traits).length).toBeLessThanOrEqual(10);
        for (const [name, values] of Object.entries(traits)) {
          expect(name.length).toBeLessThanOrEqual(128);
          expect(values.length).toBeGreaterThan(0);
          expect(values.length).toBeLessThanOrEqual(256);
          for (const v of values) expect(v.length).toBeLessThanOrEqual(1024);
        }
      }),
      { seed: 11, numRuns: 300 },
    );
  });
});
