import { describe, expect, it } from 'vitest';
import { formatResources, parseResourceDocuments } from '@keyway/resources';
import { ACCESS_ROLE, PRESET_ROLES, SYSTEM_ADMIN_ROLE } from './presets.js';

describe('preset roles', () => {
  it('are editor, access and auditor, and load back from their own YAML', () => {
    expect(PRESET_ROLES.map((r) => r.metadata.name)).toEqual(['editor', 'access', 'auditor']);
    expect(parseResourceDocuments(formatResources(PRESET_ROLES, 'yaml')).docs).toEqual(PRESET_ROLES);
  });

  it('give access the user\'s own Kubernetes identities on every cluster', () => {
    expect(ACCESS_ROLE.spec.allow).toEqual({
      kubernetes_labels: { '*': '*' },
      kubernetes_groups: ['{{internal.kubernetes_groups}}'],
      kubernetes_users: ['{{internal.kubernetes_users}}'],
      kubernetes_resources: [{ kind: '*', namespace: '*', name: '*', verbs: ['*'] }],
    });
    expect(ACCESS_ROLE.spec.options.max_session_ttl).toBe('30h');
  });

  it('keep the system admin role out of reach of documents', () => {
    expect(SYSTEM_ADMIN_ROLE.metadata.name).toBe('keyway:admin');
    expect(() => parseResourceDocuments(formatResources([SYSTEM_ADMIN_ROLE], 'yaml'))).toThrow(/reserved for built-in roles/);
  });
});
