/**
 * The Keyway identity and its certificate encoding: Subject CN = username, one O per role,
 * NotAfter = expiry, and everything else in one non-critical extension (layout in README).
 */
import { BadParameterError, KeywayError } from '@keyway/errors';
import * as der from './der.js';
import { OID, decodeName, extension, parseCertificate, subjectName, type CertificateInput } from './x509.js';

/**
 * Keyway's OID arc. PLACEHOLDER: private enterprise number 65536 is not registered to Keyway
 * (see README, "OID arc"); replace with a registered PEN before 1.0. Every arc stays below
 * 2^31 so Go's x509 parser (kubectl, client-go) accepts the certificates.
 */
export const KEYWAY_OID_ARC = '1.3.6.1.4.1.65536.1';
export const IDENTITY_EXTENSION_OID = `${KEYWAY_OID_ARC}.1`;
/** Bumped only for incompatible changes; new optional fields just take new tags. */
export const IDENTITY_EXTENSION_VERSION = 1;

export type SystemRole = 'Admin' | 'Auth' | 'Proxy' | 'Kube';
export const SYSTEM_ROLES: readonly SystemRole[] = ['Admin', 'Auth', 'Proxy', 'Kube'];

export interface Identity {
  /** Subject CN (for host certs: host id). */
  username: string;
  /** Subject O, one attribute per role; for host certs the system role(s). */
  roles: string[];
  traits: Record<string, string[]>;
  /** Route: the target Kubernetes cluster. */
  kubernetesCluster?: string;
  kubernetesUsers: string[];
  kubernetesGroups: string[];
  /** Keyway cluster name. */
  clusterName: string;
  loginIp?: string;
  mfaVerified: boolean;
  /** Empty for user certificates. */
  systemRoles: SystemRole[];
  /** NotAfter (decoded); the TTL for issuing is passed separately. */
  expires: Date;
  /** NotBefore, when decoded. */
  issuedAt?: Date;
  /** Serial number as uppercase hex, when decoded. */
  serialNumber?: string;
}

/** What a signer puts into a certificate: the identity without validity and serial. */
export type IdentityClaims = Omit<Identity, 'expires' | 'issuedAt' | 'serialNumber'>;

/** The part of the identity carried by the extension (everything but CN and O). */
export type IdentityExtensionFields = Omit<IdentityClaims, 'username' | 'roles'>;

// Context tags of the KeywayIdentity SEQUENCE; README documents them. Never reuse a number.
const F = {
  version: 0,
  clusterName: 1,
  traits: 2,
  kubernetesCluster: 3,
  kubernetesUsers: 4,
  kubernetesGroups: 5,
  loginIp: 6,
  mfaVerified: 7,
  systemRoles: 8,
} as const;

const P = der.contextPrimitiveTag;
const C = der.contextConstructedTag;
const VERSION_FIELD = der.tlv(P(F.version), Buffer.from([IDENTITY_EXTENSION_VERSION]));
const MFA_FIELD = der.tlv(P(F.mfaVerified), Buffer.from([0xff]));

// Names end up as Kubernetes users/groups, HTTP impersonation headers and log lines, where
// control characters would allow injection; refuse them when signing.
const CONTROL = /[\u0000-\u001f\u007f]/;

function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '' || CONTROL.test(value)) {
    throw new BadParameterError(`${what} must be a non-empty string without control characters`, {
      field: what,
      value: typeof value === 'string' ? value : typeof value,
    });
  }
  return value;
}

function checkList(values: unknown, what: string): string[] {
  if (!Array.isArray(values)) throw new BadParameterError(`${what} must be a list of strings`, { field: what });
  for (const v of values) checkName(v, what);
  return values as string[];
}

function stringList(values: readonly string[]): Buffer[] {
  return values.map((v) => der.utf8String(v));
}

/** Encodes the extension value (the DER KeywayIdentity SEQUENCE). */
export function encodeIdentityExtension(id: IdentityExtensionFields): Buffer {
  const fields: Buffer[] = [VERSION_FIELD, der.utf8String(checkName(id.clusterName, 'clusterName'), P(F.clusterName))];
  const traitNames = Object.keys(id.traits ?? {});
  if (traitNames.length > 0) {
    const traits: Buffer[] = [];
    for (const name of traitNames) {
      const values = id.traits[name];
      // Trait values come from SSO claims and may hold any text, so only the type is checked.
      if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) {
        throw new BadParameterError(`trait "${name}" must be a list of strings`, { trait: name });
      }
      traits.push(der.sequence(der.utf8String(name), der.sequenceOf(stringList(values))));
    }
    fields.push(der.sequenceOf(traits, C(F.traits)));
  }
  if (id.kubernetesCluster !== undefined && id.kubernetesCluster !== '') {
    fields.push(der.utf8String(checkName(id.kubernetesCluster, 'kubernetesCluster'), P(F.kubernetesCluster)));
  }
  const users = checkList(id.kubernetesUsers ?? [], 'kubernetesUsers');
  if (users.length > 0) fields.push(der.sequenceOf(stringList(users), C(F.kubernetesUsers)));
  const groups = checkList(id.kubernetesGroups ?? [], 'kubernetesGroups');
  if (groups.length > 0) fields.push(der.sequenceOf(stringList(groups), C(F.kubernetesGroups)));
  if (id.loginIp !== undefined && id.loginIp !== '') {
    fields.push(der.utf8String(checkName(id.loginIp, 'loginIp'), P(F.loginIp)));
  }
  // BOOLEAN DEFAULT FALSE: DER omits false.
  if (id.mfaVerified) fields.push(MFA_FIELD);
  const systemRoles = checkList(id.systemRoles ?? [], 'systemRoles');
  if (systemRoles.length > 0) {
    for (const r of systemRoles) {
      if (!SYSTEM_ROLES.includes(r as SystemRole)) {
        throw new BadParameterError(`unknown system role "${r}"`, { role: r, known: SYSTEM_ROLES });
      }
    }
    fields.push(der.sequenceOf(stringList(systemRoles), C(F.systemRoles)));
  }
  return der.sequenceOf(fields);
}

