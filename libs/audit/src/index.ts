export { EVENTS, auditEvent, type EventKind } from './events.js';
export { DirectAuditLog, RemoteAuditLog, type AuditLog } from './audit-log.js';
