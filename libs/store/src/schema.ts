import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** pg returns bigint as string; we keep it that way and never do arithmetic on it in JS. */
type BigIntColumn = ColumnType<string, string | number | bigint | undefined, string | number | bigint>;
type Json = ColumnType<Record<string, unknown>, string, string>;

interface ResourceRow {
  name: string;
  resource: Json;
  revision: BigIntColumn;
  expires: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface UsersTable extends ResourceRow {
  password_hash: string | null;
  totp_secret: string | null;
  totp_last_step: ColumnType<string | null, string | number | null | undefined, string | number | null>;
  failed_logins: ColumnType<number, number | undefined, number>;
  locked_until: NullableTimestamp;
}

export interface ConnectorsTable extends ResourceRow {
  kind: 'github' | 'oidc' | 'saml';
}

export interface UserTokensTable {
  token_hash: string;
  username: string;
  kind: 'signup' | 'reset';
  totp_secret: string | null;
  expires: Timestamp;
  created_at: Timestamp;
}

export interface CertAuthoritiesTable {
  type: 'user' | 'host';
  cluster_name: string;
  cert_pem: string;
  encrypted_key: string;
  created_at: Timestamp;
}

export interface AuditEventsTable {
  id: Generated<string>;
  uid: string;
  time: Timestamp;
  event: string;
  code: string;
  cluster_name: string | null;
  username: string | null;
  kubernetes_cluster: string | null;
  namespace: string | null;
  prev_hash: string | null;
  hash: string | null;
  data: Json;
  /** Contiguous from 1 in chain order (ids have gaps); null only for rows written around the chain. */
  seq: BigIntOrNull;
  /** The audit key that made this link; null for an unkeyed (sha256) link. */
  key_id: string | null;
}

type BigIntOrNull = ColumnType<string | null, string | number | null | undefined, string | number | null>;

export interface AuditKeysTable {
  id: string;
  encrypted_key: string;
  start_seq: BigIntColumn;
  start_hash: string;
  mac: string;
  created_at: Timestamp;
}

export interface AuditCheckpointsTable {
  id: Generated<string>;
  seq: BigIntColumn;
  hash: string;
  key_id: string;
  /** RFC 3339, as signed. */
  time: string;
  mac: string;
}

export interface PresenceTable {
  kind: 'proxy' | 'kube_server';
  host_id: string;
  data: Json;
  expires: Timestamp;
  updated_at: Timestamp;
}

export interface ClusterStateTable {
  key: string;
  value: Json;
}

export interface SessionRecordingsTable {
  id: string;
  username: string;
  cluster: string;
  namespace: string;
  pod: string;
  container: string;
  command: ColumnType<string[], string, string>;
  started: Timestamp;
  ended: NullableTimestamp;
}

export interface SessionChunksTable {
  session_id: string;
  seq: number;
  data: string;
}

export interface SsoRequestsTable {
  id: string;
  kind: string;
  data: Json;
  expires: Timestamp;
}

export interface SsoSeenTable {
  id: string;
  expires: Timestamp;
}

/** What an SSO login left to check the person again at renewal (sealed by the auth service). */
export interface SsoSessionsTable {
  username: string;
  kind: string;
  connector: string;
  subject: string;
  sealed: string;
  checked_at: Timestamp;
  expires: Timestamp;
}

export interface Database {
  users: UsersTable;
  roles: ResourceRow;
  tokens: ResourceRow;
  kube_clusters: ResourceRow;
  locks: ResourceRow;
  connectors: ConnectorsTable;
  user_tokens: UserTokensTable;
  cert_authorities: CertAuthoritiesTable;
  audit_events: AuditEventsTable;
  audit_keys: AuditKeysTable;
  audit_checkpoints: AuditCheckpointsTable;
  cluster_state: ClusterStateTable;
  presence: PresenceTable;
  session_recordings: SessionRecordingsTable;
  session_chunks: SessionChunksTable;
  sso_requests: SsoRequestsTable;
  sso_seen: SsoSeenTable;
  sso_sessions: SsoSessionsTable;
}
