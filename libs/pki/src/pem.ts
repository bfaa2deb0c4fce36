/** PEM armour (RFC 7468) for certificates and keys. */
import { BadParameterError } from '@keyway/errors';

/** PEM with 64-character lines (RFC 7468). */
export function toPem(bytes: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + '\n';
  return out + `-----END ${label}-----\n`;
}

const BASE64_BODY = /^[A-Za-z0-9+/=\s]*$/;

/** The first PEM block with the given label, decoded. */
export function fromPem(pem: string, label = 'CERTIFICATE'): Buffer {
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const from = pem.indexOf(begin);
  const to = from < 0 ? -1 : pem.indexOf(end, from + begin.length);
  if (from < 0 || to < 0) throw new BadParameterError(`no ${label} PEM block found`);
  const body = pem.slice(from + begin.length, to);
  if (!BASE64_BODY.test(body)) throw new BadParameterError(`${label} PEM block is not valid base64`);
  return Buffer.from(body, 'base64');
}
