import { createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { AccessDeniedError, BadParameterError } from '@keyway/errors';
import { describe, expect, it } from 'vitest';
import * as der from './der.js';
import {
  IDENTITY_EXTENSION_OID,
  decodeIdentity,
  decodeIdentityExtension,
  encodeIdentityExtension,
  identityExtension,
  identitySubject,
  type IdentityClaims,
} from './identity.js';
import { fingerprint, generateKeyPair, publicKeyFromPem, spkiPin } from './keys.js';
import { verifyCertificate } from './verify.js';
import {
  ECDSA_WITH_SHA256,
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  certificate,
  decodeName,
  extendedKeyUsageExtension,
  ipAddressBytes,
  keyIdentifier,
  keyUsageExtension,
  parseCertificate,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
  subjectName,
  tbsCertificate,
} from './x509.js';
import { fromPem, toPem } from './pem.js';
import { spkiDer, subjectPublicKey } from './spki.js';

// Test-only signing with node crypto and the exported builders; real signing is in apps/auth.
interface TestCa {
  cert: X509Certificate;
  key: KeyObject;
  subject: Buffer;
  keyId: Buffer;
}

const HOUR = 3600_000;

function makeCa(cluster: string, type: 'user' | 'host' = 'user'): TestCa {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = spkiDer(publicKey);
  const subject = subjectName(cluster, [`keyway ${type} CA`]);
  const keyId = keyIdentifier(spki);
  const tbs = tbsCertificate({
    serialNumber: randomBytes(16),
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: subject,
    notBefore: new Date(Date.now() - HOUR),
    notAfter: new Date(Date.now() + 24 * HOUR),
    subject,
    subjectPublicKeyInfo: spki,
    extensions: [
      basicConstraintsExtension({ ca: true, pathLength: 0 }),
      keyUsageExtension(['keyCertSign', 'cRLSign']),
      subjectKeyIdentifierExtension(keyId),
    ],
  });
  const cert = new X509Certificate(certificate(tbs, ECDSA_WITH_SHA256, sign('sha256', tbs, privateKey)));
  return { cert, key: privateKey, subject, keyId };
}

function issue(
  ca: TestCa,
  claims: IdentityClaims,
  opts: { notBefore?: Date; notAfter?: Date; withIdentity?: boolean; serial?: Buffer } = {},
): Buffer {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const tbs = tbsCertificate({
    serialNumber: opts.serial ?? randomBytes(16),
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: ca.subject,
    notBefore: opts.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + HOUR),
    subject: identitySubject(claims),
    subjectPublicKeyInfo: spkiDer(publicKey),
    extensions: [
      basicConstraintsExtension({ ca: false }),
      keyUsageExtension(['digitalSignature']),
      extendedKeyUsageExtension(['clientAuth']),
      authorityKeyIdentifierExtension(ca.keyId),
      ...(opts.withIdentity === false ? [] : [identityExtension(claims)]),
    ],
  });
  return certificate(tbs, ECDSA_WITH_SHA256, sign('sha256', tbs, ca.key));
}

const alice: IdentityClaims = {
  username: 'alice@example.com',
  roles: ['access', 'kube-dev'],
  traits: { logins: ['alice', 'root'], kubernetes_groups: ['devs'], empty: [] },
  kubernetesCluster: 'prod-eu',
  kubernetesUsers: ['alice'],
  kubernetesGroups: ['system:masters', 'devs'],
  clusterName: 'acme',
  loginIp: '203.0.113.7',
  mfaVerified: true,
  systemRoles: [],
};

const minimal: IdentityClaims = {
  username: 'bob',
  roles: [],
  traits: {},
  kubernetesUsers: [],
  kubernetesGroups: [],
  clusterName: 'acme',
  mfaVerified: false,
  systemRoles: [],
};

