import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SPDY3_DICTIONARY, SPDY3_DICTIONARY_SHA256 } from './spdy3-dictionary.js';

describe('the SPDY/3 header dictionary', () => {
  it('is the 1423 bytes of the specification', () => {
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect(createHash('sha256').update(SPDY3_DICTIONARY).digest('hex')).toBe(SPDY3_DICTIONARY_SHA256);
  });

  it('starts with the length-prefixed method and header names the specification lists', () => {
    const names: string[] = [];
    let at = 0;
    while (names.length < 8) {
      const n = SPDY3_DICTIONARY.readUInt32BE(at);
      names.push(SPDY3_DICTIONARY.subarray(at + 4, at + 4 + n).toString('latin1'));
      at += 4 + n;
    }
    expect(names).toEqual(['options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset']);
  });
});
