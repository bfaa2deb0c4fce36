import { DEFAULT_MAX_SESSION_TTL, RESERVED_ROLE_PREFIX, parseResource, type RoleResource } from '@keyway/resources';

const ALL = ['list', 'create', 'read', 'update', 'delete'];
const READ = ['list', 'read'];
const PRESET_LABELS = { 'keyway.internal/resource-type': 'preset' };

function preset(name: string, description: string, spec: Record<string, unknown>): RoleResource {
  // Built through the parser so presets get exactly the defaults a stored role gets.
  return parseResource({ kind: 'role', version: 'v7', metadata: { name, description, labels: PRESET_LABELS }, spec }) as RoleResource;
}

/** Manages Keyway's configuration: users, roles, join tokens, connectors, clusters, locks. */
export const EDITOR_ROLE: RoleResource = preset('editor', 'Edit cluster configuration', {
  allow: {
    rules: [
      { resources: ['user', 'role', 'token', 'github', 'oidc', 'saml', 'auth_connector', 'kube_cluster', 'lock'], verbs: ALL },
      { resources: ['cert_authority'], verbs: READ },
      { resources: ['event', 'session'], verbs: READ },
    ],
  },
});

/** Reaches every Kubernetes cluster as the user's own Kubernetes users and groups. */
export const ACCESS_ROLE: RoleResource = preset('access', 'Access cluster resources', {
  allow: {
    kubernetes_labels: { '*': '*' },
    kubernetes_groups: ['{{internal.kubernetes_groups}}'],
    kubernetes_users: ['{{internal.kubernetes_users}}'],
  },
});

/** Reads the audit log and session recordings. */
export const AUDITOR_ROLE: RoleResource = preset('auditor', 'Review cluster events and replay sessions', {
  allow: {
    rules: [{ resources: ['event', 'session', 'session_tracker'], verbs: READ }],
  },
});

/** The roles every Keyway cluster starts with (created once; admins may edit them). */
export const PRESET_ROLES: readonly RoleResource[] = [EDITOR_ROLE, ACCESS_ROLE, AUDITOR_ROLE];

/**
 * The role of the local admin identity: every API rule allowed. It is never stored and its
 * name cannot be used by a role document (the `keyway:` prefix is reserved). It grants no
 * Kubernetes access.
 */
export const SYSTEM_ADMIN_ROLE: RoleResource = {
  kind: 'role',
  version: 'v7',
  metadata: { name: `${RESERVED_ROLE_PREFIX}admin`, description: 'Built-in role of the local admin identity' },
  spec: {
    options: { max_session_ttl: DEFAULT_MAX_SESSION_TTL },
    allow: { rules: [{ resources: ['*'], verbs: ['*'] }] },
    deny: {},
  },
};
