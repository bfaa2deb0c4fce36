import { createHash, randomBytes } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import { Secret, TOTP } from 'otpauth';

/** argon2id is Algorithm.Argon2id, a const enum that isolated modules cannot read. */
const ARGON2ID = 2;
/** OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane. */
const ARGON2 = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 1024;

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2);
}

export async function verifyPassword(hashed: string | null, password: string): Promise<boolean> {
  // Without a stored hash we still spend the same time, so timing does not reveal which users exist.
  const target = hashed ?? (await dummyHash());
  const ok = await verify(target, password).catch(() => false);
  return hashed !== null && ok;
}

let dummy: Promise<string> | undefined;
function dummyHash(): Promise<string> {
  dummy ??= hash(randomBytes(16).toString('hex'), ARGON2);
  return dummy;
}

const TOTP_PERIOD = 30;

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

export function totpUri(secretBase32: string, user: string, issuer: string): string {
  return totpFor(secretBase32, user, issuer).toString();
}

export function totpCode(secretBase32: string, at: Date): string {
  return totpFor(secretBase32).generate({ timestamp: at.getTime() });
}

/**
 * Checks a TOTP code and returns the RFC 6238 time step it belongs to (so the caller can
 * refuse a step that was already used), or undefined when the code is wrong. One step of
 * drift either way is accepted, as authenticator clocks drift.
 */
export function matchTotp(secretBase32: string, code: string, at: Date): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const delta = totpFor(secretBase32).validate({ token: code, timestamp: at.getTime(), window: 1 });
  if (delta === null) return undefined;
  return Math.floor(at.getTime() / 1000 / TOTP_PERIOD) + delta;
}

function totpFor(secretBase32: string, label = 'keyway', issuer = 'Keyway'): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: 6, period: TOTP_PERIOD, secret: Secret.fromBase32(secretBase32) });
}

/** One-time user tokens are random; only their SHA-256 is stored. */
export function newUserToken(): { token: string; hash: string } {
  const token = randomBytes(24).toString('hex');
  return { token, hash: hashUserToken(token) };
}

export function hashUserToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
