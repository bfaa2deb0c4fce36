/**
 * X.509 building blocks (names, extensions, TBSCertificate layout, PEM) and a parser for
 * the fields Keyway reads. No signing happens here: apps/auth assembles these parts and
 * signs; everything else can only parse and verify.
 */
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { BadParameterError } from '@keyway/errors';
import * as der from './der.js';
import { fromPem } from './pem.js';
import { spkiDer } from './spki.js';

export const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extendedKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
} as const;

/** AlgorithmIdentifier for ecdsa-with-SHA256 (RFC 5758: parameters absent). */
export const ECDSA_WITH_SHA256: Buffer = der.sequence(der.oid(OID.ecdsaWithSha256));

// ---------------------------------------------------------------------------------------
// Names

export interface NameAttribute {
  oid: string;
  value: string;
}

const CN_OID = der.oid(OID.commonName);
const O_OID = der.oid(OID.organization);

function rdn(type: Buffer, value: string): Buffer {
  return der.set(der.sequence(type, der.utf8String(value)));
}

/**
 * Name with one O RDN per organization followed by the CN, all UTF8String (RFC 5280
 * 4.1.2.6). O before CN is the conventional most-significant-first order; Kubernetes reads
 * CN as the user and every O as a group regardless of order.
 */
export function subjectName(commonName: string, organizations: readonly string[] = []): Buffer {
  const rdns: Buffer[] = [];
  for (const o of organizations) rdns.push(rdn(O_OID, o));
  rdns.push(rdn(CN_OID, commonName));
  return der.sequenceOf(rdns);
}

/** Every attribute of a Name, in order (multi-valued RDNs flattened). */
export function decodeName(name: Uint8Array): NameAttribute[] {
  const out: NameAttribute[] = [];
  const seq = der.expect(der.readAll(name), der.Tag.SEQUENCE, 'Name');
  for (const set of der.children(name, seq)) {
    der.expect(set, der.Tag.SET, 'RelativeDistinguishedName');
    for (const atv of der.children(name, set)) {
      der.expect(atv, der.Tag.SEQUENCE, 'AttributeTypeAndValue');
      const [type, value] = der.children(name, atv);
      if (!type || !value) throw new BadParameterError('malformed DER: incomplete AttributeTypeAndValue');
      out.push({ oid: der.readOid(name, type), value: der.readString(name, value) });
    }
  }
  return out;
}

const SHORT_NAMES: Record<string, string> = { [OID.commonName]: 'CN', [OID.organization]: 'O' };

/** Human-readable one-line form for messages, e.g. `O=keyway user CA, CN=acme`. */
export function formatName(attrs: readonly NameAttribute[]): string {
  return attrs.map((a) => `${SHORT_NAMES[a.oid] ?? a.oid}=${a.value}`).join(', ');
}

// ---------------------------------------------------------------------------------------
// Extensions

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
export function extension(oid: string, critical: boolean, value: Uint8Array): Buffer {
  // DER omits a BOOLEAN equal to its DEFAULT, so non-critical has no flag at all.
  return critical
    ? der.sequence(der.oid(oid), der.boolean(true), der.octetString(value))
    : der.sequence(der.oid(oid), der.octetString(value));
}

export type KeyUsage =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

const KEY_USAGE_BITS: Record<KeyUsage, number> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
};

/** KeyUsage (critical). A named bit list: DER drops trailing zero bits. */
export function keyUsageExtension(usages: readonly KeyUsage[]): Buffer {
  let highest = -1;
  const bytes = Buffer.alloc(2);
  for (const u of usages) {
    const bit = KEY_USAGE_BITS[u];
    bytes[bit >> 3] = (bytes[bit >> 3] as number) | (0x80 >> (bit & 7));
    highest = Math.max(highest, bit);
  }
  if (highest < 0) throw new BadParameterError('key usage must not be empty');
  const used = (highest >> 3) + 1;
  const unused = 7 - (highest & 7);
  return extension(OID.keyUsage, true, der.bitString(bytes.subarray(0, used), unused));
}

/** BasicConstraints (critical). cA=FALSE is the DEFAULT and so is omitted. */
export function basicConstraintsExtension(opts: { ca: boolean; pathLength?: number }): Buffer {
  const fields: Buffer[] = [];
  if (opts.ca) {
    fields.push(der.boolean(true));
    if (opts.pathLength !== undefined) fields.push(der.integer(opts.pathLength));
  }
  return extension(OID.basicConstraints, true, der.sequenceOf(fields));
}

export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth';

export function extendedKeyUsageExtension(usages: readonly ExtendedKeyUsage[]): Buffer {
  return extension(OID.extendedKeyUsage, false, der.sequenceOf(usages.map((u) => der.oid(OID[u]))));
}