describe('identity extension', () => {
  it('round-trips every field', () => {
    const { username: _u, roles: _r, ...fields } = alice;
    expect(decodeIdentityExtension(encodeIdentityExtension(alice))).toEqual(fields);
  });

  it('round-trips an identity with empty lists and no optional fields', () => {
    const { username: _u, roles: _r, ...fields } = minimal;
    const enc = encodeIdentityExtension(minimal);
    // version + cluster name only: absent fields cost nothing.
    expect(enc.length).toBe(2 + 3 + 2 + 'acme'.length);
    expect(decodeIdentityExtension(enc)).toEqual(fields);
  });

  it('carries system roles for host identities', () => {
    const host = { ...minimal, username: 'proxy-1', roles: ['Proxy'], systemRoles: ['Proxy' as const] };
    expect(decodeIdentityExtension(encodeIdentityExtension(host)).systemRoles).toEqual(['Proxy']);
    expect(() => encodeIdentityExtension({ ...minimal, systemRoles: ['Root' as never] })).toThrow(BadParameterError);
  });

  it('keeps unicode and odd trait names as data', () => {
    const traits = JSON.parse('{"__proto__":["x"],"constructor":["y"],"名前":["山田 太郎","Zoë"]}') as Record<string, string[]>;
    const back = decodeIdentityExtension(encodeIdentityExtension({ ...minimal, clusterName: 'クラスタ', traits }));
    expect(back.clusterName).toBe('クラスタ');
    expect(Object.keys(back.traits)).toEqual(['__proto__', 'constructor', '名前']);
    expect(back.traits['名前']).toEqual(['山田 太郎', 'Zoë']);
    expect(Object.getPrototypeOf(back.traits)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });

  it('refuses control characters and empty names when encoding', () => {
    expect(() => identitySubject({ username: 'eve\nadmin', roles: [] })).toThrow(BadParameterError);
    expect(() => identitySubject({ username: '', roles: [] })).toThrow(BadParameterError);
    expect(() => identitySubject({ username: 'eve', roles: [''] })).toThrow(BadParameterError);
    expect(() => encodeIdentityExtension({ ...minimal, kubernetesGroups: ['a\r\nb'] })).toThrow(BadParameterError);
    expect(() => encodeIdentityExtension({ ...minimal, clusterName: '' })).toThrow(BadParameterError);
    expect(() => encodeIdentityExtension({ ...minimal, traits: { a: 'x' as unknown as string[] } })).toThrow(
      BadParameterError,
    );
  });

  it('skips unknown fields and rejects broken layouts', () => {
    const P = der.contextPrimitiveTag;
    const version = der.tlv(P(0), Buffer.from([1]));
    const cluster = der.utf8String('acme', P(1));
    const future = der.utf8String('from a newer auth', P(20));
    expect(decodeIdentityExtension(der.sequence(version, cluster, future)).clusterName).toBe('acme');

    const bad: [Buffer, string][] = [
      [der.sequence(cluster, version), 'out of order'],
      [der.sequence(version, cluster, cluster), 'out of order or repeated'],
      [der.sequence(der.tlv(P(0), Buffer.from([2])), cluster), 'unsupported identity extension version 2'],
      [der.sequence(cluster), 'no version'],
      [der.sequence(version), 'no cluster name'],
      [der.sequence(version, der.utf8String('acme')), 'untagged field'],
      [Buffer.from('3003', 'hex'), 'malformed DER'],
    ];
    for (const [enc, msg] of bad) {
      expect(() => decodeIdentityExtension(enc), msg).toThrow(msg);
      expect(() => decodeIdentityExtension(enc)).toThrow(BadParameterError);
    }
  });
});

describe('certificates', () => {
  const ca = makeCa('acme');

  it('decodes the identity from PEM, DER and X509Certificate alike', () => {
    const notAfter = new Date(Math.floor(Date.now() / 1000) * 1000 + 2 * HOUR);
    const certDer = issue(ca, alice, { notAfter });
    const x509 = new X509Certificate(certDer);
    for (const input of [certDer, toPem(certDer), x509, new Uint8Array(certDer)]) {
      const id = decodeIdentity(input);
      expect(id).toMatchObject({ ...alice, expires: notAfter });
      expect(id.serialNumber).toBe(x509.serialNumber);
      expect(id.issuedAt?.getTime()).toBe(new Date(x509.validFrom).getTime());
    }
    expect(x509.checkIssued(ca.cert)).toBe(true);
    expect(x509.verify(ca.cert.publicKey)).toBe(true);
  });

  it('puts the username in CN and one O per role, readable by other parsers', () => {
    const x509 = new X509Certificate(issue(ca, { ...alice, username: 'Zoë 山田', roles: ['access', 'dev'] }));
    expect(x509.subject.split('\n')).toEqual(['O=access', 'O=dev', 'CN=Zoë 山田']);
    expect(decodeIdentity(x509)).toMatchObject({ username: 'Zoë 山田', roles: ['access', 'dev'] });
  });

  it('decodes a certificate with no roles and empty lists', () => {
    const id = decodeIdentity(issue(ca, minimal));
    expect(id).toMatchObject({ ...minimal });
    expect(id.kubernetesCluster).toBeUndefined();
    expect(id.loginIp).toBeUndefined();
  });

  it('keeps serial numbers positive and in node’s format', () => {
    const high = Buffer.alloc(16, 0xff);
    const leadingZero = Buffer.concat([Buffer.from([0, 0x12]), Buffer.alloc(14, 1)]);
    for (const serial of [high, leadingZero]) {
      const certDer = issue(ca, minimal, { serial });
      expect(decodeIdentity(certDer).serialNumber).toBe(new X509Certificate(certDer).serialNumber);
    }
  });

  it('parses the structure of a certificate', () => {
    const certDer = issue(ca, alice);
    const p = parseCertificate(certDer);
    expect(p.version).toBe(2);
    expect(p.signatureAlgorithm).toBe('1.2.840.10045.4.3.2');
    expect(p.issuer.equals(ca.subject)).toBe(true);
    expect(decodeName(p.subject).map((a) => a.value)).toEqual(['access', 'kube-dev', 'alice@example.com']);
    expect(p.extensions.map((e) => [e.oid, e.critical])).toEqual([
      ['2.5.29.19', true],
      ['2.5.29.15', true],
      ['2.5.29.37', false],
      ['2.5.29.35', false],
      [IDENTITY_EXTENSION_OID, false],
    ]);
    expect(p.tbs.length).toBeLessThan(p.der.length);
  });

  it('rejects malformed certificates with BadParameterError', () => {
    const good = issue(ca, alice);
    const inputs: unknown[] = [
      'not a certificate',
      '-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n',
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
      good.subarray(0, good.length - 10),
      Buffer.concat([good, Buffer.from([0])]),
      Buffer.alloc(0),
      42,
    ];
    for (const input of inputs) {
      expect(() => decodeIdentity(input as string)).toThrow(BadParameterError);
    }
    expect(() => decodeIdentity(issue(ca, alice, { withIdentity: false }))).toThrow('no keyway identity extension');
  });

  it('rejects duplicate extensions', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const tbs = tbsCertificate({
      serialNumber: Buffer.from([1]),
      signatureAlgorithm: ECDSA_WITH_SHA256,
      issuer: ca.subject,
      notBefore: new Date(),
      notAfter: new Date(Date.now() + HOUR),
      subject: identitySubject(minimal),
      subjectPublicKeyInfo: spkiDer(publicKey),
      extensions: [identityExtension(minimal), identityExtension(minimal)],
    });
    expect(() => decodeIdentity(certificate(tbs, ECDSA_WITH_SHA256, sign('sha256', tbs, ca.key)))).toThrow(
      'duplicate extension',
    );
  });
});

