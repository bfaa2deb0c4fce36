export { Store, STORED_KINDS, type Db, type PresenceEntry, type PresenceKind, type PutOptions, type StoreLocation, type StoreOptions, type StoredKind, type StoredResource } from './store.js';
export type { Database } from './schema.js';
export { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';
export {
  appendAuditEvents,
  auditEventRow,
  canonicalJson,
  chainHash,
  searchAuditEvents,
  verifyAuditChain,
  type AuditEventRecord,
  type AuditEventRow,
  type AuditQuery,
  type ChainVerification,
  type StoredAuditEvent,
} from './audit.js';
export {
  findSessionRecording,
  getSessionChunks,
  listSessionRecordings,
  putSessionChunk,
  type SessionChunkRecord,
  type SessionRecordingRecord,
} from './recordings.js';
export { connectionFailureReason, describeStore, storeUnreachable } from './connection-errors.js';