/** IPv4 or IPv6 text to its 4- or 16-byte network form (as SAN iPAddress needs). */
export function ipAddressBytes(ip: string): Buffer {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family !== 6 || ip.includes('%')) throw new BadParameterError(`invalid IP address "${ip}"`);
  const out = Buffer.alloc(16);
  let text = ip;
  // An embedded IPv4 tail (::ffff:1.2.3.4) is the last 4 bytes.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tailBytes: number[] = [];
  if (v4?.[1]) {
    tailBytes = v4[1].split('.').map(Number);
    text = text.slice(0, -v4[1].length) + '0:0';
  }
  const [head = '', tail] = text.split('::');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  const groups = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (tailBytes.length === 4) out.set(tailBytes, 12);
  return out;
}

/** SubjectAltName with dNSName [2] and iPAddress [7] entries (non-critical: subject is set). */
export function subjectAltNameExtension(opts: { dnsNames?: readonly string[]; ipAddresses?: readonly string[] }): Buffer {
  const names: Buffer[] = [];
  for (const dns of opts.dnsNames ?? []) {
    if (dns === '' || !/^[\x21-\x7e]+$/.test(dns)) {
      throw new BadParameterError(`invalid DNS name "${dns}" (use the ASCII/punycode form)`);
    }
    names.push(der.tlv(der.contextPrimitiveTag(2), Buffer.from(dns, 'latin1')));
  }
  for (const ip of opts.ipAddresses ?? []) names.push(der.tlv(der.contextPrimitiveTag(7), ipAddressBytes(ip)));
  if (names.length === 0) throw new BadParameterError('subject alternative name needs at least one DNS name or IP');
  return extension(OID.subjectAltName, false, der.sequenceOf(names));
}

/**
 * Key identifier per RFC 7093 section 2 method 1: the leftmost 160 bits of the SHA-256 of
 * the subjectPublicKey bits. SHA-256 rather than RFC 5280's SHA-1 keeps this FIPS-friendly.
 */
export function keyIdentifier(spki: Uint8Array | KeyObject): Buffer {
  const bytes = spki instanceof Uint8Array ? spki : spkiDer(spki);
  const seq = der.expect(der.readAll(bytes), der.Tag.SEQUENCE, 'SubjectPublicKeyInfo');
  const [, bits] = der.children(bytes, seq);
  const key = der.expect(bits, der.Tag.BIT_STRING, 'subjectPublicKey');
  return createHash('sha256')
    .update(bytes.subarray(key.start + 1, key.end))
    .digest()
    .subarray(0, 20);
}

export function subjectKeyIdentifierExtension(keyId: Uint8Array): Buffer {
  return extension(OID.subjectKeyIdentifier, false, der.octetString(keyId));
}

/** AuthorityKeyIdentifier with only keyIdentifier [0] set. */
export function authorityKeyIdentifierExtension(keyId: Uint8Array): Buffer {
  return extension(OID.authorityKeyIdentifier, false, der.sequence(der.tlv(der.contextPrimitiveTag(0), keyId)));
}

// ---------------------------------------------------------------------------------------
// TBSCertificate and Certificate

const VERSION_V3 = Buffer.from([0xa0, 0x03, der.Tag.INTEGER, 0x01, 0x02]);

export interface TbsCertificateParts {
  /** Unsigned big-endian magnitude; encoded positive and minimal. */
  serialNumber: Uint8Array;
  /** Encoded AlgorithmIdentifier, e.g. ECDSA_WITH_SHA256. */
  signatureAlgorithm: Uint8Array;
  /** Encoded Name, byte-for-byte the issuer certificate's subject. */
  issuer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** Encoded Name, e.g. from subjectName(). */
  subject: Uint8Array;
  /** Encoded SubjectPublicKeyInfo. */
  subjectPublicKeyInfo: Uint8Array;
  /** Encoded Extension elements, in order. */
  extensions: readonly Uint8Array[];
}

/** TBSCertificate (RFC 5280 4.1), always v3. */
export function tbsCertificate(p: TbsCertificateParts): Buffer {
  const parts: Uint8Array[] = [
    VERSION_V3,
    der.unsignedInteger(p.serialNumber),
    p.signatureAlgorithm,
    p.issuer,
    der.sequence(der.time(p.notBefore), der.time(p.notAfter)),
    p.subject,
    p.subjectPublicKeyInfo,
  ];
  if (p.extensions.length > 0) parts.push(der.explicit(3, der.sequenceOf(p.extensions)));
  return der.sequenceOf(parts);
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING } */
export function certificate(tbs: Uint8Array, signatureAlgorithm: Uint8Array, signature: Uint8Array): Buffer {
  return der.sequence(tbs, signatureAlgorithm, der.bitString(signature));
}

/** A certificate as a node X509Certificate, DER bytes, or PEM text. */
export type CertificateInput = X509Certificate | Uint8Array | string;

export function certificateDer(input: CertificateInput): Buffer {
  if (typeof input === 'string') return fromPem(input);
  if (input instanceof X509Certificate) return input.raw;
  if (input instanceof Uint8Array) return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  throw new BadParameterError('certificate must be PEM text, DER bytes or an X509Certificate');
}

