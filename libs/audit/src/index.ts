export type { AuditEventRecord } from '@keyway/store';
export { EVENTS, auditEvent, type EventKind } from './events.js';
export { DirectAuditLog, RemoteAuditLog, type AuditLog } from './audit-log.js';
export { AUDIT_QUEUE, AuditWorker, QueueAuditLog, redisConnection, type AuditMode, type QueueAuditLogOptions } from './queue.js';
