import { BadParameterError } from '@keyway/errors';
import { generateKeyPair } from '@keyway/pki';
import { describe, expect, it } from 'vitest';
import {
  CaKeyDecryptError,
  decryptCaKey,
  encryptCaKey,
  generateCaKeySecret,
  isEncryptedCaKey,
  type ScryptParams,
} from './keystore.js';

// Cheap parameters keep the suite fast; the default cost is exercised once.
const fast: ScryptParams = { N: 2 ** 10, r: 8, p: 1 };
const { privateKeyPem } = generateKeyPair();

describe('CA keystore', () => {
  it('round-trips a private key with the default KDF cost and records it', async () => {
    const secret = generateCaKeySecret();
    const envelope = await encryptCaKey(privateKeyPem, secret);
    const parsed = JSON.parse(envelope) as Record<string, unknown>;
    expect(parsed).toMatchObject({ v: 1, kdf: { name: 'scrypt', N: 32768, r: 8, p: 1 }, cipher: 'aes-256-gcm' });
    expect(envelope).not.toContain('PRIVATE KEY');
    expect(isEncryptedCaKey(envelope)).toBe(true);
    expect(isEncryptedCaKey(privateKeyPem)).toBe(false);
    expect(await decryptCaKey(envelope, secret)).toBe(privateKeyPem);
  });

  it('uses a fresh salt and IV each time', async () => {
    const a = JSON.parse(await encryptCaKey(privateKeyPem, 's3cret', { scrypt: fast })) as Record<string, string>;
    const b = JSON.parse(await encryptCaKey(privateKeyPem, 's3cret', { scrypt: fast })) as Record<string, string>;
    expect(a['iv']).not.toBe(b['iv']);
    expect(a['ct']).not.toBe(b['ct']);
  });

  it('says when the secret is wrong', async () => {
    const envelope = await encryptCaKey(privateKeyPem, 'right', { scrypt: fast });
    const err = await decryptCaKey(envelope, 'wrong').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CaKeyDecryptError);
    expect(err).toBeInstanceOf(Error);
    const e = err as CaKeyDecryptError;
    expect(e.message).toBe('CA key does not decrypt the stored certificate authorities: wrong KEYWAY_CA_KEY?');
    expect(e.reason).toBe('wrong-secret');
    expect(e.kind).toBe('BadParameter');
    expect(e.data).toMatchObject({ reason: 'wrong-secret', envelopeVersion: 1, kdf: { name: 'scrypt', N: 1024 } });
  });

  it('detects a tampered ciphertext, tag or header', async () => {
    const envelope = await encryptCaKey(privateKeyPem, 'k', { scrypt: fast, context: 'user CA acme' });
    const e = JSON.parse(envelope) as Record<string, unknown>;
    const ct = Buffer.from(e['ct'] as string, 'base64url');
    ct[5] = (ct[5] as number) ^ 0x01;
    const tag = Buffer.from(e['tag'] as string, 'base64url');
    tag[0] = (tag[0] as number) ^ 0x80;
    const variants = [
      { ...e, ct: ct.toString('base64url') },
      { ...e, tag: tag.toString('base64url') },
      { ...e, iv: Buffer.alloc(12).toString('base64url') },
    ];
    for (const v of variants) {
      await expect(decryptCaKey(JSON.stringify(v), 'k', { context: 'user CA acme' })).rejects.toMatchObject({
        reason: 'tampered',
      });
    }
    // Moved to another CA's record: same secret, different context.
    await expect(decryptCaKey(envelope, 'k', { context: 'host CA acme' })).rejects.toBeInstanceOf(CaKeyDecryptError);
    expect(await decryptCaKey(envelope, 'k', { context: 'user CA acme' })).toBe(privateKeyPem);
  });

  it('rejects malformed envelopes and unreasonable KDF parameters', async () => {
    const envelope = JSON.parse(await encryptCaKey(privateKeyPem, 'k', { scrypt: fast })) as Record<string, unknown>;
    const bad = [
      'not json',
      'null',
      JSON.stringify({ ...envelope, v: 2 }),
      JSON.stringify({ ...envelope, cipher: 'aes-128-cbc' }),
      JSON.stringify({ ...envelope, kdf: { ...(envelope['kdf'] as object), N: 2 ** 30 } }),
      JSON.stringify({ ...envelope, kdf: { ...(envelope['kdf'] as object), N: 1000 } }),
      JSON.stringify({ ...envelope, ct: undefined }),
    ];
    for (const text of bad) {
      await expect(decryptCaKey(text, 'k'), text).rejects.toBeInstanceOf(BadParameterError);
    }
    await expect(encryptCaKey(privateKeyPem, '')).rejects.toThrow('empty');
    await expect(encryptCaKey(privateKeyPem, 'k', { scrypt: { N: 3, r: 8, p: 1 } })).rejects.toThrow('scrypt');
  });

  it('generates 32-byte base64url secrets', () => {
    const s = generateCaKeySecret();
    expect(s).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(s, 'base64url')).toHaveLength(32);
    expect(generateCaKeySecret()).not.toBe(s);
  });
});
