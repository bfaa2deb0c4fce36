/**
 * Teleport kinds that Keyway does not store, as they appear in a `tctl get all` dump (or any
 * export), and what `kwctl create -f` does with each:
 *
 * - `skip`: the document is checked to be a Teleport resource of that kind, not written, and a
 *   note says why and what to do instead. For state Keyway keeps its own way (CAs, heartbeats)
 *   or configuration that lives in keyway.yaml.
 * - `refuse`: the document is an error naming it: skipping it would change who gets what
 *   access (login rules rewrite SSO traits; access lists grant roles; trusted clusters extend
 *   trust), so an administrator has to decide.
 *
 * Kinds Keyway has (user, role, token, connectors, kube_cluster, lock) are never here.
 */
export interface ForeignKindRule {
  action: 'skip' | 'refuse';
  /** Why, and what to do instead; completes "<kind> <name>: ...". */
  why: string;
  /** A summary of the document for the note (e.g. the settings to carry over by hand). */
  summary?: (spec: Record<string, unknown>, name: string) => string | undefined;
}

const HEARTBEAT = 'is a heartbeat of a running Teleport service, not configuration; Keyway agents announce themselves when they join (kwctl tokens add --type=kube)';
const NO_SERVICE = (what: string) => `is ${what}, which Keyway does not have yet; not imported (create it again once it does)`;

function pick(spec: Record<string, unknown>, fields: readonly string[]): string | undefined {
  const parts = fields.filter((f) => spec[f] !== undefined && spec[f] !== '').map((f) => `${f}: ${JSON.stringify(spec[f])}`);
  return parts.length > 0 ? parts.join(', ') : undefined;
}

export const FOREIGN_TELEPORT_KINDS: Readonly<Record<string, ForeignKindRule>> = {
  cert_authority: {
    action: 'skip',
    why: "is a Teleport certificate authority; Keyway never imports foreign CA keys: its own user and host CAs sign every certificate, so users log in again and agents join again",
  },
  cluster_name: { action: 'skip', why: 'names the Teleport cluster; Keyway takes its name from cluster_name in keyway.yaml' },
  cluster_auth_preference: {
    action: 'skip',
    why: 'is cluster configuration; Keyway reads it from auth_service.authentication in keyway.yaml (type, second_factor, connector_name, locking_mode)',
    summary: (spec) => pick(spec, ['type', 'second_factor', 'connector_name', 'locking_mode', 'disconnect_expired_cert']),
  },
  cluster_networking_config: {
    action: 'skip',
    why: 'is cluster configuration; Keyway reads its listeners and keep-alive limits from keyway.yaml (proxy_service)',
    summary: (spec) => pick(spec, ['client_idle_timeout', 'keep_alive_interval', 'keep_alive_count_max', 'proxy_listener_mode']),
  },
  session_recording_config: {
    action: 'skip',
    why: 'is cluster configuration; Keyway records Kubernetes sessions itself (kw recordings) and takes no recording mode from a resource',
    summary: (spec) => pick(spec, ['mode', 'proxy_checks_host_keys']),
  },
  ui_config: { action: 'skip', why: 'configures the Teleport web UI, which Keyway does not have' },
  cluster_maintenance_config: { action: 'skip', why: 'schedules Teleport upgrades; Keyway is upgraded by its own deployment' },
  autoupdate_config: { action: 'skip', why: 'schedules Teleport agent upgrades; Keyway agents are upgraded by their deployment' },
  autoupdate_version: { action: 'skip', why: 'schedules Teleport agent upgrades; Keyway agents are upgraded by their deployment' },
  namespace: { action: 'skip', why: 'is a Teleport namespace; Keyway has only "default"' },
  node: { action: 'skip', why: HEARTBEAT },
  kube_server: { action: 'skip', why: HEARTBEAT },
  kube_service: { action: 'skip', why: HEARTBEAT },
  app_server: { action: 'skip', why: HEARTBEAT },
  db_server: { action: 'skip', why: HEARTBEAT },
  db_service: { action: 'skip', why: HEARTBEAT },
  windows_desktop_service: { action: 'skip', why: HEARTBEAT },
  proxy: { action: 'skip', why: HEARTBEAT },
  auth_server: { action: 'skip', why: HEARTBEAT },
  instance: { action: 'skip', why: HEARTBEAT },
  app: { action: 'skip', why: NO_SERVICE('an application for application access') },
  db: { action: 'skip', why: NO_SERVICE('a database for database access') },
  windows_desktop: { action: 'skip', why: NO_SERVICE('a Windows desktop') },
  saml_idp_service_provider: { action: 'skip', why: NO_SERVICE('a service provider of Teleport as a SAML identity provider') },
  bot: { action: 'skip', why: NO_SERVICE('a Machine ID bot') },
  device: { action: 'skip', why: NO_SERVICE('a device registered for device trust') },
  trusted_cluster: {
    action: 'refuse',
    why: 'would join another cluster to this one; Keyway has no trusted clusters, and importing it without the trust it describes would mislead. Remove it from the file',
  },
  remote_cluster: { action: 'refuse', why: 'is a cluster trusted by this one; Keyway has no trusted clusters. Remove it from the file' },
  login_rule: {
    action: 'refuse',
    why: 'rewrites the traits of SSO users, which roles read; without it users would get other traits and so other access. Keyway has no login rules: move the mapping into the connector or the roles, then remove it from the file',
  },
  access_list: {
    action: 'refuse',
    why: 'grants roles and traits to its members; Keyway has no access lists. Give the members the roles directly, then remove it from the file',
  },
  user_group: { action: 'refuse', why: 'is an Okta group whose members get access; Keyway has no Okta sync. Remove it from the file' },
};

/** Teleport's plural and long spellings of these kinds, as tctl accepts them. */
const ALIASES: Record<string, string> = {
  cert_authorities: 'cert_authority',
  cas: 'cert_authority',
  cluster_auth_preferences: 'cluster_auth_preference',
  cap: 'cluster_auth_preference',
  nodes: 'node',
  kube_servers: 'kube_server',
  apps: 'app',
  dbs: 'db',
  trusted_clusters: 'trusted_cluster',
  remote_clusters: 'remote_cluster',
  login_rules: 'login_rule',
  access_lists: 'access_list',
  windows_desktops: 'windows_desktop',
};

/** The rule for a Teleport kind Keyway does not store, or undefined. */
export function lookupForeignKind(kind: string): { kind: string; rule: ForeignKindRule } | undefined {
  const key = kind.trim().toLowerCase().replace(/[-\s]/g, '_');
  const canonical = Object.hasOwn(ALIASES, key) ? ALIASES[key]! : key;
  return Object.hasOwn(FOREIGN_TELEPORT_KINDS, canonical) ? { kind: canonical, rule: FOREIGN_TELEPORT_KINDS[canonical]! } : undefined;
}
