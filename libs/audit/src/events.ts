import { randomUUID } from 'node:crypto';
import type { AuditEventRecord } from '@keyway/store';

/** best-effort: a full spool drops its oldest events, loudly; strict: requests are refused until events can be kept. */
export type AuditMode = 'best-effort' | 'strict';

/** Teleport's event names and codes, so existing SIEM parsers work unchanged. */
export const EVENTS = {
  kubeRequest: { event: 'kube.request', code: 'T3009I' },
  userLogin: { event: 'user.login', code: 'T1000I' },
  userLoginFailure: { event: 'user.login', code: 'T1000W' },
  userSsoLogin: { event: 'user.login', code: 'T1001I' },
  userSsoLoginFailure: { event: 'user.login', code: 'T1001W' },
  userCreate: { event: 'user.create', code: 'T1002I' },
  userUpdate: { event: 'user.update', code: 'T1003I' },
  userDelete: { event: 'user.delete', code: 'T1004I' },
  roleCreate: { event: 'role.created', code: 'T9000I' },
  roleDelete: { event: 'role.deleted', code: 'T9001I' },
  tokenCreate: { event: 'join_token.create', code: 'TJT00I' },
  lockCreate: { event: 'lock.created', code: 'TLK00I' },
  lockDelete: { event: 'lock.deleted', code: 'TLK01I' },
  join: { event: 'instance.join', code: 'TJ001I' },
  certCreate: { event: 'cert.create', code: 'TC000I' },
  resourceCreate: { event: 'resource.create', code: 'TRC00I' },
  resourceDelete: { event: 'resource.delete', code: 'TRC02I' },
  exec: { event: 'exec', code: 'T3002I' },
  execFailure: { event: 'exec', code: 'T3002E' },
  sessionStart: { event: 'session.start', code: 'T2000I' },
  sessionEnd: { event: 'session.end', code: 'T2004I' },
  portForward: { event: 'port_forward', code: 'T3003I' },
  clientDisconnect: { event: 'client.disconnect', code: 'T3006I' },
} as const;

export type EventKind = (typeof EVENTS)[keyof typeof EVENTS];

/** A complete event: name, code, a fresh uid and the time, then the event's fields. */
export function auditEvent(kind: EventKind, fields: Record<string, unknown>, time = new Date()): AuditEventRecord {
  return { ...fields, event: kind.event, code: kind.code, uid: randomUUID(), time: time.toISOString() };
}
