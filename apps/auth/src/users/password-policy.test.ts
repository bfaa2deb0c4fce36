import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBadParameter } from '@keyway/errors';
import { checkPasswordPolicy } from './password-policy.js';

const refusal = (password: string, user = 'jimbo'): string => {
  try {
    checkPasswordPolicy(password, user);
  } catch (err) {
    expect(isBadParameter(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`${JSON.stringify(password)} was accepted`);
};

describe('password policy', () => {
  it('accepts a long passphrase', () => {
    expect(() => checkPasswordPolicy('correct horse battery staple', 'jimbo')).not.toThrow();
    expect(() => checkPasswordPolicy('  spaces inside are fine  ', 'jimbo')).not.toThrow();
  });

  it('refuses short passwords, counting characters, not UTF-16 units', () => {
    expect(refusal('short')).toMatch(/at least 12 characters/);
    expect(refusal('🔑'.repeat(11))).toMatch(/at least 12 characters long \(it has 11\)/);
    expect(() => checkPasswordPolicy('🔑'.repeat(12), 'jimbo')).not.toThrow();
  });

  it('refuses passwords of only whitespace, control or invisible characters', () => {
    for (const p of [' '.repeat(12), '\t'.repeat(12), '\n \r'.repeat(4), '\u0000'.repeat(12), '\u200b'.repeat(12), '\u00a0'.repeat(12), '\u3000'.repeat(12), '\u2028'.repeat(12), '\u200d\ufeff'.repeat(6)]) {
      expect(refusal(p)).toMatch(/only of spaces, control or invisible characters/);
    }
  });

  it('refuses the user name in any case', () => {
    expect(refusal('Jimbo-The-Great', 'jimbo-the-great')).toMatch(/must not be the user name/);
    expect(refusal(' LONGUSERNAME1 ', 'longusername1')).toMatch(/must not be the user name/);
  });

  it('refuses too long passwords', () => {
    expect(refusal('x'.repeat(1025))).toMatch(/at most 1024/);
  });

  it('never accepts a password made only of blank characters (property)', () => {
    const blank = fc.constantFrom(' ', '\t', '\n', '\r', '\u000b', '\u000c', '\u0085', '\u00a0', '\u1680', '\u2000', '\u200a', '\u200b', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff', '\u0000', '\u001f', '\u007f');
    fc.assert(
      fc.property(fc.array(blank, { minLength: 12, maxLength: 64 }), (chars) => {
        expect(() => checkPasswordPolicy(chars.join(''), 'jimbo')).toThrow();
      }),
      { seed: 10, numRuns: 200 },
    );
  });
});
