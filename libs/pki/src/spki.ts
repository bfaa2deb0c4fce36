/**
 * SubjectPublicKeyInfo without OpenSSL's encoder/decoder framework. In node 20 (OpenSSL 3)
 * `KeyObject.export({type:'spki'})` and `createPublicKey(pem)` each cost ~100 µs, four times
 * an ECDSA signature, which would dominate certificate issuance. JWK export is cheap (~5 µs),
 * and SPKI for the supported key types is simple to write and to check here.
 */
import { createPublicKey, KeyObject } from 'node:crypto';
import { BadParameterError } from '@keyway/errors';
import * as der from './der.js';
import { fromPem } from './pem.js';

export type PublicKeyType = 'ec' | 'rsa' | 'ed25519';
export type NamedCurve = 'P-256' | 'P-384';

export interface SubjectPublicKey {
  /** Canonical DER SubjectPublicKeyInfo. */
  spki: Buffer;
  type: PublicKeyType;
  /** For EC keys. */
  curve?: NamedCurve;
  /** For RSA keys, in bits. */
  modulusLength?: number;
}

const OID_EC = '1.2.840.10045.2.1';
const OID_RSA = '1.2.840.113549.1.1.1';
const OID_ED25519 = '1.3.101.112';

interface Curve {
  oid: string;
  size: number;
  p: bigint;
  b: bigint;
}

// Short Weierstrass y^2 = x^3 - 3x + b over GF(p) (SEC 2 / FIPS 186-4 parameters).
const CURVES: Record<NamedCurve, Curve> = {
  'P-256': {
    oid: '1.2.840.10045.3.1.7',
    size: 32,
    p: 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  },
  'P-384': {
    oid: '1.3.132.0.34',
    size: 48,
    p: 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  },
};
const CURVE_BY_OID = new Map(Object.entries(CURVES).map(([name, c]) => [c.oid, name as NamedCurve]));

const EC_ALG: Record<NamedCurve, Buffer> = {
  'P-256': der.sequence(der.oid(OID_EC), der.oid(CURVES['P-256'].oid)),
  'P-384': der.sequence(der.oid(OID_EC), der.oid(CURVES['P-384'].oid)),
};
const RSA_ALG = der.sequence(der.oid(OID_RSA), der.nul());
const ED25519_ALG = der.sequence(der.oid(OID_ED25519));

