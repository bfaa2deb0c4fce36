export * as der from './der.js';
export {
  OID,
  ECDSA_WITH_SHA256,
  subjectName,
  decodeName,
  formatName,
  extension,
  keyUsageExtension,
  basicConstraintsExtension,
  extendedKeyUsageExtension,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
  authorityKeyIdentifierExtension,
  keyIdentifier,
  ipAddressBytes,
  tbsCertificate,
  certificate,
  certificateDer,
  toX509,
  parseCertificate,
  type NameAttribute,
  type KeyUsage,
  type ExtendedKeyUsage,
  type TbsCertificateParts,
  type CertificateInput,
  type CertificateExtension,
  type ParsedCertificate,
} from './x509.js';
export {
  KEYWAY_OID_ARC,
  IDENTITY_EXTENSION_OID,
  IDENTITY_EXTENSION_VERSION,
  SYSTEM_ROLES,
  encodeIdentityExtension,
  decodeIdentityExtension,
  identityExtension,
  identitySubject,
  decodeIdentity,
  type SystemRole,
  type Identity,
  type IdentityClaims,
  type IdentityExtensionFields,
} from './identity.js';
export { verifyCertificate } from './verify.js';
export { toPem, fromPem } from './pem.js';
export { subjectPublicKey, spkiDer, type SubjectPublicKey, type PublicKeyType, type NamedCurve } from './spki.js';
export { generateKeyPair, publicKeyFromPem, fingerprint, spkiPin, type KeyPairPem } from './keys.js';