describe('verifyCertificate', () => {
  const userCa = makeCa('acme', 'user');
  const hostCa = makeCa('acme', 'host');
  const now = new Date();

  it('returns the identity of a certificate signed by the CA', () => {
    const id = verifyCertificate(toPem(issue(userCa, alice)), [userCa.cert], now);
    expect(id.username).toBe('alice@example.com');
    expect(id.kubernetesGroups).toEqual(['system:masters', 'devs']);
  });

  it('accepts any of several CAs (rotation)', () => {
    const next = makeCa('acme', 'user');
    expect(verifyCertificate(issue(next, alice), [userCa.cert, next.cert], now).username).toBe(alice.username);
  });

  it('refuses a certificate from another CA', () => {
    const fromHost = issue(hostCa, alice);
    expect(() => verifyCertificate(fromHost, [userCa.cert], now)).toThrow(AccessDeniedError);
    expect(() => verifyCertificate(fromHost, [userCa.cert], now)).toThrow(
      'certificate is not signed by the user CA of cluster "acme"',
    );
    // Same subject as the user CA but a different key: the name alone must not pass.
    const impostor = makeCa('acme', 'user');
    expect(() => verifyCertificate(issue(impostor, alice), [userCa.cert], now)).toThrow('not signed by');
    expect(() => verifyCertificate(fromHost, [], now)).toThrow('no trusted CA');
  });

  it('refuses a certificate whose signature was tampered with', () => {
    const certDer = Buffer.from(issue(userCa, alice));
    const sigStart = certDer.length - 10;
    certDer[sigStart] = (certDer[sigStart] as number) ^ 0x01;
    expect(() => verifyCertificate(certDer, [userCa.cert], now)).toThrow(/not signed|could not be parsed/);
  });

  it('refuses expired and not-yet-valid certificates', () => {
    const expired = issue(userCa, alice, {
      notBefore: new Date('2024-01-01T00:00:00Z'),
      notAfter: new Date('2024-01-01T12:00:00Z'),
    });
    expect(() => verifyCertificate(expired, [userCa.cert], now)).toThrow(AccessDeniedError);
    expect(() => verifyCertificate(expired, [userCa.cert], now)).toThrow(
      'certificate expired at 2024-01-01T12:00:00.000Z',
    );
    expect(verifyCertificate(expired, [userCa.cert], new Date('2024-01-01T12:00:00Z')).username).toBe(alice.username);
    const future = issue(userCa, alice, { notBefore: new Date(Date.now() + HOUR), notAfter: new Date(Date.now() + 2 * HOUR) });
    expect(() => verifyCertificate(future, [userCa.cert], now)).toThrow('not valid before');
  });

  it('carries data for logs', () => {
    try {
      verifyCertificate(issue(hostCa, alice), [userCa.cert], now);
      expect.unreachable();
    } catch (err) {
      expect((err as AccessDeniedError).data).toMatchObject({ subject: expect.stringContaining('alice') });
    }
  });
});

