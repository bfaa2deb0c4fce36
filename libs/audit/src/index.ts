export { EVENTS, auditEvent, type EventKind } from './events.js';
export { DirectAuditLog, type AuditLog } from './audit-log.js';
