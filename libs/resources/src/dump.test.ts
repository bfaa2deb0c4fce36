import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { KeywayError } from '@keyway/errors';
import { parseResourceDocuments, type ResourceProblem } from './documents.js';
import type { RoleResource, UserResource } from './types.js';

// A Teleport cluster's `tctl get all` dump moves over as it is, or each document and field that
// cannot is named. Nothing is returned to write when anything is refused.

const DUMP = readFileSync(new URL('./fixtures/teleport-dump.yaml', import.meta.url), 'utf8');

function refusal(text: string): { message: string; problems: ResourceProblem[] } {
  try {
    parseResourceDocuments(text, 'dump.yaml');
  } catch (err) {
    const e = err as KeywayError & { data: { problems: ResourceProblem[] } };
    return { message: e.message, problems: e.data.problems };
  }
  throw new Error('expected the dump to be refused');
}

describe('a Teleport dump', () => {
  const parsed = parseResourceDocuments(DUMP, 'dump.yaml');

  it('loads every kind Keyway has, in file order', () => {
    expect(parsed.docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      'role/kube-admins',
      'role/developers',
      'role/auditors-v5',
      'role/platform-v8',
      'user/alice',
      'github/github',
      'oidc/okta',
      'saml/entra',
      'token/5f3e2d1c0b9a8f7e6d5c4b3a29180716',
      'kube_cluster/staging',
      'lock/2f0c4a4e-0d6b-4a8e-9c3f-1e2d3c4b5a69',
    ]);
  });

  it('skips the kinds Keyway keeps its own way, naming each document', () => {
    expect(parsed.skipped).toEqual([
      { document: 1, kind: 'cluster_name', name: 'cluster-name' },
      { document: 2, kind: 'namespace', name: 'default' },
      { document: 3, kind: 'cert_authority', name: 'acme.teleport.sh' },
      { document: 4, kind: 'cert_authority', name: 'acme.teleport.sh' },
      { document: 5, kind: 'cluster_auth_preference', name: 'cluster-auth-preference' },
      { document: 6, kind: 'cluster_networking_config', name: 'cluster-networking-config' },
      { document: 7, kind: 'session_recording_config', name: 'session-recording-config' },
      { document: 8, kind: 'node', name: '0c1f2e3d-4b5a-6978-8a9b-0c1d2e3f4a5b' },
      { document: 9, kind: 'kube_server', name: 'prod-eks' },
      { document: 10, kind: 'role', name: 'access' },
    ]);
    const note = (n: number) => parsed.notes.find((l) => l.startsWith(`dump.yaml document ${n} `));
    expect(note(3)).toContain('skipped: cert_authority acme.teleport.sh is a Teleport certificate authority; Keyway never imports foreign CA keys');
    // The settings to carry over into keyway.yaml are in the note.
    expect(note(5)).toContain('auth_service.authentication in keyway.yaml');
    expect(note(5)).toContain('(it has type: "github", second_factor: "on", connector_name: "github", locking_mode: "best_effort", disconnect_expired_cert: false)');
    expect(note(9)).toContain('heartbeat of a running Teleport service');
    // Teleport's own presets (with predicates Keyway does not evaluate) give way to Keyway's.
    expect(note(10)).toContain('skipped: role access is a Teleport preset role');
  });

  it('keeps the fields of services Keyway does not have, noting each that does something', () => {
    const developers = parsed.docs.find((d) => d.metadata.name === 'developers') as RoleResource;
    expect(developers.spec.allow).toMatchObject({ logins: ['{{internal.logins}}', 'ubuntu'], node_labels: { env: ['dev', 'staging'] }, db_names: ['{{internal.db_names}}'] });
    expect(developers.spec.options).toMatchObject({ max_session_ttl: '8h', forward_agent: true, port_forwarding: true });
    const roleNotes = parsed.notes.filter((l) => l.includes('(role/developers)'));
    expect(roleNotes.map((l) => l.replace(/^.*: (spec\.\S+) .*$/, '$1'))).toEqual([
      'spec.allow.logins',
      'spec.allow.node_labels',
      'spec.allow.app_labels',
      'spec.allow.db_labels',
      'spec.allow.db_names',
      'spec.allow.db_users',
      'spec.options.forward_agent',
    ]);
    // Teleport's defaults (port_forwarding: true, cert_format: standard, ...) need no note.
    expect(roleNotes.join('\n')).not.toContain('port_forwarding');
  });

  it("applies each version's defaults: the seed's v3 role reaches every cluster", () => {
    const seed = parsed.docs.find((d) => d.metadata.name === 'kube-admins') as RoleResource;
    expect(seed.version).toBe('v3');
    expect(seed.spec.allow).toEqual({
      kubernetes_groups: ['system:masters', '{{external.trait_name}}'],
      kubernetes_labels: { '*': '*' },
      kubernetes_resources: [{ kind: 'pod', namespace: '*', name: '*', verbs: ['*'] }],
      app_labels: { '*': '*' },
      db_labels: { '*': '*' },
    });
    const user = parsed.docs.find((d) => d.kind === 'user') as UserResource;
    expect(user.spec).toEqual({ roles: ['developers'], traits: { kubernetes_groups: ['dev-team'], kubernetes_users: [], logins: ['alice'] } });
  });

  it('refuses the whole file when a document cannot be taken, naming index, kind, name and field', () => {
    const extra = `---
kind: trusted_cluster
metadata: {name: leaf}
spec: {enabled: true, role_map: [{local: [access], remote: admin}], token: abc, tunnel_addr: leaf.example.com:443, web_proxy_addr: leaf.example.com:443}
version: v2
---
kind: login_rule
metadata: {name: okta-groups}
spec: {priority: 0, traits_expression: 'external.put("groups", external.groups)'}
version: v1
---
kind: token
metadata: {name: node-token}
spec: {roles: [Node], join_method: token}
version: v2
---
kind: role
metadata: {name: moderated}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    require_session_join: [{name: auditor, filter: 'contains(user.roles, "auditor")', kinds: [k8s], count: 1, modes: [moderator]}]
version: v7
---
kind: widget
metadata: {name: w}
version: v1
`;
    const { message, problems } = refusal(DUMP + extra);
    expect(problems.map((p) => [p.document, p.kind, p.name, p.path, p.code])).toEqual([
      [22, 'trusted_cluster', 'leaf', 'kind', 'unsupported'],
      [23, 'login_rule', 'okta-groups', 'kind', 'unsupported'],
      [24, 'token', 'node-token', 'spec.roles[0]', 'unsupported'],
      [25, 'role', 'moderated', 'spec.allow.require_session_join', 'unsupported'],
      [26, 'widget', 'w', 'kind', 'invalid'],
    ]);
    expect(message).toContain('dump.yaml document 22 (trusted_cluster/leaf): kind: trusted_cluster leaf would join another cluster to this one');
    expect(message).toContain('dump.yaml document 23 (login_rule/okta-groups): kind: login_rule okta-groups rewrites the traits of SSO users');
  });

  it('refuses a namespace other than default', () => {
    const { problems } = refusal('kind: namespace\nversion: v2\nmetadata: {name: team-a}\nspec: {}\n');
    expect(problems).toEqual([expect.objectContaining({ document: 1, kind: 'namespace', name: 'team-a', path: 'kind', code: 'unsupported' })]);
  });

  it('prints back (kwctl get) as documents that load again to the same resources', async () => {
    const { formatResources } = await import('./documents.js');
    expect(parseResourceDocuments(formatResources(parsed.docs, 'yaml')).docs).toEqual(parsed.docs);
    expect(parseResourceDocuments(formatResources(parsed.docs, 'json')).docs).toEqual(parsed.docs);
  });
});
