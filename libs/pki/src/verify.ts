/** Verification of a Keyway-issued certificate against trusted CA certificates. */
import type { X509Certificate } from 'node:crypto';
import { AccessDeniedError } from '@keyway/errors';
import { decodeIdentity, type Identity } from './identity.js';
import { OID, decodeName, formatName, parseCertificate, toX509, type CertificateInput } from './x509.js';

/** "user CA of cluster "acme"" for Keyway CAs, otherwise the CA's subject. */
function describeCa(ca: X509Certificate): string {
  try {
    const attrs = decodeName(parseCertificate(ca.raw).subject);
    const cn = attrs.find((a) => a.oid === OID.commonName)?.value;
    const type = attrs.map((a) => (a.oid === OID.organization ? /^keyway (\w+) CA$/.exec(a.value)?.[1] : undefined)).find(Boolean);
    return type && cn ? `${type} CA of cluster "${cn}"` : `CA "${formatName(attrs)}"`;
  } catch {
    return `CA "${ca.subject}"`;
  }
}

function describeCas(cas: readonly X509Certificate[]): string {
  const names = [...new Set(cas.map(describeCa))];
  return names.length === 1 ? `the ${names[0]}` : `any of: ${names.join('; ')}`;
}

/**
 * Returns the identity of `cert` if one of `caCerts` issued and signed it and `now` is
 * inside its validity window. Otherwise throws AccessDeniedError saying which check failed;
 * malformed input throws BadParameterError.
 */
export function verifyCertificate(
  cert: CertificateInput,
  caCerts: readonly X509Certificate[],
  now: Date = new Date(),
): Identity {
  const x509 = toX509(cert);
  if (caCerts.length === 0) {
    throw new AccessDeniedError('certificate cannot be verified: no trusted CA certificates are configured');
  }
  // checkIssued matches issuer name and key identifiers; verify checks the signature itself.
  const signed = caCerts.some((ca) => x509.checkIssued(ca) && x509.verify(ca.publicKey));
  if (!signed) {
    throw new AccessDeniedError(`certificate is not signed by ${describeCas(caCerts)}`, {
      subject: x509.subject,
      issuer: x509.issuer,
      serialNumber: x509.serialNumber,
    });
  }
  const identity = decodeIdentity(x509.raw);
  const data = { username: identity.username, serialNumber: identity.serialNumber, now: now.toISOString() };
  if (identity.issuedAt && now.getTime() < identity.issuedAt.getTime()) {
    throw new AccessDeniedError(
      `certificate is not valid before ${identity.issuedAt.toISOString()} (is a clock off?)`,
      { ...data, notBefore: identity.issuedAt.toISOString() },
    );
  }
  if (now.getTime() > identity.expires.getTime()) {
    throw new AccessDeniedError(`certificate expired at ${identity.expires.toISOString()}`, {
      ...data,
      notAfter: identity.expires.toISOString(),
    });
  }
  return identity;
}
