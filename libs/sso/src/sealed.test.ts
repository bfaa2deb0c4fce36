import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newSecretKey, open, parseClientRedirect, seal } from './sealed.js';

describe('sealed console login responses', () => {
  it('opens with the key it was sealed with, and only with it', () => {
    const key = newSecretKey();
    const sealed = seal(key, '{"cert":"…"}');
    expect(open(key, sealed)).toBe('{"cert":"…"}');
    expect(() => open(newSecretKey(), sealed)).toThrow();
  });
  it('refuses any changed byte (property)', () => {
    const key = newSecretKey();
    const sealed = Buffer.from(seal(key, 'certificates'), 'base64url');
    fc.assert(
      fc.property(fc.nat(sealed.length - 1), fc.integer({ min: 1, max: 255 }), (at, flip) => {
        const changed = Buffer.from(sealed);
        changed[at] = (changed[at] as number) ^ flip;
        expect(() => open(key, changed.toString('base64url'))).toThrow();
      }),
      { seed: 7, numRuns: 300 },
    );
  });
  it('accepts only kw’s loopback callback with a secret key', () => {
    const key = newSecretKey();
    const { base, secretKey } = parseClientRedirect(`http://127.0.0.1:4321/callback?secret_key=${key}`);
    expect(secretKey).toBe(key);
    expect(base.toString()).toBe('http://127.0.0.1:4321/callback');
    for (const bad of [
      `https://127.0.0.1:4321/callback?secret_key=${key}`,
      `http://evil.example.com:4321/callback?secret_key=${key}`,
      `http://127.0.0.1.evil.example.com:80/?secret_key=${key}`,
      `http://user:pw@127.0.0.1:4321/?secret_key=${key}`,
      `http://127.0.0.1/callback?secret_key=${key}`,
      'http://127.0.0.1:4321/callback',
      'http://127.0.0.1:4321/callback?secret_key=abc',
      'javascript:alert(1)',
    ]) {
      expect(() => parseClientRedirect(bad), bad).toThrow();
    }
  });
});
