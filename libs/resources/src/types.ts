/**
 * The validated, defaulted shape of each resource. Field names are Teleport's, so a resource
 * serialises back to YAML that Teleport users recognise.
 */

export interface Metadata {
  name: string;
  description?: string;
  labels?: Record<string, string>;
  /** RFC 3339 timestamp, normalised to `toISOString()` form. */
  expires?: string;
  revision?: string;
}

interface Envelope<K extends string, V extends string, S> {
  kind: K;
  version: V;
  metadata: Metadata;
  spec: S;
}

// ---- user v2 ----

export interface ExternalIdentity {
  connector_id: string;
  username: string;
  user_id?: string;
  samlSingleLogoutUrl?: string;
}

export interface UserSpec {
  roles: string[];
  traits: Record<string, string[]>;
  github_identities?: ExternalIdentity[];
  oidc_identities?: ExternalIdentity[];
  saml_identities?: ExternalIdentity[];
  /**
   * Who made the user. Set only by the auth service for SSO users (an SSO login refreshes
   * only users it made); dropped from what admins create, like Teleport's read-only fields.
   */
  created_by?: { connector?: { type: 'github' | 'oidc' | 'saml'; id: string; identity: string }; time?: string };
}
export type UserResource = Envelope<'user', 'v2', UserSpec>;

// ---- role v3 to v8 ----

/** Label selector: key → value or values; `'*'` is a wildcard and `^…$` a regular expression. */
export type LabelSelector = Record<string, string | string[]>;

export interface KubernetesResource {
  kind: string;
  namespace?: string;
  name: string;
  verbs: string[];
  /** Role v8 only. */
  api_group?: string;
}

export interface Rule {
  resources: string[];
  verbs: string[];
}

export interface RoleConditions {
  kubernetes_groups?: string[];
  kubernetes_labels?: LabelSelector;
  kubernetes_resources?: KubernetesResource[];
  kubernetes_users?: string[];
  rules?: Rule[];
  /**
   * Teleport fields of services Keyway does not have yet (logins, node_labels, app_labels,
   * db_labels, ...), stored as written and shown by `kwctl get`; nothing evaluates them yet.
   * The names are STORED_CONDITION_NAMES (./teleport-fields.ts).
   */
  [storedTeleportField: string]: unknown;
}

export interface RoleOptions {
  /** Go duration, normalised (`30h0m0s` → `30h`); defaults to 30h as in Teleport. */
  max_session_ttl: string;
  /** Teleport's: the most concurrent Kubernetes streams a user may hold (per proxy here); unset = no limit. */
  max_kubernetes_connections?: number;
  /** Teleport's locking mode for users of this role; strict wins over the cluster-wide mode. */
  lock?: 'best_effort' | 'strict';
  /** Options of services Keyway does not have yet (forward_agent, cert_format, ...), stored as written. */
  [storedTeleportOption: string]: unknown;
}

export interface RoleSpec {
  options: RoleOptions;
  allow: RoleConditions;
  deny: RoleConditions;
}
export type RoleVersion = 'v3' | 'v4' | 'v5' | 'v6' | 'v7' | 'v8';
export type RoleResource = Envelope<'role', RoleVersion, RoleSpec>;

// ---- token v2 ----

/** Teleport system roles a join token can grant that Keyway supports: agents and proxies. */
/** 'Scim' is Keyway's own: a SCIM bearer token, which joins nothing. */
export type TokenRole = 'Kube' | 'Proxy' | 'Scim';
export interface TokenSpec {
  roles: TokenRole[];
  join_method: 'token';
}
export type TokenResource = Envelope<'token', 'v2', TokenSpec>;

// ---- connectors ----

export interface TeamRolesMapping {
  organization: string;
  team: string;
  roles: string[];
}
export interface TeamLoginsMapping {
  organization: string;
  team: string;
  logins: string[];
  kubernetes_groups?: string[];
  kubernetes_users?: string[];
}
export interface GithubConnectorSpec {
  client_id: string;
  client_secret: string;
  redirect_url?: string;
  teams_to_roles?: TeamRolesMapping[];
  /** Teleport's older form: logins are role names; groups and users become traits. */
  teams_to_logins?: TeamLoginsMapping[];
  display?: string;
  endpoint_url?: string;
  api_endpoint_url?: string;
}
export type GithubConnectorResource = Envelope<'github', 'v3', GithubConnectorSpec>;

export interface ClaimMapping {
  claim: string;
  value: string;
  roles: string[];
}
export interface OidcConnectorSpec {
  issuer_url: string;
  client_id: string;
  client_secret?: string;
  /** Teleport accepts one URL or a list; Keyway always stores a list. */
  redirect_url: string[];
  claims_to_roles: ClaimMapping[];
  scope?: string[];
  prompt?: string;
  display?: string;
  provider?: string;
  username_claim?: string;
  acr_values?: string;
  /** A duration ("1h") or seconds. */
  max_age?: string | number;
  allow_unverified_email?: boolean;
}
export type OidcConnectorResource = Envelope<'oidc', 'v3', OidcConnectorSpec>;

export interface AttributeMapping {
  name: string;
  value: string;
  roles: string[];
}
export interface KeyPair {
  private_key: string;
  cert: string;
}
export interface SamlConnectorSpec {
  acs: string;
  attributes_to_roles: AttributeMapping[];
  entity_descriptor?: string;
  entity_descriptor_url?: string;
  issuer?: string;
  sso?: string;
  cert?: string;
  audience?: string;
  service_provider_issuer?: string;
  signing_key_pair?: KeyPair;
  assertion_key_pair?: KeyPair;
  allow_idp_initiated?: boolean;
  display?: string;
  provider?: string;
}
export type SamlConnectorResource = Envelope<'saml', 'v2', SamlConnectorSpec>;

// ---- kube_cluster v3 ----

export interface KubeClusterSpec {
  /** Base64-encoded kubeconfig, as Teleport stores it for dynamically registered clusters. */
  kubeconfig?: string;
}
export type KubeClusterResource = Envelope<'kube_cluster', 'v3', KubeClusterSpec>;

// ---- lock v2 ----

export interface LockTarget {
  user?: string;
  role?: string;
}
export interface LockSpec {
  target: LockTarget;
  message?: string;
  /** RFC 3339; the lock stops applying after it. */
  expires?: string;
  created_at?: string;
  created_by?: string;
}
export type LockResource = Envelope<'lock', 'v2', LockSpec>;

export type Resource =
  | UserResource
  | RoleResource
  | TokenResource
  | GithubConnectorResource
  | OidcConnectorResource
  | SamlConnectorResource
  | KubeClusterResource
  | LockResource;

/** The resource type of one kind: `ResourceOfKind<'role'>` is `RoleResource`. */
export type ResourceOfKind<K extends Resource['kind']> = Extract<Resource, { kind: K }>;
