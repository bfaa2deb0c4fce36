/**
 * A throwaway CA for the test API server: it signs the serving certificate and client
 * certificates whose CN is the Kubernetes user and whose O entries are its groups, the way
 * kube-apiserver's x509 authenticator reads them.
 */
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import {
  basicConstraintsExtension,
  certificate,
  ECDSA_WITH_SHA256,
  extendedKeyUsageExtension,
  keyIdentifier,
  keyUsageExtension,
  authorityKeyIdentifierExtension,
  subjectKeyIdentifierExtension,
  spkiDer,
  subjectAltNameExtension,
  subjectName,
  tbsCertificate,
  toPem,
} from '@keyway/pki';

export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

export interface TestCa extends CertAndKey {
  /** A certificate for a TLS server on the given names and IPs. */
  issueServer(names: { dnsNames?: string[]; ipAddresses?: string[] }): CertAndKey;
  /** A client certificate: CN = user, one O per group. */
  issueClient(user: string, groups?: readonly string[]): CertAndKey;
}

const DAY = 24 * 60 * 60 * 1000;

function newKey(): { key: KeyObject; spki: Buffer; keyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { key: privateKey, spki: spkiDer(publicKey), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

export function createTestCa(commonName = 'keyway-test-kube-ca'): TestCa {
  const ca = newKey();
  const caSpki = ca.spki;
  const caKeyId = keyIdentifier(caSpki);
  const caSubject = subjectName(commonName);
  const now = Date.now();

  function signTbs(parts: { subject: Buffer; spki: Buffer; extensions: Buffer[] }, days: number): string {
    const tbs = tbsCertificate({
      serialNumber: randomBytes(16),
      signatureAlgorithm: ECDSA_WITH_SHA256,
      issuer: caSubject,
      notBefore: new Date(now - 60 * 60 * 1000),
      notAfter: new Date(now + days * DAY),
      subject: parts.subject,
      subjectPublicKeyInfo: parts.spki,
      extensions: parts.extensions,
    });
    return toPem(certificate(tbs, ECDSA_WITH_SHA256, sign('sha256', tbs, ca.key)));
  }

  const caCertPem = signTbs(
    {
      subject: caSubject,
      spki: caSpki,
      extensions: [
        basicConstraintsExtension({ ca: true, pathLength: 0 }),
        keyUsageExtension(['digitalSignature', 'keyCertSign', 'cRLSign']),
        subjectKeyIdentifierExtension(caKeyId),
      ],
    },
    30,
  );

  function leaf(subject: Buffer, extensions: Buffer[]): CertAndKey {
    const k = newKey();
    const spki = k.spki;
    const certPem = signTbs(
      {
        subject,
        spki,
        extensions: [
          basicConstraintsExtension({ ca: false }),
          keyUsageExtension(['digitalSignature', 'keyEncipherment']),
          authorityKeyIdentifierExtension(caKeyId),
          ...extensions,
        ],
      },
      7,
    );
    return { certPem, keyPem: k.keyPem };
  }

  return {
    certPem: caCertPem,
    keyPem: ca.keyPem,
    issueServer({ dnsNames = [], ipAddresses = [] }) {
      return leaf(subjectName('keyway-test-kube-apiserver'), [
        extendedKeyUsageExtension(['serverAuth']),
        subjectAltNameExtension({ dnsNames, ipAddresses }),
      ]);
    },
    issueClient(user, groups = []) {
      return leaf(subjectName(user, groups), [extendedKeyUsageExtension(['clientAuth'])]);
    },
  };
}
