import { BadParameterError, KeywayError } from '@keyway/errors';
import { DEFAULT_MAX_SESSION_TTL_MS, parseDuration, type RoleResource } from '@keyway/resources';
import { expandTemplate, type Traits } from './templates.js';

/** Default lifetime of a user certificate (DESIGN.md): 12 hours. */
export const DEFAULT_CERT_TTL_MS = 12 * 3_600_000;

export interface KubeGrants {
  kubernetesGroups: string[];
  kubernetesUsers: string[];
}

function expandAll(roles: readonly RoleResource[], traits: Traits, pick: (r: RoleResource) => string[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const role of roles) {
    for (const value of pick(role) ?? []) {
      let expanded: string[];
      try {
        expanded = expandTemplate(value, traits);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new BadParameterError(`role ${JSON.stringify(role.metadata.name)}: ${message}`, {
          role: role.metadata.name,
          value,
          ...(err instanceof KeywayError ? err.data : {}),
        });
      }
      for (const v of expanded) if (v !== '') out.add(v);
    }
  }
  return out;
}

/**
 * The Kubernetes groups and users an identity may use, for its certificate: the union of the
 * roles' allow `kubernetes_groups` / `kubernetes_users` with templates expanded from the traits,
 * minus what any role denies; deduplicated and sorted. Which of these apply to a given cluster
 * and request is decided per request from the roles themselves.
 */
export function identityKubeGrants(roles: readonly RoleResource[], traits: Traits): KubeGrants {
  const result = (allow: (r: RoleResource) => string[] | undefined, deny: (r: RoleResource) => string[] | undefined) => {
    const allowed = expandAll(roles, traits, allow);
    for (const v of expandAll(roles, traits, deny)) allowed.delete(v);
    return [...allowed].sort();
  };
  return {
    kubernetesGroups: result(
      (r) => r.spec.allow.kubernetes_groups,
      (r) => r.spec.deny.kubernetes_groups,
    ),
    kubernetesUsers: result(
      (r) => r.spec.allow.kubernetes_users,
      (r) => r.spec.deny.kubernetes_users,
    ),
  };
}

/**
 * The smallest `options.max_session_ttl` among the roles, in milliseconds. A role without one
 * (or with zero) counts as Teleport's default, 30h; so does an empty list of roles.
 */
export function maxSessionTtl(roles: readonly RoleResource[]): number {
  let min = DEFAULT_MAX_SESSION_TTL_MS;
  for (const role of roles) {
    const raw = role.spec.options?.max_session_ttl;
    const ms = raw === undefined ? 0 : parseDuration(raw);
    min = Math.min(min, ms > 0 ? ms : DEFAULT_MAX_SESSION_TTL_MS);
  }
  return min;
}

/**
 * Lifetime of a certificate issued for these roles: what was asked for (default 12h), capped
 * by the smallest max_session_ttl of the roles.
 */
export function certTtl(roles: readonly RoleResource[], requestedMs?: number): number {
  if (requestedMs !== undefined && !(Number.isFinite(requestedMs) && requestedMs > 0)) {
    throw new BadParameterError(`certificate TTL must be positive, got ${requestedMs}`, { requestedMs });
  }
  return Math.min(requestedMs ?? DEFAULT_CERT_TTL_MS, maxSessionTtl(roles));
}
