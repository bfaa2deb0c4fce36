import type { ResourceKind } from './kinds.js';

/**
 * Teleport fields Keyway knows but does not support yet.
 *
 * A value that changes nothing (empty, or Teleport's own default, as `tctl get` prints it) is
 * accepted and dropped, so exported YAML loads; any other value is an error that names the
 * field, because silently ignoring a permission or a restriction would be worse than refusing.
 */
export interface TeleportFieldRule {
  /** Dotted path; `*` matches any array index or map key. */
  path: string;
  /** Values that change nothing; defaults to "empty" (null, '', [], {} all the way down). */
  inert?: (value: unknown) => boolean;
  /** What the field is for in Teleport, shown in the error. */
  note?: string;
}

export function isEmptyDeep(v: unknown): boolean {
  if (v === null || v === undefined || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.values(v as Record<string, unknown>).every(isEmptyDeep);
  return false;
}

const oneOf =
  (...values: unknown[]) =>
  (v: unknown): boolean =>
    isEmptyDeep(v) || values.some((x) => x === v || (typeof x === 'string' && typeof v === 'string' && x === v.toLowerCase()));

const FALSE = oneOf(false, 'false', 'no', 'off');
const TRUE = oneOf(true, 'true', 'yes', 'on');
const ZERO = oneOf(0, '0', '0s');
const ZERO_DURATION = oneOf(0, '0', '0s', 'never');

/** `{a: x, b: y}` whose every present field is one of the allowed values. */
const subsetOf =
  (allowed: Record<string, (v: unknown) => boolean>) =>
  (v: unknown): boolean => {
    if (isEmptyDeep(v)) return true;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
    return Object.entries(v).every(([k, x]) => allowed[k]?.(x) ?? false);
  };

const sameSet =
  (...values: string[]) =>
  (v: unknown): boolean =>
    isEmptyDeep(v) ||
    (Array.isArray(v) && v.length === values.length && values.every((x) => v.includes(x)));

const disabledMfa = (v: unknown): boolean =>
  isEmptyDeep(v) || (typeof v === 'object' && v !== null && !Array.isArray(v) && (v as { enabled?: unknown }).enabled !== true);

const SSH = 'SSH access';
const APPS = 'application access';
const DB = 'database access';
const DESKTOP = 'Windows desktop access';
const CLOUD = 'cloud provider access';
const REQUESTS = 'access requests';
const MODERATION = 'moderated sessions';

/**
 * Fields of a role's allow/deny block for services and features Keyway does not have yet. They
 * are stored as written and shown by `kwctl get` (so a Teleport role moves over unchanged), and
 * creating a role that sets one returns a note: it takes effect when Keyway has the service.
 * They cannot widen Kubernetes access, which is all Keyway serves today.
 */
const ROLE_STORED_CONDITION_FIELDS: readonly TeleportFieldRule[] = [
  { path: 'logins', note: SSH },
  { path: 'node_labels', note: SSH },
  { path: 'node_labels_expression', note: SSH },
  { path: 'host_groups', note: SSH },
  { path: 'host_sudoers', note: SSH },
  { path: 'windows_desktop_logins', note: DESKTOP },
  { path: 'windows_desktop_labels', note: DESKTOP },
  { path: 'windows_desktop_labels_expression', note: DESKTOP },
  { path: 'desktop_groups', note: DESKTOP },
  { path: 'app_labels', note: APPS },
  { path: 'app_labels_expression', note: APPS },
  { path: 'db_labels', note: DB },
  { path: 'db_labels_expression', note: DB },
  { path: 'db_service_labels', note: DB },
  { path: 'db_service_labels_expression', note: DB },
  { path: 'db_names', note: DB },
  { path: 'db_users', note: DB },
  { path: 'db_roles', note: DB },
  { path: 'db_permissions', note: DB },
  { path: 'aws_role_arns', note: CLOUD },
  { path: 'azure_identities', note: CLOUD },
  { path: 'gcp_service_accounts', note: CLOUD },
  { path: 'account_assignments', note: CLOUD },
  { path: 'cluster_labels', note: 'trusted clusters' },
  { path: 'cluster_labels_expression', note: 'trusted clusters' },
  { path: 'group_labels', note: 'Okta user groups' },
  { path: 'group_labels_expression', note: 'Okta user groups' },
  { path: 'request', note: REQUESTS },
  { path: 'review_requests', note: REQUESTS },
  { path: 'spiffe', note: 'workload identity' },
  { path: 'workload_identity_labels', note: 'workload identity' },
  { path: 'workload_identity_labels_expression', note: 'workload identity' },
  { path: 'github_permissions', note: 'git server access' },
  { path: 'mcp', note: 'MCP server access' },
];

/**
 * Fields of a role's allow/deny block that would change Kubernetes access (or who may act as
 * whom) if Keyway stored them without applying them: refused unless their value changes nothing.
 */
const ROLE_CONDITION_FIELDS: readonly TeleportFieldRule[] = [
  { path: 'kubernetes_labels_expression', note: 'predicate expressions; use kubernetes_labels' },
  { path: 'impersonate', note: 'certificate impersonation' },
  { path: 'require_session_join', note: MODERATION },
  { path: 'join_sessions', note: MODERATION },
  {
    path: 'namespaces',
    inert: (v) => isEmptyDeep(v) || (Array.isArray(v) && v.every((x) => x === 'default' || x === '*')),
    note: 'namespaces other than "default"',
  },
  { path: 'rules.*.where', note: 'predicate conditions on rules; the rule would apply more widely than written' },
  { path: 'rules.*.actions', note: 'rule actions' },
];

/** Role options of services Keyway does not have yet: stored, noted when they are not Teleport's default. */
const ROLE_STORED_OPTION_FIELDS: readonly TeleportFieldRule[] = [
  { path: 'forward_agent', inert: FALSE, note: SSH },
  { path: 'port_forwarding', inert: TRUE, note: SSH },
  { path: 'ssh_port_forwarding', inert: subsetOf({ local: subsetOf({ enabled: TRUE }), remote: subsetOf({ enabled: TRUE }) }), note: SSH },
  { path: 'ssh_file_copy', inert: TRUE, note: SSH },
  { path: 'permit_x11_forwarding', inert: FALSE, note: SSH },
  { path: 'cert_format', inert: oneOf('standard'), note: SSH },
  { path: 'cert_extensions', note: SSH },
  { path: 'enhanced_recording', inert: sameSet('command', 'network'), note: 'BPF session recording for SSH' },
  { path: 'create_host_user', inert: FALSE, note: SSH },
  { path: 'create_host_user_mode', inert: oneOf('off', 0), note: SSH },
  { path: 'create_host_user_default_shell', note: SSH },
  { path: 'max_sessions', inert: ZERO, note: SSH },
  { path: 'request_access', inert: oneOf('optional'), note: REQUESTS },
  { path: 'request_prompt', note: REQUESTS },
  { path: 'desktop_clipboard', inert: TRUE, note: DESKTOP },
  { path: 'desktop_directory_sharing', inert: TRUE, note: DESKTOP },
  { path: 'create_desktop_user', inert: FALSE, note: DESKTOP },
  { path: 'create_db_user', inert: FALSE, note: DB },
  { path: 'create_db_user_mode', inert: oneOf('off', 0), note: DB },
  { path: 'idp', inert: subsetOf({ saml: subsetOf({ enabled: TRUE }) }), note: 'Teleport as a SAML identity provider' },
];

/** Role options that bear on Kubernetes sessions: refused unless they keep Teleport's default. */
const ROLE_OPTION_FIELDS: readonly TeleportFieldRule[] = [
  { path: 'client_idle_timeout', inert: ZERO_DURATION, note: 'idle session termination' },
  // Keyway always disconnects at expiry; in Teleport false defers to the cluster-wide setting, so neither value changes anything here.
  { path: 'disconnect_expired_cert', inert: (v) => FALSE(v) || TRUE(v), note: 'keeping sessions open after their certificate expires' },
  { path: 'max_connections', inert: ZERO, note: 'connection limits' },
  { path: 'require_session_mfa', inert: FALSE, note: 'per-session MFA' },
  { path: 'mfa_verification_interval', inert: ZERO, note: 'per-session MFA' },
  { path: 'device_trust_mode', note: 'device trust' },
  { path: 'pin_source_ip', inert: FALSE, note: 'IP pinning' },
  {
    path: 'record_session',
    inert: subsetOf({ default: oneOf('best_effort'), ssh: oneOf('best_effort'), desktop: TRUE }),
    note: 'session recording modes',
  },
];

/** Names of the stored condition fields and options, for the role schema. */
export const STORED_CONDITION_NAMES: readonly string[] = ROLE_STORED_CONDITION_FIELDS.map((r) => r.path);
export const STORED_OPTION_NAMES: readonly string[] = ROLE_STORED_OPTION_FIELDS.map((r) => r.path);

const prefixed = (prefix: string, rules: readonly TeleportFieldRule[]): TeleportFieldRule[] =>
  rules.map((r) => ({ ...r, path: `${prefix}.${r.path}` }));

const ENVELOPE_FIELDS: readonly TeleportFieldRule[] = [
  { path: 'sub_kind', note: 'resource sub-kinds' },
  { path: 'metadata.namespace', inert: oneOf('default'), note: 'namespaces other than "default"' },
];

const CONNECTOR_COMMON: readonly TeleportFieldRule[] = [
  { path: 'spec.client_redirect_settings', note: 'non-localhost client redirects' },
  { path: 'spec.user_matchers', note: 'identifier-first login' },
];

export const UNSUPPORTED_TELEPORT_FIELDS: Readonly<Record<ResourceKind, readonly TeleportFieldRule[]>> = {
  user: [
    ...ENVELOPE_FIELDS,
    { path: 'spec.local_auth', note: 'Teleport password hashes and MFA devices cannot be imported; reset the password with kwctl' },
    { path: 'spec.trusted_device_ids', note: 'device trust' },
  ],
  role: [
    ...ENVELOPE_FIELDS,
    ...prefixed('spec.allow', ROLE_CONDITION_FIELDS),
    ...prefixed('spec.deny', ROLE_CONDITION_FIELDS),
    ...prefixed('spec.options', ROLE_OPTION_FIELDS),
  ],
  token: [
    ...ENVELOPE_FIELDS,
    { path: 'status', note: 'join method state' },
    { path: 'spec.allow', note: 'join rules of cloud/CI join methods' },
    { path: 'spec.aws_iid_ttl', inert: ZERO, note: 'EC2 joining' },
    { path: 'spec.bot_name', note: 'Machine ID bots' },
    { path: 'spec.suggested_labels', note: 'labels suggested to joining agents' },
    { path: 'spec.suggested_agent_matcher_labels', note: 'labels suggested to joining agents' },
    ...[
      'github',
      'gitlab',
      'kubernetes',
      'azure',
      'azure_devops',
      'gcp',
      'circleci',
      'spacelift',
      'tpm',
      'terraform_cloud',
      'bitbucket',
      'oracle',
      'bound_keypair',
      'env0',
      'integration',
    ].map((p) => ({ path: `spec.${p}`, note: `the ${p} join method` })),
  ],
  github: [
    ...ENVELOPE_FIELDS,
    ...CONNECTOR_COMMON,
  ],
  oidc: [
    ...ENVELOPE_FIELDS,
    ...CONNECTOR_COMMON,
    { path: 'spec.google_admin_email', note: 'Google Workspace group lookup' },
    { path: 'spec.google_service_account', note: 'Google Workspace group lookup' },
    { path: 'spec.google_service_account_uri', note: 'Google Workspace group lookup' },
    { path: 'spec.entra_id_groups_provider', note: 'Entra ID group overage lookup' },
    { path: 'spec.pkce_mode', inert: oneOf('disabled'), note: 'PKCE' },
    { path: 'spec.request_object_mode', inert: oneOf('none'), note: 'JWT-secured authorization requests' },
    { path: 'spec.mfa', inert: disabledMfa, note: 'SSO MFA' },
  ],
  saml: [
    ...ENVELOPE_FIELDS,
    ...CONNECTOR_COMMON,
    { path: 'spec.single_logout_url', note: 'SAML single logout' },
    { path: 'spec.mfa', inert: disabledMfa, note: 'SSO MFA' },
    { path: 'spec.force_authn', inert: oneOf(0, 1, 'unspecified', 'no', 'force_authn_unspecified', 'force_authn_no'), note: 'forced re-authentication' },
    { path: 'spec.preferred_request_binding', inert: oneOf('http-redirect'), note: 'HTTP-POST request binding' },
  ],
  kube_cluster: [
    ...ENVELOPE_FIELDS,
    { path: 'spec.dynamic_labels', note: 'command-based labels' },
    { path: 'spec.aws', note: 'cloud-discovered clusters' },
    { path: 'spec.azure', note: 'cloud-discovered clusters' },
    { path: 'spec.gcp', note: 'cloud-discovered clusters' },
  ],
  lock: [
    ...ENVELOPE_FIELDS,
    ...['login', 'node', 'server_id', 'mfa_device', 'windows_desktop', 'access_request', 'device', 'bot_instance_id', 'join_token'].map(
      (p) => ({ path: `spec.target.${p}`, note: 'lock targets other than user and role' }),
    ),
  ],
};

/**
 * Teleport fields Keyway stores as written without applying them yet (see
 * ROLE_STORED_CONDITION_FIELDS); an empty value is dropped, any other is kept, and one that is not
 * Teleport's default gives a note on create.
 */
export const STORED_TELEPORT_FIELDS: Readonly<Partial<Record<ResourceKind, readonly TeleportFieldRule[]>>> = {
  role: [
    ...prefixed('spec.allow', ROLE_STORED_CONDITION_FIELDS),
    ...prefixed('spec.deny', ROLE_STORED_CONDITION_FIELDS),
    ...prefixed('spec.options', ROLE_STORED_OPTION_FIELDS),
  ],
};

/**
 * Read-only fields that `tctl get` prints. They are accepted and dropped, so a dump can be
 * created again as it is; Keyway keeps its own equivalents.
 */
export const IGNORED_TELEPORT_FIELDS: Readonly<Record<ResourceKind, readonly string[]>> = {
  user: ['metadata.id', 'status', 'spec.status', 'spec.created_by', 'spec.password_state'],
  role: ['metadata.id'],
  token: ['metadata.id'],
  github: ['metadata.id'],
  oidc: ['metadata.id'],
  saml: ['metadata.id'],
  kube_cluster: ['metadata.id'],
  lock: ['metadata.id'],
};

export type PathSegment = string | number;

/** Calls `visit` for each existing field matching a dotted path with `*` wildcards. */
export function forEachField(
  root: unknown,
  path: string,
  visit: (parent: Record<string, unknown> | unknown[], key: PathSegment, at: PathSegment[]) => void,
): void {
  const segments = path.split('.');
  const walk = (node: unknown, i: number, at: PathSegment[]): void => {
    if (node === null || typeof node !== 'object') return;
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    const keys: PathSegment[] =
      seg === '*' ? (Array.isArray(node) ? node.map((_, k) => k) : Object.keys(node)) : Object.hasOwn(node, seg) ? [seg] : [];
    for (const key of keys) {
      const child = (node as Record<PathSegment, unknown>)[key];
      if (last) visit(node as Record<string, unknown>, key, [...at, key]);
      else walk(child, i + 1, [...at, key]);
    }
  };
  walk(root, 0, []);
}
