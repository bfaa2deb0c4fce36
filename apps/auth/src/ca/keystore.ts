/**
 * CA private keys at rest: AES-256-GCM under a key derived with scrypt from the configured
 * secret (KEYWAY_CA_KEY). The stored form is a self-describing JSON envelope, so KDF
 * parameters can be raised later without breaking keys sealed earlier.
 *
 * Envelope (v1):
 *   {"v":1,"kdf":{"name":"scrypt","N":32768,"r":8,"p":1,"salt":"<b64url 16B>"},
 *    "cipher":"aes-256-gcm","iv":"<b64url 12B>","kcv":"<b64url 8B>","ct":"<b64url>","tag":"<b64url 16B>"}
 *
 * scrypt yields 64 bytes: the first 32 are the AES key; the SHA-256 of the other 32,
 * truncated to 8 bytes, is the key check value (kcv). The kcv tells a wrong secret apart
 * from a modified record without revealing anything about the AES key. The AAD binds the
 * header (version, KDF parameters, cipher) and an optional caller context such as the CA's
 * identity, so neither can be swapped without failing authentication.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { BadParameterError, KeywayError, type ErrorData } from '@keyway/errors';

export const KEYSTORE_ENVELOPE_VERSION = 1;

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** ~32 MiB and ~100 ms per derivation: paid once per process start. */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };

// Bounds on what a stored envelope may ask for, so a tampered record cannot make startup
// allocate gigabytes or spin for minutes.
const MIN_LOG_N = 10;
const MAX_LOG_N = 20;
const MAX_R = 32;
const MAX_P = 16;

const CIPHER = 'aes-256-gcm' as const;
const SALT_BYTES = 16;
const IV_BYTES = 12;
const KCV_BYTES = 8;

interface EnvelopeV1 {
  v: 1;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: typeof CIPHER;
  iv: string;
  kcv: string;
  ct: string;
  tag: string;
}

export type CaKeyDecryptFailure = 'wrong-secret' | 'tampered';

/**
 * The stored CA key could not be opened: `reason` says whether the secret is wrong (the
 * usual case after a KEYWAY_CA_KEY mix-up) or the stored record was altered.
 */
export class CaKeyDecryptError extends KeywayError {
  readonly reason: CaKeyDecryptFailure;

  constructor(reason: CaKeyDecryptFailure, data: ErrorData = {}) {
    super(
      'BadParameter',
      reason === 'wrong-secret'
        ? 'CA key does not decrypt the stored certificate authorities: wrong KEYWAY_CA_KEY?'
        : 'stored CA private key failed its integrity check: the record was modified or belongs to another CA',
      { ...data, reason },
    );
    this.name = 'CaKeyDecryptError';
    this.reason = reason;
  }
}

/** A fresh random secret for dev mode: 32 bytes, base64url. */
export function generateCaKeySecret(): string {
  return randomBytes(32).toString('base64url');
}

function checkSecret(secret: string): void {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new BadParameterError('CA key secret (KEYWAY_CA_KEY) is empty');
  }
}

function checkParams(p: ScryptParams): void {
  const logN = Math.log2(p.N);
  const ok =
    Number.isInteger(logN) &&
    logN >= MIN_LOG_N &&
    logN <= MAX_LOG_N &&
    Number.isInteger(p.r) &&
    p.r >= 1 &&
    p.r <= MAX_R &&
    Number.isInteger(p.p) &&
    p.p >= 1 &&
    p.p <= MAX_P;
  if (!ok) throw new BadParameterError('unsupported scrypt parameters for the CA key', { ...p });
}

function deriveKeys(secret: string, salt: Buffer, p: ScryptParams): Promise<{ key: Buffer; kcv: Buffer }> {
  return new Promise((resolve, reject) => {
    // node's default maxmem (32 MiB) is just below what N=2^15, r=8 needs.
    scrypt(secret, salt, 64, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 }, (err, out) => {
      if (err) return reject(err);
      resolve({
        key: out.subarray(0, 32),
        kcv: createHash('sha256').update(out.subarray(32)).digest().subarray(0, KCV_BYTES),
      });
    });
  });
}