/** Parses PEM/DER into a node X509Certificate, mapping parse failures to BadParameterError. */
export function toX509(input: CertificateInput): X509Certificate {
  if (input instanceof X509Certificate) return input;
  const bytes = certificateDer(input);
  try {
    return new X509Certificate(bytes);
  } catch (err) {
    throw new BadParameterError(`certificate could not be parsed: ${(err as Error).message}`, {}, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------
// Parser

export interface CertificateExtension {
  oid: string;
  critical: boolean;
  /** extnValue contents (a view into the certificate bytes). */
  value: Buffer;
}

export interface ParsedCertificate {
  der: Buffer;
  tbs: Buffer;
  version: number;
  /** Uppercase hex without leading zero bytes, as node's X509Certificate.serialNumber. */
  serialNumber: string;
  signatureAlgorithm: string;
  /** Encoded issuer Name. */
  issuer: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** Encoded subject Name. */
  subject: Buffer;
  /** Encoded SubjectPublicKeyInfo. */
  subjectPublicKeyInfo: Buffer;
  extensions: CertificateExtension[];
  signature: Buffer;
}

/** Structural parse of a certificate; no signature or validity checks. */
export function parseCertificate(input: CertificateInput): ParsedCertificate {
  const buf = certificateDer(input);
  const cert = der.expect(der.readAll(buf), der.Tag.SEQUENCE, 'Certificate');
  const top = der.children(buf, cert);
  if (top.length !== 3) throw new BadParameterError('malformed DER: Certificate must have 3 elements');
  const tbsT = der.expect(top[0], der.Tag.SEQUENCE, 'TBSCertificate');
  const algT = der.expect(top[1], der.Tag.SEQUENCE, 'signatureAlgorithm');
  const sigT = der.expect(top[2], der.Tag.BIT_STRING, 'signatureValue');

  const f = der.children(buf, tbsT);
  let i = 0;
  let version = 0;
  if (f[0]?.tag === der.contextConstructedTag(0)) {
    const [v] = der.children(buf, f[0]);
    version = der.readSmallInteger(buf, der.expect(v, der.Tag.INTEGER, 'version'));
    i++;
  }
  const serial = der.readUnsignedInteger(buf, der.expect(f[i++], der.Tag.INTEGER, 'serialNumber'));
  const sigAlg = der.expect(f[i++], der.Tag.SEQUENCE, 'signature');
  const issuer = der.expect(f[i++], der.Tag.SEQUENCE, 'issuer');
  const validity = der.expect(f[i++], der.Tag.SEQUENCE, 'validity');
  const subject = der.expect(f[i++], der.Tag.SEQUENCE, 'subject');
  const spki = der.expect(f[i++], der.Tag.SEQUENCE, 'subjectPublicKeyInfo');
  const [nb, na] = der.children(buf, validity);
  if (!nb || !na) throw new BadParameterError('malformed DER: incomplete validity');

  const extensions: CertificateExtension[] = [];
  for (; i < f.length; i++) {
    const t = f[i] as der.Tlv;
    if (t.tag !== der.contextConstructedTag(3)) continue; // issuerUniqueID / subjectUniqueID
    if (version !== 2) throw new BadParameterError('malformed certificate: extensions in a non-v3 certificate');
    const [list] = der.children(buf, t);
    const seen = new Set<string>();
    for (const ext of der.children(buf, der.expect(list, der.Tag.SEQUENCE, 'extensions'))) {
      const parts = der.children(buf, der.expect(ext, der.Tag.SEQUENCE, 'Extension'));
      const oid = der.readOid(buf, der.expect(parts[0], der.Tag.OID, 'extnID'));
      let critical = false;
      let v = parts[1];
      if (v?.tag === der.Tag.BOOLEAN) {
        critical = der.readBoolean(buf, v);
        v = parts[2];
      }
      const value = der.content(buf, der.expect(v, der.Tag.OCTET_STRING, 'extnValue'));
      if (seen.has(oid)) throw new BadParameterError(`malformed certificate: duplicate extension ${oid}`);
      seen.add(oid);
      extensions.push({ oid, critical, value });
    }
  }

  // RFC 5280 4.1.1.2: the outer algorithm must equal the one inside the signed part.
  if (!der.element(buf, algT).equals(der.element(buf, sigAlg))) {
    throw new BadParameterError('malformed certificate: signature algorithm mismatch');
  }
  const [algOid] = der.children(buf, sigAlg);
  const sig = der.content(buf, sigT);
  if (sig.length === 0) throw new BadParameterError('malformed DER: empty signature');
  return {
    der: buf,
    tbs: der.element(buf, tbsT),
    version,
    serialNumber: serial.toString('hex').toUpperCase(),
    signatureAlgorithm: der.readOid(buf, der.expect(algOid, der.Tag.OID, 'signature algorithm')),
    issuer: der.element(buf, issuer),
    notBefore: der.readTime(buf, nb),
    notAfter: der.readTime(buf, na),
    subject: der.element(buf, subject),
    subjectPublicKeyInfo: der.element(buf, spki),
    extensions,
    signature: sig.subarray(1),
  };
}