describe('keys and digests', () => {
  const ca = makeCa('acme');

  it('generates P-256 key pairs and parses public keys', () => {
    const { privateKeyPem, publicKeyPem } = generateKeyPair();
    expect(privateKeyPem).toContain('BEGIN PRIVATE KEY');
    const pub = publicKeyFromPem(publicKeyPem);
    expect(pub.asymmetricKeyType).toBe('ec');
    expect(pub.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(publicKeyFromPem(ca.cert.toString()).equals(ca.cert.publicKey)).toBe(true);
    expect(() => publicKeyFromPem(privateKeyPem)).toThrow(BadParameterError);
    expect(() => publicKeyFromPem('garbage')).toThrow(BadParameterError);
  });

  it('fingerprints like openssl and pins the SPKI like Teleport', () => {
    expect(fingerprint(ca.cert)).toBe(ca.cert.fingerprint256);
    expect(fingerprint(ca.cert.toString())).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const pin = spkiPin(ca.cert);
    expect(pin).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(spkiPin(ca.cert.publicKey)).toBe(pin);
    expect(spkiPin(ca.cert.raw)).toBe(pin);
  });

  it('builds extensions other parsers understand', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const tbs = tbsCertificate({
      serialNumber: Buffer.from([7]),
      signatureAlgorithm: ECDSA_WITH_SHA256,
      issuer: ca.subject,
      notBefore: new Date(),
      notAfter: new Date(Date.now() + HOUR),
      subject: subjectName('proxy-1', ['Proxy']),
      subjectPublicKeyInfo: spkiDer(publicKey),
      extensions: [
        subjectAltNameExtension({ dnsNames: ['proxy.example.com', '*.kube.example.com'], ipAddresses: ['127.0.0.1', '::1', '2001:db8::ffff:1.2.3.4'] }),
        authorityKeyIdentifierExtension(ca.keyId),
      ],
    });
    const x509 = new X509Certificate(certificate(tbs, ECDSA_WITH_SHA256, sign('sha256', tbs, ca.key)));
    expect(x509.subjectAltName).toBe(
      'DNS:proxy.example.com, DNS:*.kube.example.com, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:FFFF:102:304',
    );
    expect(x509.checkHost('proxy.example.com')).toBe('proxy.example.com');
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.ca).toBe(false);
    expect(ca.cert.ca).toBe(true);
    expect(x509.checkIssued(ca.cert)).toBe(true);
    expect(() => subjectAltNameExtension({ dnsNames: ['bücher.example'] })).toThrow(BadParameterError);
    expect(() => subjectAltNameExtension({})).toThrow(BadParameterError);
    expect(ipAddressBytes('::').toString('hex')).toBe('0'.repeat(32));
    expect(ipAddressBytes('1::').toString('hex')).toBe('0001' + '0'.repeat(28));
    expect(ipAddressBytes('::ffff:10.0.0.1').toString('hex')).toBe('0'.repeat(20) + 'ffff0a000001');
    expect(ipAddressBytes('fe80:0:0:0:0:0:0:abcd').toString('hex')).toBe('fe80' + '0'.repeat(24) + 'abcd');
    expect(() => ipAddressBytes('fe80::1%eth0')).toThrow(BadParameterError);
    expect(() => ipAddressBytes('1.2.3')).toThrow(BadParameterError);
  });

  it('encodes key usage bits per DER named-bit rules', () => {
    const value = (ext: Buffer): string => parseExtValue(ext);
    expect(value(keyUsageExtension(['digitalSignature']))).toBe('03020780');
    expect(value(keyUsageExtension(['keyCertSign', 'cRLSign']))).toBe('03020106');
    expect(value(keyUsageExtension(['digitalSignature', 'keyEncipherment']))).toBe('030205a0');
    expect(value(keyUsageExtension(['decipherOnly']))).toBe('0303070080');
    expect(value(basicConstraintsExtension({ ca: false }))).toBe('3000');
    expect(value(basicConstraintsExtension({ ca: true, pathLength: 0 }))).toBe('30060101ff020100');
  });

  it('round-trips PEM and refuses a missing block', () => {
    const pem = ca.cert.toString();
    expect(fromPem(pem).equals(ca.cert.raw)).toBe(true);
    expect(toPem(ca.cert.raw)).toBe(pem);
    expect(() => fromPem(pem, 'PRIVATE KEY')).toThrow('no PRIVATE KEY PEM block found');
    expect(createPublicKey(toPem(spkiDer(ca.cert.publicKey), 'PUBLIC KEY')).equals(ca.cert.publicKey)).toBe(true);
  });
});

