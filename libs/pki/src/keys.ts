/** Key pairs, public key parsing and the two certificate digests operators compare. */
import { createHash, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { BadParameterError } from '@keyway/errors';
import { certificateDer, parseCertificate, type CertificateInput } from './x509.js';

export interface KeyPairPem {
  /** PKCS#8 PEM. */
  privateKeyPem: string;
  /** SPKI PEM. */
  publicKeyPem: string;
}

/** A fresh ECDSA P-256 key pair, the default for Keyway CAs and client keys. */
export function generateKeyPair(): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/**
 * Parses a public key (SPKI or PKCS#1 PEM) or a certificate PEM into a KeyObject. Private
 * keys are refused so they are never passed around where only a public key belongs.
 * This goes through OpenSSL's decoder (~100 µs); certificate signers take the PEM directly
 * and parse it with subjectPublicKey() instead.
 */
export function publicKeyFromPem(pem: string): KeyObject {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new BadParameterError('expected a public key PEM, got a private key');
  }
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new BadParameterError(`public key could not be parsed: ${(err as Error).message}`, {}, { cause: err });
  }
}

/**
 * SHA-256 of the certificate DER as colon-separated uppercase hex, the same string
 * `openssl x509 -noout -fingerprint -sha256` and node's X509Certificate.fingerprint256 print.
 */
export function fingerprint(cert: CertificateInput): string {
  const hex = createHash('sha256').update(certificateDer(cert)).digest('hex').toUpperCase();
  return hex.replace(/(..)(?!$)/g, '$1:');
}

/**
 * CA pin `sha256:<lowercase hex>` of the SHA-256 of the SubjectPublicKeyInfo DER, the format
 * of Teleport's --ca-pin. Pins the key, so it survives re-issuing the CA certificate.
 */
export function spkiPin(cert: CertificateInput | KeyObject): string {
  const spki =
    cert instanceof KeyObject
      ? cert.export({ type: 'spki', format: 'der' })
      : parseCertificate(cert).subjectPublicKeyInfo;
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}
