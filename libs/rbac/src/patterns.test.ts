import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBadParameter } from '@keyway/errors';
import { parseResourceDocuments } from '@keyway/resources';
import { matchKubePattern } from './kube.js';
import { expandTemplate } from './templates.js';

describe('role patterns on RE2', () => {
  it('matches a catastrophic-backtracking pattern in linear time', () => {
    // With JavaScript's engine this takes on the order of an hour (2^50 steps).
    expect(matchKubePattern('^(a+)+$', `${'a'.repeat(50)}!`)).toBe(false);
    expect(matchKubePattern('^(a|aa)*$', `${'a'.repeat(5000)}!`)).toBe(false);
    expect(matchKubePattern('^(a+)+$', 'a'.repeat(100_000))).toBe(true);
    // A glob of many stars against a long near-miss (backtracks as a JS regexp).
    expect(matchKubePattern('*a*a*a*a*a*a*a*a*b', 'a'.repeat(20_000))).toBe(false);
  });

  it('accepts the syntax Go accepts (flags inside the anchor, named groups, classes) and not what RE2 refuses', () => {
    expect(matchKubePattern('^(?i)dev-[[:alpha:]]+$', 'DEV-web')).toBe(true);
    expect(matchKubePattern('^(?P<env>dev|stg)-\\pL+$', 'stg-é')).toBe(true);
    for (const bad of ['^(?=x)y$', '^(a)\\1$', '^a{2000}$', '^(a$']) expect(() => matchKubePattern(bad, 'a')).toThrow(/invalid regular expression/);
  });

  it('treats glob parts literally, as Teleport quotes them', () => {
    expect(matchKubePattern('a.c*', 'a.cd')).toBe(true);
    expect(matchKubePattern('a.c*', 'abcd')).toBe(false);
    expect(matchKubePattern('(x)*', '(x)yz')).toBe(true);
    expect(matchKubePattern('dev-*', 'dev-\nx')).toBe(true);
  });

  it('refuses at role validation a pattern RE2 cannot compile, naming the field', () => {
    const cases: [string, RegExp][] = [
      ["kubernetes_labels: {env: '^(?=prod)x$'}", /spec\.allow\.kubernetes_labels\.env.*invalid regular expression/],
      ["kubernetes_resources: [{kind: pod, namespace: '^(a)\\1$', name: '*', verbs: [get]}]", /spec\.allow\.kubernetes_resources\[0\]\.namespace.*invalid regular expression/],
      ["kubernetes_resources: [{kind: pod, namespace: '*', name: '^a{5000}$', verbs: [get]}]", /spec\.allow\.kubernetes_resources\[0\]\.name.*invalid regular expression/],
    ];
    for (const [allow, why] of cases) {
      const labels = allow.startsWith('kubernetes_labels') ? '' : "    kubernetes_labels: {'*': '*'}\n";
      const doc = `kind: role\nversion: v7\nmetadata: {name: r}\nspec:\n  allow:\n${labels}    ${allow}\n`;
      let caught: unknown;
      try {
        parseResourceDocuments(doc);
      } catch (err) {
        caught = err;
      }
      expect(isBadParameter(caught), doc).toBe(true);
      expect((caught as Error).message).toMatch(why);
    }
  });

  it('regexp.replace templates use RE2 and Go expansion', () => {
    const t = '{{regexp.replace(external.groups, "^(?P<team>[a-z]+)-(admin|dev)$", "${team}:$2:$$")}}';
    expect(expandTemplate(t, { internal: {}, external: { groups: ['web-admin', 'nope', 'db-dev'] } })).toEqual(['web:admin:$', 'db:dev:$']);
    const slow = '{{regexp.replace(external.n, "^(a+)+$", "x")}}';
    expect(expandTemplate(slow, { internal: {}, external: { n: [`${'a'.repeat(50)}!`] } })).toEqual([]);
  });

  it('property: globs agree with a reference matcher on simple inputs', () => {
    const reference = (glob: string, value: string): boolean => {
      // Dynamic programming over the glob: '*' matches any run, every other character itself.
      const m = glob.length;
      let row = Array<boolean>(value.length + 1).fill(false);
      row[0] = true;
      for (let i = 0; i < m; i++) {
        const next = Array<boolean>(value.length + 1).fill(false);
        const g = glob[i];
        for (let j = 0; j <= value.length; j++) {
          if (g === '*') next[j] = row[j] === true || (j > 0 && next[j - 1] === true);
          else next[j] = j > 0 && row[j - 1] === true && value[j - 1] === g;
        }
        row = next;
      }
      return row[value.length] === true;
    };
    const glob = fc.string({ unit: fc.constantFrom('a', 'b', '.', '*', '(', '$', 'é'), minLength: 1, maxLength: 8 }).filter((g) => g !== '*' && !(g.startsWith('^') && g.endsWith('$')));
    const value = fc.string({ unit: fc.constantFrom('a', 'b', '.', '(', '$', 'é', '\n'), maxLength: 10 });
    fc.assert(fc.property(glob, value, (g, v) => matchKubePattern(g, v) === reference(g, v)), { seed: 1010, numRuns: 2000 });
  });

  it('property: simple regular expressions agree with JavaScript\'s engine', () => {
    const atom = fc.constantFrom('a', 'b', '.', '[ab]', '(a|b)', '(ab)', '\\.');
    const piece = fc.tuple(atom, fc.constantFrom('', '*', '+', '?', '{1,2}')).map(([a, q]) => a + q);
    const regex = fc.array(piece, { minLength: 1, maxLength: 5 }).map((ps) => `^${ps.join('')}$`);
    const value = fc.string({ unit: fc.constantFrom('a', 'b', '.'), maxLength: 8 });
    fc.assert(fc.property(regex, value, (re, v) => matchKubePattern(re, v) === new RegExp(re).test(v)), { seed: 1010, numRuns: 500 });
  });
});