function aad(env: Pick<EnvelopeV1, 'v' | 'kdf' | 'cipher'>, context: string): Buffer {
  const { name, N, r, p, salt } = env.kdf;
  return Buffer.from(JSON.stringify([env.v, name, N, r, p, salt, env.cipher, context]), 'utf8');
}

/**
 * Encrypts a CA private key (PEM) with the secret; returns the envelope text to store.
 * `context` (e.g. `user CA acme`) must be passed again to decrypt.
 */
export async function encryptCaKey(
  privateKeyPem: string,
  secret: string,
  opts: { context?: string; scrypt?: ScryptParams } = {},
): Promise<string> {
  checkSecret(secret);
  const params = opts.scrypt ?? DEFAULT_SCRYPT_PARAMS;
  checkParams(params);
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const { key, kcv } = await deriveKeys(secret, salt, params);
  const header = {
    v: KEYSTORE_ENVELOPE_VERSION as 1,
    kdf: { name: 'scrypt' as const, N: params.N, r: params.r, p: params.p, salt: salt.toString('base64url') },
    cipher: CIPHER,
  };
  const cipher = createCipheriv(CIPHER, key, iv);
  cipher.setAAD(aad(header, opts.context ?? ''));
  const ct = Buffer.concat([cipher.update(privateKeyPem, 'utf8'), cipher.final()]);
  const envelope: EnvelopeV1 = {
    ...header,
    iv: iv.toString('base64url'),
    kcv: kcv.toString('base64url'),
    ct: ct.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
  };
  return JSON.stringify(envelope);
}

function parseEnvelope(text: string): EnvelopeV1 {
  const bad = (why: string): BadParameterError =>
    new BadParameterError(`stored CA private key is not a valid keystore envelope: ${why}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const e = raw as Partial<EnvelopeV1> | null;
  if (!e || typeof e !== 'object') throw bad('not an object');
  if (e.v !== KEYSTORE_ENVELOPE_VERSION) throw bad(`unsupported version ${String(e.v)}`);
  if (e.cipher !== CIPHER) throw bad(`unsupported cipher ${String(e.cipher)}`);
  const k = e.kdf;
  if (!k || k.name !== 'scrypt' || typeof k.salt !== 'string') throw bad('unsupported key derivation');
  for (const f of ['iv', 'kcv', 'ct', 'tag'] as const) {
    if (typeof e[f] !== 'string') throw bad(`missing ${f}`);
  }
  checkParams({ N: k.N, r: k.r, p: k.p });
  return e as EnvelopeV1;
}

/** True if `text` looks like an envelope written by encryptCaKey. */
export function isEncryptedCaKey(text: string): boolean {
  try {
    parseEnvelope(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Decrypts an envelope written by encryptCaKey. Throws CaKeyDecryptError when the secret
 * is wrong or the record was modified, BadParameterError when it is not an envelope.
 */
export async function decryptCaKey(envelope: string, secret: string, opts: { context?: string } = {}): Promise<string> {
  checkSecret(secret);
  const e = parseEnvelope(envelope);
  const data = {
    envelopeVersion: e.v,
    kdf: { name: e.kdf.name, N: e.kdf.N, r: e.kdf.r, p: e.kdf.p },
    ...(opts.context ? { context: opts.context } : {}),
  };
  const { key, kcv } = await deriveKeys(secret, Buffer.from(e.kdf.salt, 'base64url'), e.kdf);
  const storedKcv = Buffer.from(e.kcv, 'base64url');
  if (storedKcv.length !== KCV_BYTES || !timingSafeEqual(storedKcv, kcv)) {
    throw new CaKeyDecryptError('wrong-secret', data);
  }
  const tag = Buffer.from(e.tag, 'base64url');
  const iv = Buffer.from(e.iv, 'base64url');
  if (tag.length !== 16 || iv.length !== IV_BYTES) throw new CaKeyDecryptError('tampered', data);
  try {
    const decipher = createDecipheriv(CIPHER, key, iv, { authTagLength: 16 });
    decipher.setAAD(aad(e, opts.context ?? ''));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(Buffer.from(e.ct, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new CaKeyDecryptError('tampered', data);
  }
}
