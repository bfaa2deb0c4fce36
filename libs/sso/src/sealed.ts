import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * The end of a console login: auth seals the login response (certificates) under a key that
 * only kw knows (it sent it in its own callback URL), and the browser carries the sealed
 * bytes back to kw. The browser, its history and the proxy's logs see only ciphertext.
 * AES-256-GCM: confidentiality and integrity; a fresh 96-bit nonce per message.
 */

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** A sealed response larger than this is refused before it is opened. */
export const MAX_SEALED_BYTES = 256 * 1024;

export function newSecretKey(): string {
  return randomBytes(KEY_BYTES).toString('hex');
}

export function isSecretKey(key: string): boolean {
  return /^[0-9a-f]{64}$/.test(key);
}

/** What a console login hands kw, sealed: the certificates and who they are for. */
export interface SsoLoginResponse {
  username: string;
  certPem: string;
  userCaPems: string[];
  hostCaPems: string[];
  expires: string;
  clusterName: string;
}

/** base64url(nonce | ciphertext | tag). */
export function seal(keyHex: string, plaintext: string): string {
  if (!isSecretKey(keyHex)) throw new Error('secret key must be 64 hex characters');
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), nonce);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url');
}

/** The plaintext; throws when the key is wrong or the bytes were changed. */
export function open(keyHex: string, sealed: string): string {
  if (!isSecretKey(keyHex)) throw new Error('secret key must be 64 hex characters');
  if (sealed.length > (MAX_SEALED_BYTES * 4) / 3 + 4) throw new Error('sealed response is too large');
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length < NONCE_BYTES + TAG_BYTES) throw new Error('sealed response is cut short');
  const decipher = createDecipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), raw.subarray(0, NONCE_BYTES));
  decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
  return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
}

/**
 * kw's callback URL, as auth accepts it: plain http to a loopback address (the browser runs
 * on the same machine as kw), with a secret key. Anything else would let a login request send
 * certificates elsewhere. Returns the URL without its key, and the key.
 */
export function parseClientRedirect(url: string): { base: URL; secretKey: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('redirect_url is not a URL');
  }
  const loopback = u.hostname === '127.0.0.1' || u.hostname === '[::1]' || u.hostname === 'localhost';
  if (u.protocol !== 'http:' || !loopback || !u.port || u.username || u.password || u.hash) {
    throw new Error('redirect_url must be http://127.0.0.1:<port>/… (kw’s own callback on this machine)');
  }
  const secretKey = u.searchParams.get('secret_key') ?? '';
  if (!isSecretKey(secretKey)) throw new Error('redirect_url must carry a secret_key of 64 hex characters');
  u.searchParams.delete('secret_key');
  return { base: u, secretKey };
}
