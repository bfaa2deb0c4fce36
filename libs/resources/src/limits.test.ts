import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBadParameter } from '@keyway/errors';
import { parseResourceDocuments } from './documents.js';
import { RESOURCE_LIMITS, checkLabels, textNestingDepth } from './limits.js';

function refusal(text: string, options?: { maxBytes?: number }): Error {
  try {
    parseResourceDocuments(text, 'input', options);
  } catch (err) {
    expect(isBadParameter(err)).toBe(true);
    return err as Error;
  }
  throw new Error('expected a refusal');
}

const ROLE = (spec: string) => `kind: role\nversion: v7\nmetadata: {name: r}\nspec: ${spec}\n`;

describe('document limits', () => {
  it('refuses deep nesting before parsing, in every syntax, with a short message', () => {
    const flow = '['.repeat(200_000);
    const json = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
    const block = `a:\n${Array.from({ length: 2000 }, (_, i) => `${' '.repeat(i + 1)}a:`).join('\n')}`;
    const dashes = `${'- '.repeat(5000)}x`;
    for (const text of [flow, json, block, dashes]) {
      const err = refusal(text);
      expect(err.message).toMatch(/nested more than 64 levels/);
      expect(err.message.length).toBeLessThan(200);
    }
  });

  it('refuses text over the byte limit', () => {
    expect(refusal(ROLE(`{allow: {kubernetes_groups: ['${'x'.repeat(2000)}']}}`), { maxBytes: 1000 }).message).toMatch(/more than the limit of 1000 bytes/);
  });

  it('bounds the alias expansion of a YAML bomb and the listed problems', () => {
    const bomb = `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n`;
    expect(refusal(bomb).message).toMatch(/alias|more than/i);
    const many = Array.from({ length: 500 }, () => 'kind: widget\n').join('---\n');
    const err = refusal(many);
    expect(err.message.split('\n').length).toBeLessThanOrEqual(21);
    expect(err.message).toMatch(/and 480 more problem/);
  });

  it('refuses a resource whose JSON is larger than the resource limit', () => {
    const big = 'x'.repeat(RESOURCE_LIMITS.maxResourceBytes);
    expect(refusal(ROLE(`{allow: {kubernetes_groups: ['${big}']}}`), { maxBytes: 4 * RESOURCE_LIMITS.maxResourceBytes }).message).toMatch(
      /the resource is \d+ bytes, more than the limit of 1048576 bytes/,
    );
  });

  it('refuses labels over their bounds, naming the field and the limit', () => {
    const cluster = (labels: string) => `kind: kube_cluster\nversion: v3\nmetadata: {name: c, labels: ${labels}}\nspec: {}\n`;
    expect(refusal(cluster(`{env: '${'v'.repeat(2000)}'}`)).message).toMatch(/metadata\.labels\.env: label value is longer than the limit of 1024 bytes/);
    expect(refusal(cluster(`{'${'k'.repeat(300)}': v}`)).message).toMatch(/metadata\.labels: label key "k+…" is longer than the limit of 256 bytes/);
    const lots = `{${Array.from({ length: 200 }, (_, i) => `l${i}: v`).join(', ')}}`;
    expect(refusal(cluster(lots)).message).toMatch(/metadata\.labels: has 200 labels, more than the limit of 128/);
    expect(() => checkLabels({ env: 'é'.repeat(600) }, 'kube_clusters[0].labels')).toThrow(/kube_clusters\[0\]\.labels\.env: label value is longer than the limit of 1024 bytes/);
  });

  it('still accepts ordinary documents with block scalars, comments and brackets in strings', () => {
    const text = `kind: role\nversion: v7\nmetadata:\n  name: r\n  description: |\n    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ not structure\nspec:\n  allow:\n    kubernetes_groups: ['[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[']  # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n`;
    expect(textNestingDepth(text)).toBeLessThan(10);
    expect(parseResourceDocuments(text).docs).toHaveLength(1);
  });

  it('property: the nesting estimate never under-counts the parsed depth of JSON', () => {
    const depthOf = (v: unknown): number => (typeof v === 'object' && v !== null ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0);
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), (v) => {
        const text = JSON.stringify(v);
        expect(textNestingDepth(text)).toBeGreaterThanOrEqual(depthOf(v));
      }),
      { seed: 1010, numRuns: 300 },
    );
  });

  it('property: arbitrary text never throws anything but BadParameter', () => {
    const piece = fc.oneof(fc.constantFrom('[', '{', ']', '}', '- ', ': ', '\n', '  ', '&a ', '*a ', '"', "'", '|\n', '#', 'kind: role', 'é', '\u0000'), fc.string({ maxLength: 5 }));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 200 }), (parts) => {
        try {
          parseResourceDocuments(parts.join(''));
        } catch (err) {
          expect(isBadParameter(err), String(err)).toBe(true);
        }
      }),
      { seed: 1010, numRuns: 300 },
    );
  });
});
