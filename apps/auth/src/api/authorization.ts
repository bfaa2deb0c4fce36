import { AccessDeniedError } from '@keyway/errors';
import type { SystemRole } from '@keyway/pki';
import { redactSecrets, type Resource } from '@keyway/resources';
import type { StoredKind } from '@keyway/store';

/** What can be read from the auth service: stored resources and hosts' heartbeats. */
export type ReadableKind = StoredKind | 'proxy' | 'kube_server';

/** Every method that returns resources is one of these. */
export type ReadMethod = 'get' | 'list' | 'watch';

/**
 * What each host role may read, whatever the method: only what its job needs, never a secret.
 * - A proxy authorizes each request itself, so it reads roles, users (their resources hold no
 *   password hashes or TOTP secrets: those are columns of their own), locks, kube clusters and
 *   who is alive. Never join tokens, connectors or the audit log.
 * - A kube agent only heartbeats and renews its own certificate: it reads nothing.
 * The local admin identity (`Admin`) may read everything, as with kwctl on the auth host.
 */
export const HOST_READABLE: Readonly<Record<Extract<SystemRole, 'Proxy' | 'Kube'>, ReadonlySet<ReadableKind>>> = {
  Proxy: new Set<ReadableKind>(['role', 'user', 'lock', 'kube_cluster', 'proxy', 'kube_server']),
  Kube: new Set<ReadableKind>(),
};

export type ReadDecision =
  /** A host: decided here, by HOST_READABLE. */
  | { by: 'host' }
  /** A user: these rule verbs on the kind must all be allowed by the user's roles. */
  | { by: 'roles'; verbs: string[] };

/**
 * The one rule for reading a kind, applied by get, list and watch alike (audit search and
 * session listing use the same rule verbs on `event` and `session`):
 * - get needs `read` with secrets, else `readnosecrets` (which `read` also grants);
 * - list needs `list` as well;
 * - watch is for hosts only (a stream is authorized once, when it opens) and never carries
 *   secrets.
 * Secrets are only returned when they were asked for and `read` is allowed; everyone else gets
 * them redacted (redactForRead).
 */
export function readRule(
  caller: { kind: 'host' | 'user'; identity: { systemRoles: readonly SystemRole[] } },
  who: string,
  kind: ReadableKind,
  method: ReadMethod,
  withSecrets: boolean,
): ReadDecision {
  if (method === 'watch' && withSecrets) throw new AccessDeniedError('a watch never carries secrets', { resource: kind, verb: method });
  if (caller.kind === 'host') {
    const roles = caller.identity.systemRoles;
    if (roles.includes('Admin')) return { by: 'host' };
    if (withSecrets) throw denied(who, kind, method, 'hosts never read secrets');
    const allowed = roles.some((r) => (r === 'Proxy' || r === 'Kube') && HOST_READABLE[r].has(kind));
    if (!allowed) throw denied(who, kind, method, 'its role does not need it');
    return { by: 'host' };
  }
  if (method === 'watch') throw denied(who, kind, method, 'watching the cluster state is for Keyway hosts');
  const read = withSecrets ? 'read' : 'readnosecrets';
  return { by: 'roles', verbs: method === 'list' ? ['list', read] : [read] };
}

function denied(who: string, kind: ReadableKind, method: ReadMethod, why: string): AccessDeniedError {
  return new AccessDeniedError(`${who} may not ${method} ${kind}: ${why}`, { resource: kind, verb: method });
}

/** A resource for a reader: its secret fields blanked unless `withSecrets` was asked for (and allowed). */
export function redactForRead<T>(resource: T, withSecrets: boolean): T {
  if (withSecrets || resource === undefined || resource === null) return resource;
  return redactSecrets(resource as unknown as Resource) as unknown as T;
}
