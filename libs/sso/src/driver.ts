/**
 * What every SSO connector kind (github, oidc, saml) does, in two steps: `begin` sends the
 * browser to the identity provider, `complete` checks what the provider sent back and says who
 * the person is and what the connector's mapping grants them. The auth service keeps what
 * `begin` returned (`keep`) with the login request, and hands it back to `complete` once:
 * a request is consumed by its callback, so a replayed callback finds nothing.
 */

/** A stored connector resource of the driver's kind (kind, version, metadata, spec). */
export interface ConnectorResource {
  kind: 'github' | 'oidc' | 'saml';
  version: string;
  metadata: { name: string; [k: string]: unknown };
  spec: Record<string, unknown>;
}

export interface BeginInput {
  connector: ConnectorResource;
  /** Opaque, unguessable id of this login request: OAuth `state`, SAML `RelayState`. */
  requestId: string;
  /** Where the provider must send the browser back (the connector's redirect_url / acs). */
  callbackUrl: string;
}

export interface BeginResult {
  /** Where to send the browser. */
  url: string;
  /** Secrets of this request only (PKCE verifier, nonce, SAML request id), for `complete`. */
  keep: Record<string, string>;
}

export interface CompleteInput {
  connector: ConnectorResource;
  requestId: string;
  callbackUrl: string;
  keep: Record<string, string>;
  /**
   * What the provider sent to the callback: the query of a GET (OAuth `code`, `state`,
   * `error`) or the form fields of a POST (SAML `SAMLResponse`, `RelayState`).
   */
  params: Record<string, string>;
}

/** Who logged in and what the mapping grants. */
export interface SsoIdentity {
  /** The Keyway user name (GitHub login, OIDC username_claim or email, SAML NameID). */
  username: string;
  /** Roles from teams_to_roles / claims_to_roles / attributes_to_roles (no duplicates). */
  roles: string[];
  /**
   * Traits for role templates: `external.*` values without the prefix (every claim or
   * attribute; for GitHub `github_teams`, `logins`, `kubernetes_groups`, `kubernetes_users`,
   * `username`).
   */
  traits: Record<string, string[]>;
  /** The provider's own id for the person (OIDC `sub`, GitHub user id, SAML NameID). */
  subject: string;
  /** Everything received, for `kwctl sso test` (claims, attributes, teams). */
  received: Record<string, unknown>;
  /** Said to the operator (audit, `kwctl sso test`), e.g. the teams_to_logins deprecation. */
  warnings: string[];
  /**
   * What lets `recheck` ask the provider again at certificate renewal (OIDC refresh token,
   * GitHub access token). A secret: the auth service stores it sealed and never shows it.
   */
  renewal?: Record<string, string>;
}

export interface RecheckInput {
  connector: ConnectorResource;
  /** The provider's id for the person at login: a recheck answering for someone else fails. */
  subject: string;
  /** The `renewal` of the login (or of the last recheck). */
  renewal: Record<string, string>;
}

/**
 * A login the provider or the mapping refused. `reason` is short and names the check
 * ("no team matched", "signature invalid", "state mismatch"); it goes to the audit event and to
 * the page the browser ends on, so it must not carry secrets or raw tokens.
 */
export class SsoLoginError extends Error {
  override readonly name = 'SsoLoginError';
  constructor(
    readonly reason: string,
    message: string,
    readonly data: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface SsoDriver {
  readonly kind: ConnectorResource['kind'];
  begin(input: BeginInput): Promise<BeginResult>;
  /** Throws SsoLoginError for anything the provider, the checks or the mapping refuse. */
  complete(input: CompleteInput): Promise<SsoIdentity>;
  /**
   * Asks the provider again who the person is and maps them anew, with no browser (certificate
   * renewal). Throws SsoLoginError when the provider no longer vouches for them or the mapping
   * grants no role. Kinds that cannot (SAML has no back channel) leave it out.
   */
  recheck?(input: RecheckInput): Promise<SsoIdentity>;
}

/** How drivers reach the network: injected so tests can point them at a test provider. */
export interface DriverOptions {
  /** fetch for provider endpoints (default: global fetch), with its own timeout. */
  fetch?: typeof fetch;
  /** Milliseconds per provider request (default 10 s). */
  timeoutMs?: number;
  now?: () => Date;
}
