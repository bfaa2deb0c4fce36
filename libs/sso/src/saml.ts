/**
 * The SAML connector driver (Keyway is the service provider), on @node-saml/node-saml: an
 * HTTP-Redirect AuthnRequest in `begin`, the HTTP-POST Response checked in `complete` — size,
 * RelayState, signature, audience, time window, InResponseTo, recipient, issuer, then replay
 * across auth replicas — and attributes_to_roles over the assertion's attributes.
 */
import { randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import { SAML, SamlStatusError, ValidateInResponseTo, type CacheProvider, type Profile, type SamlConfig } from '@node-saml/node-saml';
import { SsoLoginError, type ConnectorResource, type DriverOptions, type SsoDriver, type SsoIdentity } from './driver.js';
import { mapToRoles, toTraits, type ValueMapping } from './mapping.js';
import { ResponseTooLarge, readBounded } from './bounded-body.js';
import type { KeyPair } from '@keyway/resources';

export interface SamlDriverOptions extends DriverOptions {
  /**
   * Records that an assertion id was used and says whether it already had been (true: a
   * replay). Shared by every auth replica; it may forget the id after `notOnOrAfter`, when the
   * assertion is refused as expired anyway.
   */
  assertionSeen(id: string, notOnOrAfter: Date): Promise<boolean>;
  /** How long metadata fetched from entity_descriptor_url is reused (default 5 minutes). */
  metadataCacheMs?: number;
}

/** Base64 SAMLResponse bound, checked before anything decodes or parses it. */
export const MAX_SAML_RESPONSE_LENGTH = 512 * 1024;
/** IdP metadata bound, inline or fetched. */
export const MAX_METADATA_BYTES = 1024 * 1024;
const CLOCK_SKEW_MS = 60_000;
/** Login requests live 10 minutes in auth; an AuthnRequest id is no good for longer. */
const REQUEST_ID_LIFETIME_MS = 10 * 60 * 1000;
const DEFAULT_TIMEOUT_MS = 10_000;
const MD_NS = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';
const REDIRECT_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';

/** The saml v2 spec fields the driver reads (validated when stored, read defensively here). */
interface SamlSpec {
  acs?: string;
  entity_descriptor?: string;
  entity_descriptor_url?: string;
  issuer?: string;
  sso?: string;
  cert?: string;
  audience?: string;
  service_provider_issuer?: string;
  attributes_to_roles: ValueMapping[];
  signing_key_pair?: KeyPair;
  assertion_key_pair?: KeyPair;
  allow_idp_initiated: boolean;
}

/** What the driver trusts about the IdP. */
interface IdpConfig {
  entityId?: string;
  ssoUrl: string;
  certs: string[];
}

export function createSamlDriver(o: SamlDriverOptions): SsoDriver {
  const fetchImpl = o.fetch ?? fetch;
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const now = o.now ?? (() => new Date());
  const cacheMs = o.metadataCacheMs ?? 5 * 60 * 1000;
  const metadataCache = new Map<string, { until: number; md: Promise<IdpConfig> }>();

  async function fetchMetadata(url: string, connector: string): Promise<IdpConfig> {
    const t = now().getTime();
    const hit = metadataCache.get(url);
    if (hit && hit.until > t) return hit.md;
    const md = (async () => parseIdpMetadata(await fetchBounded(fetchImpl, url, timeoutMs, connector), connector))();
    metadataCache.set(url, { until: t + cacheMs, md });
    // A failure is not kept: the next login tries again.
    md.catch(() => metadataCache.get(url)?.md === md && metadataCache.delete(url));
    return md;
  }

  async function idpConfig(connector: ConnectorResource, spec: SamlSpec): Promise<IdpConfig> {
    const name = connector.metadata.name;
    let md: Partial<IdpConfig> = {};
    if (spec.entity_descriptor) {
      if (Buffer.byteLength(spec.entity_descriptor) > MAX_METADATA_BYTES) throw new SsoLoginError('metadata invalid', `SAML connector ${name}: entity_descriptor is larger than ${MAX_METADATA_BYTES} bytes`);
      md = parseIdpMetadata(spec.entity_descriptor, name);
    } else if (spec.entity_descriptor_url) {
      md = await fetchMetadata(spec.entity_descriptor_url, name);
    }
    // Fields set in the connector win over the metadata's; certificates from both are trusted.
    const ssoUrl = spec.sso ?? md.ssoUrl;
    const certs = [...(md.certs ?? []), ...(spec.cert ? [spec.cert] : [])];
    const entityId = spec.issuer ?? md.entityId;
    if (!ssoUrl || certs.length === 0) throw new SsoLoginError('metadata invalid', `SAML connector ${name}: no HTTP-Redirect SingleSignOnService or no signing certificate for the identity provider`);
    return { ssoUrl, certs, ...(entityId ? { entityId } : {}) };
  }

  function samlFor(spec: SamlSpec, idp: IdpConfig, acs: string, extra: Partial<SamlConfig>): SAML {
    const spIssuer = spec.service_provider_issuer ?? spec.acs ?? acs;
    return new SAML({
      callbackUrl: acs,
      entryPoint: idp.ssoUrl,
      issuer: spIssuer,
      audience: spec.audience ?? spIssuer,
      idpCert: idp.certs,
      // Either the Response or the assertion must carry a valid signature (node-saml refuses
      // a response with neither); requiring both would refuse IdPs that sign only one.
      wantAssertionsSigned: false,
      wantAuthnResponseSigned: false,
      acceptedClockSkewMs: CLOCK_SKEW_MS,
      requestIdExpirationPeriodMs: REQUEST_ID_LIFETIME_MS,
      identifierFormat: null,
      disableRequestedAuthnContext: true,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
      ...(spec.signing_key_pair ? { privateKey: spec.signing_key_pair.private_key, publicCert: spec.signing_key_pair.cert } : {}),
      ...(spec.assertion_key_pair ? { decryptionPvk: spec.assertion_key_pair.private_key } : {}),
      ...extra,
    });
  }

  return {
    kind: 'saml',

    async begin(input) {
      const spec = readSpec(input.connector);
      const idp = await idpConfig(input.connector, spec);
      const authnRequestId = `_${randomBytes(20).toString('hex')}`;
      const saml = samlFor(spec, idp, input.callbackUrl, { generateUniqueId: () => authnRequestId, validateInResponseTo: ValidateInResponseTo.never });
      const url = await saml.getAuthorizeUrlAsync(input.requestId, undefined, {});
      return { url, keep: { authnRequestId } };
    },

    async complete(input): Promise<SsoIdentity> {
      const name = input.connector.metadata.name;
      const spec = readSpec(input.connector);
      const samlResponse = input.params['SAMLResponse'];
      if (typeof samlResponse !== 'string' || samlResponse.length === 0) throw new SsoLoginError('response missing', `SAML connector ${name}: the identity provider posted no SAMLResponse`);
      if (samlResponse.length > MAX_SAML_RESPONSE_LENGTH) throw new SsoLoginError('response too large', `SAML connector ${name}: SAMLResponse is larger than ${MAX_SAML_RESPONSE_LENGTH} bytes`);
      if (!sameText(input.params['RelayState'] ?? '', input.requestId)) throw new SsoLoginError('relay state mismatch', `SAML connector ${name}: RelayState is not this login request's`);
      const requestId = input.keep['authnRequestId'];
      if (!requestId) throw new SsoLoginError('request id missing', `SAML connector ${name}: the login request has no AuthnRequest id`);

      const idp = await idpConfig(input.connector, spec);
      // node-saml checks InResponseTo against its cache; this login's cache holds its one id.
      const issuedAt = now().toISOString();
      const cacheProvider: CacheProvider = {
        saveAsync: (_key, value) => Promise.resolve({ value, createdAt: Date.now() }),
        getAsync: (key) => Promise.resolve(key === requestId ? issuedAt : null),
        removeAsync: () => Promise.resolve(null),
      };
      const saml = samlFor(spec, idp, input.callbackUrl, {
        cacheProvider,
        validateInResponseTo: spec.allow_idp_initiated ? ValidateInResponseTo.ifPresent : ValidateInResponseTo.always,
      });
      let profile: Profile | null;
      try {
        ({ profile } = await saml.validatePostResponseAsync({ SAMLResponse: samlResponse }));
      } catch (err) {
        throw refusal(name, err);
      }
      if (!profile) throw new SsoLoginError('response malformed', `SAML connector ${name}: the response is not a login response`);

      // What follows reads the verified assertion only (node-saml hands back the signed one).
      const assertion = verifiedAssertion(profile);
      const assertionId = text(assertion?.$?.['ID']);
      if (!assertion || !assertionId) throw new SsoLoginError('response malformed', `SAML connector ${name}: the assertion has no ID`);
      const confirmations = subjectConfirmationData(assertion);
      const answered = confirmations.map((c) => text(c['InResponseTo'])).filter((v): v is string => v !== undefined);
      if (answered.some((v) => v !== requestId)) throw new SsoLoginError('unsolicited response', `SAML connector ${name}: the assertion answers another login request`);
      if (!spec.allow_idp_initiated && answered.length === 0) throw new SsoLoginError('unsolicited response', `SAML connector ${name}: the assertion answers no login request and allow_idp_initiated is off`);
      const recipients = confirmations.map((c) => text(c['Recipient'])).filter((v): v is string => v !== undefined);
      if (recipients.some((r) => r !== input.callbackUrl)) throw new SsoLoginError('recipient mismatch', `SAML connector ${name}: the assertion is for another ACS`);
      if (idp.entityId && profile.issuer !== idp.entityId) throw new SsoLoginError('issuer mismatch', `SAML connector ${name}: the assertion is not from ${idp.entityId}`);
      const expiry = notOnOrAfter(assertion, confirmations);
      if (!expiry) throw new SsoLoginError('assertion expired', `SAML connector ${name}: the assertion has no NotOnOrAfter, so a replay could never be ruled out`);

      if (await o.assertionSeen(assertionId, expiry)) throw new SsoLoginError('assertion replayed', `SAML connector ${name}: this assertion was already used to log in`);

      const nameId = typeof profile.nameID === 'string' ? profile.nameID : '';
      if (!nameId) throw new SsoLoginError('name id missing', `SAML connector ${name}: the assertion has no NameID`);
      const attributes = stringAttributes(profile['attributes']);
      const roles = mapToRoles(spec.attributes_to_roles, attributes);
      if (roles.length === 0) {
        const seen = Object.keys(attributes);
        throw new SsoLoginError('no role matched', `SAML connector ${name}: attributes_to_roles matched none of the attributes received (${seen.length ? seen.join(', ') : 'none'})`, { attributes: seen });
      }
      return { username: nameId, roles, traits: toTraits(attributes), subject: nameId, received: attributes, warnings: [] };
    },
  };
}

/** node-saml's errors carry no code; their messages are stable within a major version. */
function refusal(connector: string, err: unknown): SsoLoginError {
  const msg = err instanceof Error ? err.message : String(err);
  const say = (reason: string, what: string): SsoLoginError => new SsoLoginError(reason, `SAML connector ${connector}: ${what}`);
  if (err instanceof SamlStatusError) return say('provider refused', 'the identity provider answered with an error status');
  if (/signature|Cannot obtain assertion/i.test(msg)) return say('signature invalid', 'the response has no valid signature from the identity provider');
  if (/audience/i.test(msg)) return say('audience mismatch', 'the assertion is for another audience');
  if (/expired|subject confirmation/i.test(msg)) return say('assertion expired', 'the assertion is outside its validity window');
  if (/not yet valid/i.test(msg)) return say('assertion not yet valid', 'the assertion is not valid yet');
  if (/InResponseTo is missing/i.test(msg)) return say('unsolicited response', 'the response answers no login request and allow_idp_initiated is off');
  if (/InResponseTo/i.test(msg)) return say('unsolicited response', 'the response answers another login request');
  if (/decrypt|EncryptedAssertion/i.test(msg)) return say('assertion undecryptable', 'the encrypted assertion could not be decrypted with assertion_key_pair');
  return say('response malformed', 'the response could not be read');
}

function readSpec(connector: ConnectorResource): SamlSpec {
  const s = connector.spec;
  const str = (k: string): string | undefined => (typeof s[k] === 'string' && s[k] !== '' ? s[k] : undefined);
  const pair = (k: string): KeyPair | undefined => {
    const v = s[k] as Partial<KeyPair> | undefined;
    return v && typeof v.private_key === 'string' && typeof v.cert === 'string' ? { private_key: v.private_key, cert: v.cert } : undefined;
  };
  const mappings = Array.isArray(s['attributes_to_roles']) ? (s['attributes_to_roles'] as ValueMapping[]) : [];
  return {
    ...Object.fromEntries(
      (['acs', 'entity_descriptor', 'entity_descriptor_url', 'issuer', 'sso', 'cert', 'audience', 'service_provider_issuer'] as const).flatMap((k) => {
        const v = str(k);
        return v === undefined ? [] : [[k, v]];
      }),
    ),
    attributes_to_roles: mappings.filter((m) => typeof m?.name === 'string' && typeof m.value === 'string' && Array.isArray(m.roles)),
    ...(pair('signing_key_pair') ? { signing_key_pair: pair('signing_key_pair') } : {}),
    ...(pair('assertion_key_pair') ? { assertion_key_pair: pair('assertion_key_pair') } : {}),
    allow_idp_initiated: s['allow_idp_initiated'] === true,
  };
}

/** IdP metadata: entityID, the HTTP-Redirect SSO location, signing certificates. */
export function parseIdpMetadata(xml: string, connector: string): IdpConfig {
  const bad = (what: string): SsoLoginError => new SsoLoginError('metadata invalid', `SAML connector ${connector}: ${what}`);
  let doc: Document;
  try {
    const fail = (m: unknown): never => {
      throw new Error(String(m));
    };
    doc = new DOMParser({ errorHandler: { warning: () => undefined, error: fail, fatalError: fail } }).parseFromString(xml, 'text/xml');
  } catch {
    throw bad('the identity provider metadata is not well-formed XML');
  }
  // No document type: entity declarations are how XML bombs and external entities get in.
  if (!doc?.documentElement || doc.doctype) throw bad('the identity provider metadata is not a plain XML document');
  const entities = children(doc.documentElement, MD_NS, 'EntityDescriptor');
  if (isElement(doc.documentElement, MD_NS, 'EntityDescriptor')) entities.unshift(doc.documentElement);
  const entity = entities.find((e) => children(e, MD_NS, 'IDPSSODescriptor').length > 0);
  const descriptor = entity && children(entity, MD_NS, 'IDPSSODescriptor')[0];
  if (!entity || !descriptor) throw bad('the metadata has no IDPSSODescriptor');
  const sso = children(descriptor, MD_NS, 'SingleSignOnService').find((e) => e.getAttribute('Binding') === REDIRECT_BINDING)?.getAttribute('Location') ?? undefined;
  const certs: string[] = [];
  for (const kd of children(descriptor, MD_NS, 'KeyDescriptor')) {
    const use = kd.getAttribute('use');
    if (use && use !== 'signing') continue;
    for (const info of children(kd, DSIG_NS, 'KeyInfo'))
      for (const data of children(info, DSIG_NS, 'X509Data'))
        for (const c of children(data, DSIG_NS, 'X509Certificate')) {
          const b64 = (c.textContent ?? '').replace(/\s+/g, '');
          const pem = `-----BEGIN CERTIFICATE-----\n${(b64.match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`;
          try {
            new X509Certificate(pem);
          } catch {
            throw bad('a signing certificate in the metadata cannot be read');
          }
          certs.push(pem);
        }
  }
  const entityId = entity.getAttribute('entityID') || undefined;
  return { certs, ...(sso ? { ssoUrl: sso } : {}), ...(entityId ? { entityId } : {}) } as IdpConfig;
}

function children(parent: Element, ns: string, local: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) if (n.nodeType === 1 && isElement(n as Element, ns, local)) out.push(n as Element);
  return out;
}