/** The identity extension as an encoded X.509 Extension (non-critical). */
export function identityExtension(id: IdentityExtensionFields): Buffer {
  return extension(IDENTITY_EXTENSION_OID, false, encodeIdentityExtension(id));
}

/** The identity's Subject Name: one O per role, then CN = username. */
export function identitySubject(id: Pick<IdentityClaims, 'username' | 'roles'>): Buffer {
  return subjectName(checkName(id.username, 'username'), checkList(id.roles ?? [], 'roles'));
}

function readStringList(buf: Uint8Array, t: der.Tlv): string[] {
  return der.children(buf, t).map((s) => der.readString(buf, der.expect(s, der.Tag.UTF8_STRING, 'UTF8String')));
}

/** The string content of an IMPLICIT-tagged UTF8String field. */
function readUtf8(buf: Uint8Array, t: der.Tlv): string {
  return der.content(buf, t).toString('utf8');
}

/** Decodes the extension value. Unknown context tags are skipped for forward compatibility. */
export function decodeIdentityExtension(value: Uint8Array): IdentityExtensionFields {
  const seq = der.expect(der.readAll(value), der.Tag.SEQUENCE, 'KeywayIdentity');
  const out: IdentityExtensionFields = {
    clusterName: '',
    traits: {},
    kubernetesUsers: [],
    kubernetesGroups: [],
    mfaVerified: false,
    systemRoles: [],
  };
  let version: number | undefined;
  let last = -1;
  for (const t of der.children(value, seq)) {
    const n = t.tag & 0x1f;
    if ((t.tag & 0xc0) !== 0x80) throw new BadParameterError('malformed identity extension: untagged field');
    if (n <= last) throw new BadParameterError('malformed identity extension: fields out of order or repeated');
    last = n;
    switch (n) {
      case F.version:
        version = der.readSmallInteger(value, t);
        if (version !== IDENTITY_EXTENSION_VERSION) {
          throw new BadParameterError(`unsupported identity extension version ${version}`, { version });
        }
        break;
      case F.clusterName:
        out.clusterName = readUtf8(value, t);
        break;
      case F.traits:
        for (const trait of der.children(value, t)) {
          const [name, values] = der.children(value, der.expect(trait, der.Tag.SEQUENCE, 'trait'));
          const key = der.readString(value, der.expect(name, der.Tag.UTF8_STRING, 'trait name'));
          if (Object.prototype.hasOwnProperty.call(out.traits, key)) {
            throw new BadParameterError(`malformed identity extension: trait "${key}" repeated`);
          }
          // defineProperty so a trait named __proto__ stays data instead of touching the prototype.
          Object.defineProperty(out.traits, key, {
            value: readStringList(value, der.expect(values, der.Tag.SEQUENCE, 'trait values')),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        break;
      case F.kubernetesCluster:
        out.kubernetesCluster = readUtf8(value, t);
        break;
      case F.kubernetesUsers:
        out.kubernetesUsers = readStringList(value, t);
        break;
      case F.kubernetesGroups:
        out.kubernetesGroups = readStringList(value, t);
        break;
      case F.loginIp:
        out.loginIp = readUtf8(value, t);
        break;
      case F.mfaVerified:
        out.mfaVerified = der.readBoolean(value, t);
        break;
      case F.systemRoles:
        out.systemRoles = readStringList(value, t).map((r) => {
          if (!SYSTEM_ROLES.includes(r as SystemRole)) {
            throw new BadParameterError(`unknown system role "${r}" in certificate`, { role: r });
          }
          return r as SystemRole;
        });
        break;
      default:
        break;
    }
  }
  if (version === undefined) throw new BadParameterError('malformed identity extension: no version');
  if (out.clusterName === '') throw new BadParameterError('malformed identity extension: no cluster name');
  return out;
}

/**
 * Reads the identity from a certificate without checking who signed it: callers that trust
 * the result must use verifyCertificate. Throws BadParameterError on malformed input.
 */
export function decodeIdentity(cert: CertificateInput): Identity {
  try {
    const p = parseCertificate(cert);
    let username: string | undefined;
    const roles: string[] = [];
    for (const a of decodeName(p.subject)) {
      if (a.oid === OID.commonName) {
        if (username !== undefined) throw new BadParameterError('certificate subject has more than one common name');
        username = a.value;
      } else if (a.oid === OID.organization) {
        roles.push(a.value);
      }
    }
    if (!username) throw new BadParameterError('certificate subject has no common name');
    const ext = p.extensions.find((e) => e.oid === IDENTITY_EXTENSION_OID);
    if (!ext) {
      throw new BadParameterError('certificate carries no keyway identity extension', { oid: IDENTITY_EXTENSION_OID });
    }
    return {
      username,
      roles,
      ...decodeIdentityExtension(ext.value),
      expires: p.notAfter,
      issuedAt: p.notBefore,
      serialNumber: p.serialNumber,
    };
  } catch (err) {
    if (err instanceof KeywayError) throw err;
    throw new BadParameterError(`malformed certificate: ${(err as Error).message}`, {}, { cause: err });
  }
}
