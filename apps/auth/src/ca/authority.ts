/**
 * Certificate authorities and certificate signing. This is the only signing code in Keyway:
 * edge services get the CA certificates and can only verify.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomFillSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { BadParameterError } from '@keyway/errors';
import {
  ECDSA_WITH_SHA256,
  OID,
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  certificate,
  der,
  extendedKeyUsageExtension,
  identityExtension,
  identitySubject,
  keyIdentifier,
  keyUsageExtension,
  parseCertificate,
  spkiDer,
  subjectPublicKey,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
  subjectName,
  tbsCertificate,
  toPem,
  type IdentityClaims,
  type SubjectPublicKey,
} from '@keyway/pki';

export type CertAuthorityType = 'user' | 'host';

export interface CertAuthorityPem {
  certPem: string;
  /** PKCS#8 PEM; encrypt with keystore.encryptCaKey before storing. */
  privateKeyPem: string;
}

export const CA_VALIDITY_YEARS = 10;
/** NotBefore is backdated by this much so clients with a slightly slow clock accept new certs. */
export const CLOCK_SKEW_MS = 60_000;

const SERIAL_BYTES = 16;

/** Subject O of a CA certificate; verifyCertificate's messages name CAs by it. */
export const caOrganization = (type: CertAuthorityType): string => `keyway ${type} CA`;

/**
 * A new self-signed ECDSA P-256 CA: CN = cluster name, O = `keyway <type> CA`, valid for
 * 10 years, BasicConstraints CA with path length 0 (it signs leaves only), keyCertSign.
 */