function isElement(e: Element, ns: string, local: string): boolean {
  return e.namespaceURI === ns && e.localName === local;
}

async function fetchBounded(fetchImpl: typeof fetch, url: string, timeoutMs: number, connector: string): Promise<string> {
  const unreachable = (what: string): SsoLoginError => new SsoLoginError('metadata unreachable', `SAML connector ${connector}: entity_descriptor_url ${what}`);
  let res: Response;
  try {
    res = await fetchImpl(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' } });
  } catch {
    throw unreachable('could not be fetched');
  }
  if (!res.ok || !res.body) throw unreachable(`answered HTTP ${res.status}`);
  try {
    return (await readBounded(res, MAX_METADATA_BYTES)).toString('utf8');
  } catch (err) {
    throw unreachable(err instanceof ResponseTooLarge ? `answered more than ${MAX_METADATA_BYTES} bytes` : 'could not be read');
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// node-saml's parsed assertion is xml2js output: elements are arrays of objects, attributes in `$`.
type XmlJs = { $?: Record<string, unknown>; _?: unknown; [child: string]: unknown };

function verifiedAssertion(profile: Profile): XmlJs | undefined {
  const parsed = profile.getAssertion?.() as { Assertion?: XmlJs } | undefined;
  return parsed?.Assertion;
}

function first(node: XmlJs | undefined, child: string): XmlJs[] {
  const v = node?.[child];
  return Array.isArray(v) ? (v as XmlJs[]) : [];
}

function subjectConfirmationData(assertion: XmlJs): Record<string, unknown>[] {
  return first(assertion, 'Subject')
    .flatMap((s) => first(s, 'SubjectConfirmation'))
    .flatMap((c) => first(c, 'SubjectConfirmationData'))
    .map((d) => d.$ ?? {});
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The earliest NotOnOrAfter of the conditions and the subject confirmations. */
function notOnOrAfter(assertion: XmlJs, confirmations: Record<string, unknown>[]): Date | undefined {
  const times = [...first(assertion, 'Conditions').map((c) => c.$?.['NotOnOrAfter']), ...confirmations.map((c) => c['NotOnOrAfter'])]
    .map((v) => (typeof v === 'string' ? Date.parse(v) : NaN))
    .filter((t) => Number.isFinite(t));
  return times.length ? new Date(Math.min(...times)) : undefined;
}

/** Attribute values as string lists; structured values (XML children) are left out. */
function stringAttributes(raw: unknown): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!raw || typeof raw !== 'object') return out;
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const values = (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
    if (values.length) out[k] = values;
  }
  return out;
}
