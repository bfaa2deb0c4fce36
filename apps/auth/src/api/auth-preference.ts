import type { Change } from './change-feed.js';

/** Teleport's kind and name for the cluster-wide authentication settings. */
export const AUTH_PREFERENCE_KIND = 'cluster_auth_preference';
export const AUTH_PREFERENCE_NAME = 'cluster-auth-preference';

export type LockingMode = 'best_effort' | 'strict';

/**
 * The settings proxies need from auth's configuration, served to watchers as a resource in
 * their snapshot (it changes only when auth restarts with another configuration, and every
 * watch starts with a snapshot), so no API message had to change.
 */
export function authPreferenceChange(lockingMode: LockingMode): Change {
  return {
    type: 'put',
    kind: AUTH_PREFERENCE_KIND,
    name: AUTH_PREFERENCE_NAME,
    resource: { kind: AUTH_PREFERENCE_KIND, version: 'v2', metadata: { name: AUTH_PREFERENCE_NAME }, spec: { locking_mode: lockingMode } },
  };
}