export function createCertAuthority(opts: { type: CertAuthorityType; clusterName: string; now?: Date }): CertAuthorityPem {
  if (opts.type !== 'user' && opts.type !== 'host') {
    throw new BadParameterError(`unknown CA type "${String(opts.type)}"`, { type: opts.type });
  }
  if (!opts.clusterName || /[\u0000-\u001f\u007f]/.test(opts.clusterName)) {
    throw new BadParameterError('CA needs a cluster name without control characters', { clusterName: opts.clusterName });
  }
  const now = opts.now ?? new Date();
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CA_VALIDITY_YEARS);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = spkiDer(publicKey);
  const subject = subjectName(opts.clusterName, [caOrganization(opts.type)]);
  const tbs = tbsCertificate({
    serialNumber: randomSerial(),
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: subject,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter,
    subject,
    subjectPublicKeyInfo: spki,
    extensions: [
      basicConstraintsExtension({ ca: true, pathLength: 0 }),
      keyUsageExtension(['keyCertSign', 'cRLSign']),
      subjectKeyIdentifierExtension(keyIdentifier(spki)),
    ],
  });
  const certDer = certificate(tbs, ECDSA_WITH_SHA256, sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' }));
  return {
    certPem: toPem(certDer),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

function randomSerial(): Buffer {
  const b = Buffer.allocUnsafe(SERIAL_BYTES);
  do randomFillSync(b);
  while (b.every((x) => x === 0));
  return b;
}

export interface SignUserCertificateRequest {
  /**
   * The subject's public key: SPKI PEM as received (fastest: parsed without OpenSSL), or a
   * public KeyObject.
   */
  publicKey: string | KeyObject;
  identity: IdentityClaims;
  notAfter: Date;
  notBefore?: Date;
}

export interface SignHostCertificateRequest extends SignUserCertificateRequest {
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
}

export interface SignedCertificate {
  certPem: string;
  certDer: Buffer;
  /** Uppercase hex, as node's X509Certificate.serialNumber and decodeIdentity report it. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

// Serials are drawn from a pooled buffer: one randomFillSync per 256 certificates instead of
// one per certificate.
const SERIAL_POOL = 256;

/**
 * Signs certificates with one CA. Everything constant across certificates (issuer Name,
 * algorithm identifier, AKI and usage extensions) is encoded once here; each issue encodes
 * only subject, validity, key, identity and SAN, then makes one ECDSA signature.
 */
export class CertSigner {
  readonly caCert: X509Certificate;
  readonly caCertPem: string;
  private readonly key: KeyObject;
  private readonly issuer: Buffer;
  private readonly caNotAfter: number;
  private readonly now: () => Date;
  private readonly userExtensions: Buffer[];
  private readonly hostExtensions: Buffer[];
  private readonly hostExtensionsRsa: Buffer[];
  private serials = Buffer.alloc(0);
  private serialOffset = 0;

  constructor(ca: { certPem: string; privateKey: KeyObject | string }, opts: { now?: () => Date } = {}) {
    const parsed = parseCertificate(ca.certPem);
    this.caCert = new X509Certificate(parsed.der);
    this.caCertPem = toPem(parsed.der);
    if (!this.caCert.ca) throw new BadParameterError('CA certificate lacks BasicConstraints CA:true');
    this.key = typeof ca.privateKey === 'string' ? createPrivateKey(ca.privateKey) : ca.privateKey;
    if (this.key.type !== 'private') throw new BadParameterError('CA signer needs a private key');
    if (this.key.asymmetricKeyType !== 'ec' || this.key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new BadParameterError('CA key must be ECDSA P-256', { type: this.key.asymmetricKeyType });
    }
    if (!spkiDer(createPublicKey(this.key)).equals(parsed.subjectPublicKeyInfo)) {
      throw new BadParameterError('CA private key does not match the CA certificate');
    }
    this.issuer = Buffer.from(parsed.subject);
    this.caNotAfter = parsed.notAfter.getTime();
    this.now = opts.now ?? (() => new Date());

    // AKI must equal the CA's SKI byte for byte (OpenSSL matches them when building chains),
    // so reuse the CA's own SKI when it has one.
    const ski = parsed.extensions.find((e) => e.oid === OID.subjectKeyIdentifier);
    const keyId = ski
      ? Buffer.from(der.content(ski.value, der.expect(der.readAll(ski.value), der.Tag.OCTET_STRING, 'SKI')))
      : keyIdentifier(parsed.subjectPublicKeyInfo);
    const aki = authorityKeyIdentifierExtension(keyId);
    const leaf = basicConstraintsExtension({ ca: false });
    this.userExtensions = [
      leaf,
      keyUsageExtension(['digitalSignature']),
      extendedKeyUsageExtension(['clientAuth']),
      aki,
    ];
    const serverClient = extendedKeyUsageExtension(['serverAuth', 'clientAuth']);
    this.hostExtensions = [leaf, keyUsageExtension(['digitalSignature']), serverClient, aki];
    // TLS 1.2 RSA key exchange needs keyEncipherment on RSA server keys.
    this.hostExtensionsRsa = [leaf, keyUsageExtension(['digitalSignature', 'keyEncipherment']), serverClient, aki];
  }

  /** A client certificate for a person (EKU clientAuth). `identity.systemRoles` must be empty. */
  signUserCertificate(req: SignUserCertificateRequest): SignedCertificate {
    if (req.identity.systemRoles?.length) {
      throw new BadParameterError('user certificates cannot carry system roles', { systemRoles: req.identity.systemRoles });
    }
    const key = subjectKey(req.publicKey);
    return this.issue(req, key, [...this.userExtensions, identityExtension(req.identity)]);
  }

  /**
   * A certificate for a Keyway component (EKU serverAuth and clientAuth), with the DNS names
   * and IPs it serves as SAN. `identity.systemRoles` names what the host is.
   */
  signHostCertificate(req: SignHostCertificateRequest): SignedCertificate {
    if (!req.identity.systemRoles?.length) {
      throw new BadParameterError('host certificates need at least one system role');
    }
    const key = subjectKey(req.publicKey);
    const base = key.type === 'rsa' ? this.hostExtensionsRsa : this.hostExtensions;
    const extensions = [...base, identityExtension(req.identity)];
    if (req.dnsNames.length > 0 || req.ipAddresses.length > 0) {
      extensions.splice(base.length - 1, 0, subjectAltNameExtension({ dnsNames: req.dnsNames, ipAddresses: req.ipAddresses }));
    }
    return this.issue(req, key, extensions);
  }

  private issue(req: SignUserCertificateRequest, key: SubjectPublicKey, extensions: Buffer[]): SignedCertificate {
    const notBefore = req.notBefore ?? new Date(this.now().getTime() - CLOCK_SKEW_MS);
    const notAfter = req.notAfter;
    const nb = notBefore.getTime();
    const na = notAfter.getTime();
    if (!(na > nb)) throw new BadParameterError('certificate expiry must be after its start', { notBefore, notAfter });
    if (na > this.caNotAfter) {
      throw new BadParameterError('certificate would outlive its CA', {
        notAfter: notAfter.toISOString(),
        caNotAfter: new Date(this.caNotAfter).toISOString(),
      });
    }
    const serial = this.nextSerial();
    const tbs = tbsCertificate({
      serialNumber: serial,
      signatureAlgorithm: ECDSA_WITH_SHA256,
      issuer: this.issuer,
      notBefore,
      notAfter,
      subject: identitySubject(req.identity),
      subjectPublicKeyInfo: key.spki,
      extensions,
    });
    const signature = sign('sha256', tbs, { key: this.key, dsaEncoding: 'der' });
    const certDer = certificate(tbs, ECDSA_WITH_SHA256, signature);
    let i = 0;
    while (i < serial.length - 1 && serial[i] === 0) i++;
    return {
      certPem: toPem(certDer),
      certDer,
      serialNumber: serial.toString('hex', i).toUpperCase(),
      notBefore,
      notAfter,
    };
  }

  /** 16 random bytes, encoded as a positive INTEGER (a 0x00 pad is added when needed). */
  private nextSerial(): Buffer {
    if (this.serialOffset + SERIAL_BYTES > this.serials.length) {
      // A fresh buffer each refill: earlier serials may still be referenced by callers.
      this.serials = randomFillSync(Buffer.allocUnsafe(SERIAL_BYTES * SERIAL_POOL));
      this.serialOffset = 0;
    }
    const serial = this.serials.subarray(this.serialOffset, this.serialOffset + SERIAL_BYTES);
    this.serialOffset += SERIAL_BYTES;
    // An all-zero serial is invalid; at 2^-128 it is cheaper to check only when it starts with 0.
    return serial[0] === 0 && serial.every((b) => b === 0) ? this.nextSerial() : serial;
  }
}

const MIN_RSA_BITS = 2048;

/** The subject's public key as canonical SPKI, refusing private keys and weak RSA. */
function subjectKey(input: string | KeyObject): SubjectPublicKey {
  const key = subjectPublicKey(input);
  if (key.type === 'rsa' && (key.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new BadParameterError(`RSA subject keys must have at least ${MIN_RSA_BITS} bits`, { bits: key.modulusLength });
  }
  return key;
}
