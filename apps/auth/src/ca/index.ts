export {
  CA_VALIDITY_YEARS,
  CLOCK_SKEW_MS,
  CertSigner,
  caOrganization,
  createCertAuthority,
  type CertAuthorityPem,
  type CertAuthorityType,
  type SignHostCertificateRequest,
  type SignUserCertificateRequest,
  type SignedCertificate,
} from './authority.js';
export {
  CaKeyDecryptError,
  DEFAULT_SCRYPT_PARAMS,
  KEYSTORE_ENVELOPE_VERSION,
  decryptCaKey,
  encryptCaKey,
  generateCaKeySecret,
  isEncryptedCaKey,
  type CaKeyDecryptFailure,
  type ScryptParams,
} from './keystore.js';
