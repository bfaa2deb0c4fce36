export { Store, STORED_KINDS, type Db, type PresenceEntry, type PresenceKind, type PutOptions, type StoreLocation, type StoreOptions, type StoredKind, type StoredResource } from './store.js';
export type { Database } from './schema.js';
export { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';
export { MAX_AUDIT_EVENT_BYTES, appendAuditEvents, auditEventProblem, auditEventRow, searchAuditEvents, type AuditEventRecord, type AuditEventRow, type AuditQuery, type StoredAuditEvent } from './audit.js';
export { canonicalJson, chainHash, useAuditKeys, type AuditKey } from './audit-chain.js';
export { checkpointAuditChain, listAuditKeyRecords, startKeyedAuditChain, type AuditCheckpoint, type AuditKeyRecord } from './audit-keys.js';
export { verifyAuditChain, type ChainVerification } from './audit-verify.js';
export {
  findSessionRecording,
  getSessionChunks,
  listSessionRecordings,
  putSessionChunk,
  type SessionChunkRecord,
  type SessionRecordingRecord,
} from './recordings.js';
export { connectionFailureReason, describeStore, storeUnreachable } from './connection-errors.js';
export { deleteSsoSession, getSsoSession, markSsoSeen, putSsoRequest, putSsoSession, sweepSso, takeSsoRequest, type SsoSession } from './sso.js';