describe('subjectPublicKey', () => {
  const keys = {
    'P-256': generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
    'P-384': generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey,
    rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
    ed25519: generateKeyPairSync('ed25519').publicKey,
  };

  it('encodes SPKI exactly as OpenSSL does, from KeyObject, PEM and DER', () => {
    for (const [name, key] of Object.entries(keys)) {
      const expected = key.export({ type: 'spki', format: 'der' });
      const fromKey = subjectPublicKey(key);
      expect(fromKey.spki.equals(expected), name).toBe(true);
      expect(subjectPublicKey(key.export({ type: 'spki', format: 'pem' }) as string)).toEqual(fromKey);
      expect(subjectPublicKey(expected)).toEqual(fromKey);
    }
    expect(subjectPublicKey(keys['P-256'])).toMatchObject({ type: 'ec', curve: 'P-256' });
    expect(subjectPublicKey(keys.rsa)).toMatchObject({ type: 'rsa', modulusLength: 2048 });
    expect(subjectPublicKey(keys.ed25519).type).toBe('ed25519');
    const pkcs1 = keys.rsa.export({ type: 'pkcs1', format: 'pem' }) as string;
    expect(subjectPublicKey(pkcs1).spki.equals(subjectPublicKey(keys.rsa).spki)).toBe(true);
  });

  it('refuses private, unsupported and invalid keys', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => subjectPublicKey(ec.privateKey)).toThrow('expected a public key');
    expect(() => subjectPublicKey(ec.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)).toThrow('private key');
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey;
    expect(() => subjectPublicKey(p521)).toThrow(BadParameterError);
    expect(() => subjectPublicKey(p521.export({ type: 'spki', format: 'der' }))).toThrow('unsupported EC curve');
    expect(() => subjectPublicKey(generateKeyPairSync('x25519').publicKey)).toThrow('unsupported public key');

    const spki = Buffer.from(ec.publicKey.export({ type: 'spki', format: 'der' }));
    const offCurve = Buffer.from(spki);
    offCurve[offCurve.length - 1] = (offCurve[offCurve.length - 1] as number) ^ 1;
    expect(() => subjectPublicKey(offCurve)).toThrow('not a point on P-256');
    const compressed = ec.publicKey.export({ format: 'jwk' });
    const y = Buffer.from(compressed.y as string, 'base64url');
    const point = Buffer.concat([Buffer.from([2 + ((y[31] as number) & 1)]), Buffer.from(compressed.x as string, 'base64url')]);
    const compressedSpki = der.sequence(
      der.sequence(der.oid('1.2.840.10045.2.1'), der.oid('1.2.840.10045.3.1.7')),
      der.bitString(point),
    );
    expect(() => subjectPublicKey(compressedSpki)).toThrow('uncompressed');
    expect(() => subjectPublicKey('garbage')).toThrow(BadParameterError);
    expect(() => subjectPublicKey(Buffer.from('3000', 'hex'))).toThrow(BadParameterError);
    expect(() => subjectPublicKey(42 as unknown as string)).toThrow(BadParameterError);
  });
});

function parseExtValue(ext: Buffer): string {
  const parts = der.children(ext, der.readAll(ext));
  return der.content(ext, parts[parts.length - 1] as der.Tlv).toString('hex');
}
