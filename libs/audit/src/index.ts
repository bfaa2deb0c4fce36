export type { AuditEventRecord } from '@keyway/store';
export { EVENTS, auditEvent, type AuditMode, type EventKind } from './events.js';
export { DirectAuditLog, RemoteAuditLog, type AuditLog } from './audit-log.js';
export { AUDIT_QUEUE, AuditWorker, QueueAuditLog, QueueSink, redisConnection, type QueueAuditLogOptions } from './queue.js';
export { SpooledAuditLog, type AuditSink, type SpooledAuditLogOptions } from './spooled-log.js';
export { RemoteSink, StoreSink } from './sinks.js';
export { AuditSpool } from './spool.js';
