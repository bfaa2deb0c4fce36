import { EVENTS, auditEvent, type AuditEventRecord } from '@keyway/audit';
import type { RequestInfo } from '@keyway/kube';
import type { Identity } from '@keyway/pki';

export { RightsTracker, DEFAULT_MAX_LOCK_STALENESS_MS, type Closable, type Held, type RightsTrackerOptions } from './tracker.js';
export { revocableSplice } from './revocable-splice.js';
export { FrameCursor, LastWords, sessionProtocol, type SessionProtocol } from './last-words.js';
export { EndableWatch } from './watch-end.js';

/**
 * A request that stays open as long as the client likes: a watch or followed logs (exec,
 * attach and port-forward are upgrades, counted where they are handled). These count against
 * max_kubernetes_connections; short requests do not, so kubectl's parallel discovery is
 * never refused.
 */
export function isStreamRequest(info: RequestInfo, url: string): boolean {
  if (info.verb === 'watch') return true;
  if (info.subresource !== 'log') return false;
  const follow = new URLSearchParams(url.split('?')[1] ?? '').get('follow');
  return follow === 'true' || follow === '1';
}

/**
 * Teleport's client.disconnect (T3006I): the proxy closed a connection or stream because its
 * right ended; `reason` says which (expired, locked, deleted, stale view).
 */
export function disconnectEvent(o: { clusterName: string; identity: Identity; remoteAddr: string; serverHostname: string; reason: string; what: string }): AuditEventRecord {
  return auditEvent(EVENTS.clientDisconnect, {
    cluster_name: o.clusterName,
    user: o.identity.username,
    user_roles: o.identity.roles,
    login: o.identity.username,
    'addr.remote': o.remoteAddr,
    server_hostname: o.serverHostname,
    proto: 'kube',
    reason: `${o.what} closed: ${o.reason}`,
  });
}