const big = (b: Uint8Array): bigint => BigInt('0x' + (Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex') || '0'));

/**
 * Refuses points not on the curve: a certificate for such a "key" could never be used, and
 * catching it here means garbage is reported to the requester instead of being signed.
 */
function checkPoint(curve: NamedCurve, point: Uint8Array): void {
  const c = CURVES[curve];
  if (point.length !== 1 + 2 * c.size || point[0] !== 0x04) {
    // Go's x509 (kubectl) only reads uncompressed points, so compressed ones are refused too.
    throw new BadParameterError(`EC public key must be an uncompressed ${curve} point`);
  }
  const x = big(point.subarray(1, 1 + c.size));
  const y = big(point.subarray(1 + c.size));
  const { p, b } = c;
  const rhs = (((((x * x) % p) * x - 3n * x + b) % p) + p) % p;
  if (x >= p || y >= p || (y * y) % p !== rhs) throw new BadParameterError(`EC public key is not a point on ${curve}`);
}

function ecSpki(curve: NamedCurve, point: Uint8Array): Buffer {
  checkPoint(curve, point);
  return der.sequence(EC_ALG[curve], der.bitString(point));
}

function rsaSpki(n: Uint8Array, e: Uint8Array): SubjectPublicKey {
  const modulus = der.unsignedInteger(n);
  const bits = big(n).toString(2).length;
  const exp = big(e);
  if (exp < 3n || exp % 2n === 0n) throw new BadParameterError('RSA public exponent must be odd and at least 3');
  return {
    spki: der.sequence(RSA_ALG, der.bitString(der.sequence(modulus, der.unsignedInteger(e)))),
    type: 'rsa',
    modulusLength: bits,
  };
}

function ed25519Spki(x: Uint8Array): SubjectPublicKey {
  if (x.length !== 32) throw new BadParameterError('Ed25519 public key must be 32 bytes');
  return { spki: der.sequence(ED25519_ALG, der.bitString(x)), type: 'ed25519' };
}

function fromKeyObject(key: KeyObject): SubjectPublicKey {
  if (key.type !== 'public') throw new BadParameterError('expected a public key');
  const jwk = key.export({ format: 'jwk' });
  const b64 = (v: string | undefined): Buffer => Buffer.from(v ?? '', 'base64url');
  if (jwk.kty === 'EC' && (jwk.crv === 'P-256' || jwk.crv === 'P-384')) {
    const curve: NamedCurve = jwk.crv;
    const point = Buffer.concat([Buffer.from([0x04]), b64(jwk.x), b64(jwk.y)]);
    return { spki: ecSpki(curve, point), type: 'ec', curve };
  }
  if (jwk.kty === 'RSA' && key.asymmetricKeyType === 'rsa') return rsaSpki(b64(jwk.n), b64(jwk.e));
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return ed25519Spki(b64(jwk.x));
  throw unsupported(key.asymmetricKeyType);
}

function unsupported(type: unknown): BadParameterError {
  return new BadParameterError('unsupported public key: expected ECDSA P-256/P-384, RSA or Ed25519', {
    type: String(type),
  });
}

function fromSpkiDer(bytes: Uint8Array): SubjectPublicKey {
  const seq = der.expect(der.readAll(bytes), der.Tag.SEQUENCE, 'SubjectPublicKeyInfo');
  const [algT, keyT] = der.children(bytes, seq);
  const alg = der.children(bytes, der.expect(algT, der.Tag.SEQUENCE, 'algorithm'));
  const algOid = der.readOid(bytes, der.expect(alg[0], der.Tag.OID, 'algorithm'));
  const bits = der.content(bytes, der.expect(keyT, der.Tag.BIT_STRING, 'subjectPublicKey'));
  if (bits[0] !== 0) throw new BadParameterError('malformed public key: unused bits');
  const key = bits.subarray(1);
  switch (algOid) {
    case OID_EC: {
      const curveOid = alg[1]?.tag === der.Tag.OID ? der.readOid(bytes, alg[1]) : '';
      const curve = CURVE_BY_OID.get(curveOid);
      if (!curve) throw new BadParameterError('unsupported EC curve: expected P-256 or P-384', { curve: curveOid });
      return { spki: ecSpki(curve, key), type: 'ec', curve };
    }
    case OID_RSA: {
      const rsa = der.children(key, der.expect(der.readAll(key), der.Tag.SEQUENCE, 'RSAPublicKey'));
      const n = der.readUnsignedInteger(key, der.expect(rsa[0], der.Tag.INTEGER, 'modulus'));
      const e = der.readUnsignedInteger(key, der.expect(rsa[1], der.Tag.INTEGER, 'publicExponent'));
      return rsaSpki(n, e);
    }
    case OID_ED25519:
      return ed25519Spki(key);
    default:
      throw unsupported(algOid);
  }
}

/**
 * Parses and checks a subject public key (PEM text, SPKI DER or a public KeyObject) and
 * returns its canonical SPKI encoding. Private keys are refused.
 */
export function subjectPublicKey(input: string | Uint8Array | KeyObject): SubjectPublicKey {
  try {
    if (input instanceof KeyObject) return fromKeyObject(input);
    if (input instanceof Uint8Array) return fromSpkiDer(input);
    if (typeof input !== 'string') throw new BadParameterError('public key must be PEM, DER or a KeyObject');
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(input)) {
      throw new BadParameterError('expected a public key PEM, got a private key');
    }
    if (input.includes('-----BEGIN PUBLIC KEY-----')) return fromSpkiDer(fromPem(input, 'PUBLIC KEY'));
    // Rarer forms (PKCS#1 RSA, a certificate) take OpenSSL's slower decoder.
    return fromKeyObject(createPublicKey(input));
  } catch (err) {
    if (err instanceof BadParameterError) throw err;
    throw new BadParameterError(`public key could not be parsed: ${(err as Error).message}`, {}, { cause: err });
  }
}

/** Canonical DER SubjectPublicKeyInfo of a public key. */
export function spkiDer(key: KeyObject): Buffer {
  return subjectPublicKey(key).spki;
}
