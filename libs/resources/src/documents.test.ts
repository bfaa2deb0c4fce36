import { describe, expect, it } from 'vitest';
import { isBadParameter, type KeywayError } from '@keyway/errors';
import { formatResources, parseResourceDocuments, type ResourceProblem } from './documents.js';
import type { Resource, RoleResource, UserResource } from './types.js';

const SEED_USER = `kind: user
version: v2
metadata:
  name: jimbo
spec:
  roles: ['junior-devs']
  traits:
    kubernetes_groups: ['teleport-view']
`;

const DESIGN_ROLE = `kind: role
version: v7
metadata: {name: junior-devs}
spec:
  options: {max_session_ttl: 8h}
  allow:
    kubernetes_labels: {env: [dev, staging]}      # '*' wildcard, '^re$' regex; empty = no access
    kubernetes_groups: ['teleport-view', '{{internal.kubernetes_groups}}', '{{external.k8s_groups}}']
    kubernetes_users: ['{{internal.kubernetes_users}}']
    kubernetes_resources:
      - {kind: pod, namespace: dev, name: '*', verbs: [get, list, watch, exec]}
  deny: {}
`;

/** Runs parseResourceDocuments expecting failure; returns the error. */
function failure(text: string, source = 'input'): KeywayError & { data: { problems: ResourceProblem[] } } {
  try {
    parseResourceDocuments(text, source);
  } catch (err) {
    expect(isBadParameter(err)).toBe(true);
    return err as KeywayError & { data: { problems: ResourceProblem[] } };
  }
  throw new Error('expected parseResourceDocuments to fail');
}

function one<T extends Resource>(text: string): T {
  const { docs } = parseResourceDocuments(text);
  expect(docs).toHaveLength(1);
  return docs[0] as T;
}

describe('parseResourceDocuments', () => {
  it('reads the seed user', () => {
    const user = one<UserResource>(SEED_USER);
    expect(user).toEqual({
      kind: 'user',
      version: 'v2',
      metadata: { name: 'jimbo' },
      spec: { roles: ['junior-devs'], traits: { kubernetes_groups: ['teleport-view'] } },
    });
  });

  it('reads the DESIGN.md role', () => {
    const role = one<RoleResource>(DESIGN_ROLE);
    expect(role).toEqual({
      kind: 'role',
      version: 'v7',
      metadata: { name: 'junior-devs' },
      spec: {
        options: { max_session_ttl: '8h' },
        allow: {
          kubernetes_labels: { env: ['dev', 'staging'] },
          kubernetes_groups: ['teleport-view', '{{internal.kubernetes_groups}}', '{{external.k8s_groups}}'],
          kubernetes_users: ['{{internal.kubernetes_users}}'],
          kubernetes_resources: [{ kind: 'pod', namespace: 'dev', name: '*', verbs: ['get', 'list', 'watch', 'exec'] }],
        },
        deny: {},
      },
    });
  });

  it('names the Teleport field Keyway does not support', () => {
    const err = failure(
      `kind: role
version: v7
metadata: {name: junior-devs}
spec:
  allow:
    impersonate: {users: [alice], roles: [access]}
    kubernetes_labels_expression: 'labels.env == "dev"'
    kubernetes_labels: {'*': '*'}
`,
      'roles.yaml',
    );
    expect(err.message).toContain(
      'roles.yaml document 1 (role/junior-devs): spec.allow.impersonate is a Teleport field Keyway does not support yet',
    );
    expect(err.message).toContain('spec.allow.kubernetes_labels_expression is a Teleport field Keyway does not support yet');
    expect(err.data.problems).toEqual([
      expect.objectContaining({ document: 1, kind: 'role', name: 'junior-devs', path: 'spec.allow.kubernetes_labels_expression', code: 'unsupported' }),
      expect.objectContaining({ document: 1, kind: 'role', name: 'junior-devs', path: 'spec.allow.impersonate', code: 'unsupported' }),
    ]);
  });

  it('stores fields of services Keyway does not have yet, with a note', () => {
    const text = `kind: role
version: v7
metadata: {name: junior-devs}
spec:
  allow:
    logins: ['{{internal.logins}}', root]
    node_labels: {'*': '*'}
    kubernetes_labels: {'*': '*'}
  options: {forward_agent: true, cert_format: standard}
`;
    const parsed = parseResourceDocuments(text, 'roles.yaml');
    const role = parsed.docs[0] as RoleResource;
    expect(role.spec.allow).toMatchObject({ logins: ['{{internal.logins}}', 'root'], node_labels: { '*': '*' } });
    expect(role.spec.options).toMatchObject({ forward_agent: true, cert_format: 'standard' });
    expect(parsed.notes).toEqual([
      'roles.yaml document 1 (role/junior-devs): spec.allow.logins is stored as written; it takes effect when Keyway has SSH access',
      'roles.yaml document 1 (role/junior-devs): spec.allow.node_labels is stored as written; it takes effect when Keyway has SSH access',
      'roles.yaml document 1 (role/junior-devs): spec.options.forward_agent is stored as written; it takes effect when Keyway has SSH access',
    ]);
    // kwctl get prints them where they were written.
    const printed = parseResourceDocuments(formatResources([role], 'yaml')).docs[0] as RoleResource;
    expect(printed).toEqual(role);
    expect(formatResources([role], 'yaml')).toMatch(/allow:\n(.*\n)*    logins:\n/);
  });

  it('tells unknown fields apart from unsupported Teleport fields', () => {
    const err = failure(`kind: role
version: v7
metadata: {name: r, colour: blue}
spec:
  allow:
    foo: bar
    kubernetes_resources: [{kind: pod, namespace: '*', name: '*', verb: [get]}]
    rules:
      - {resources: [user], verbs: [read], where: 'contains(user.spec.roles, "x")'}
  options: {max_session_ttl: 1h, require_session_mfa: true, teleport_magic: 1}
stray: 1
`);
    const byPath = Object.fromEntries(err.data.problems.map((p) => [p.path, p.code]));
    expect(byPath).toEqual({
      stray: 'unknown',
      'metadata.colour': 'unknown',
      'spec.allow.foo': 'unknown',
      'spec.allow.kubernetes_resources[0].verb': 'unknown',
      'spec.allow.rules[0].where': 'unsupported',
      'spec.options.require_session_mfa': 'unsupported',
      'spec.options.teleport_magic': 'unknown',
    });
    expect(err.message).toContain('input document 1 (role/r): unknown field spec.allow.foo');
    expect(err.message).toContain('unknown field spec.allow.kubernetes_resources[0].verb');
  });

  it('rejects a bad duration, naming the field and value', () => {
    const err = failure(`kind: role
version: v7
metadata: {name: r}
spec:
  options: {max_session_ttl: 7d}
`);
    expect(err.message).toBe(
      'input document 1 (role/r): spec.options.max_session_ttl: invalid duration "7d": unknown unit "d" (use h, m, s, ms, us or ns)',
    );
    expect(failure('kind: role\nversion: v7\nmetadata: {name: r}\nspec: {options: {max_session_ttl: 3600}}\n').message).toContain(
      'spec.options.max_session_ttl: must be a duration string',
    );
    expect(failure('kind: role\nversion: v7\nmetadata: {name: r}\nspec: {options: {max_session_ttl: -1h}}\n').message).toContain(
      'is negative',
    );
  });

  it('rejects a duration beyond Go\'s range instead of storing a corrupted one', () => {
    expect(failure('kind: role\nversion: v7\nmetadata: {name: r}\nspec: {options: {max_session_ttl: 99999999999999999h}}\n').message).toBe(
      'input document 1 (role/r): spec.options.max_session_ttl: invalid duration "99999999999999999h": out of range (the longest duration is 2562047h47m16.854775807s, about 292 years)',
    );
    const longest = one<RoleResource>('kind: role\nversion: v7\nmetadata: {name: r}\nspec: {options: {max_session_ttl: 2562047h}}\n');
    expect(longest.spec.options.max_session_ttl).toBe('2562047h');
    expect(parseResourceDocuments(formatResources([longest], 'yaml')).docs).toEqual([longest]);
  });

  it('reports every invalid document with its number, in one error', () => {
    const err = failure(
      `${SEED_USER}---
kind: role
version: v7
metadata: {name: junior-devs}
spec:
  allow:
    kubernetes_groups: 'teleport-view'
---
kind: token
version: v2
metadata: {name: abc}
spec: {roles: [Node]}
`,
      'bundle.yaml',
    );
    expect(err.message.split('\n')).toEqual([
      'bundle.yaml document 2 (role/junior-devs): spec.allow.kubernetes_groups: must be a list, not the string "teleport-view"',
      'bundle.yaml document 3 (token/abc): spec.roles[0]: "Node" is a Teleport role Keyway join tokens do not support yet (use "Kube" or "Proxy")',
    ]);
    expect(err.data.problems.map((p) => [p.document, p.kind, p.name, p.path, p.line])).toEqual([
      [2, 'role', 'junior-devs', 'spec.allow.kubernetes_groups', 10],
      [3, 'token', 'abc', 'spec.roles[0]', 17],
    ]);
  });

  it('skips empty documents and accepts JSON, single or as an array', () => {
    expect(parseResourceDocuments('').docs).toEqual([]);
    expect(parseResourceDocuments(`---\n# nothing\n---\n${SEED_USER}---\n`).docs).toHaveLength(1);
    const user = one<UserResource>(SEED_USER);
    expect(parseResourceDocuments(JSON.stringify(user)).docs).toEqual([user]);
    const role = one<RoleResource>(DESIGN_ROLE);
    expect(parseResourceDocuments(JSON.stringify([user, role], null, 2)).docs).toEqual([user, role]);
    const err = failure(JSON.stringify([user, { ...role, spec: { allow: { rules: [{ resources: [] }] } } }]));
    expect(err.message).toContain('input document 2 (role/junior-devs): spec.allow.rules[0].resources: must list at least one resource');
    expect(err.message).toContain('spec.allow.rules[0].verbs is required');
  });

  it('reports YAML syntax errors and non-resources', () => {
    expect(failure('kind: user\nmetadata: {name: [}\n').data.problems[0]).toMatchObject({ document: 1, code: 'syntax' });
    expect(failure('kind: user\nkind: role\n').message).toMatch(/document 1 \(\?\/\?\): YAML: Map keys must be unique/);
    expect(failure('just a string').message).toBe(
      'input document 1 (?/?): a resource must be a mapping with kind, version, metadata and spec, not the string "just a string"',
    );
    expect(failure('kind: widget\nmetadata: {name: w}\n').message).toContain('kind: unknown kind "widget"; expected one of: user, role');
    expect(failure('metadata: {name: w}\n').message).toContain('(?/w): kind is required');
  });

  it('checks kinds, versions and names', () => {
    const user = (extra: string) => `kind: Users\n${extra}\nspec: {roles: [a]}\n`;
    expect(one<UserResource>(user('version: v2\nmetadata: {name: a@example.com}')).kind).toBe('user');
    expect(failure(user('metadata: {name: a}')).message).toContain('(user/a): version is required (user supports v2)');
    expect(failure(user('version: v3\nmetadata: {name: a}')).message).toContain('version: "v3" is not a supported user version (v2)');
    expect(failure('kind: role\nversion: v2\nmetadata: {name: a}\n').data.problems[0]).toMatchObject({
      path: 'version',
      code: 'invalid',
      message: '"v2" is not a supported role version (v7, v8, v6, v5, v4, v3)',
    });
    expect(failure(user('version: v2\nmetadata: {name: a/b}')).message).toContain('metadata.name: must not contain "/"');
    expect(failure(user('version: v2\nmetadata: {name: ""}')).message).toContain('metadata.name: must not be empty');
    expect(failure(user('version: v2\nmetadata: {name: "a b"}')).message).toContain('is not a valid name');
    expect(failure(user(`version: v2\nmetadata: {name: ${'a'.repeat(254)}}`)).message).toContain('at most 253 characters');
    expect(failure(user('version: v2\nmetadata: {labels: {a: b}}')).message).toContain('metadata.name is required');
    expect(failure(user('version: v2\nmetadata: {name: a, expires: tomorrow}')).message).toContain(
      'metadata.expires: "tomorrow" is not an RFC 3339 timestamp',
    );
    expect(failure('kind: role\nversion: v7\nmetadata: {name: "keyway:admin"}\n').message).toBe(
      'input document 1 (role/keyway:admin): metadata.name: role names starting with "keyway:" are reserved for built-in roles',
    );
    expect(failure(`${SEED_USER}---\n${SEED_USER}`).message).toBe(
      'input document 2 (user/jimbo): metadata.name: user/jimbo is already defined by document 1',
    );
  });

  it('re-creates a `tctl get users` dump, dropping read-only fields', () => {
    const user = one<UserResource>(`kind: user
metadata:
  id: 1690000000000000000
  name: alice
  revision: 3f8e2a8c-0d1e-4b7a-9f57-2b0d3c1a9e10
spec:
  created_by:
    time: "2023-07-21T10:00:00.123456789Z"
    user:
      name: admin
  expires: "0001-01-01T00:00:00Z"
  roles:
  - access
  - editor
  status:
    is_locked: false
    lock_expires: "0001-01-01T00:00:00Z"
    locked_time: "0001-01-01T00:00:00Z"
    recovery_attempt_lock_expires: "0001-01-01T00:00:00Z"
  traits:
    kubernetes_groups: null
    logins:
    - alice
  github_identities:
  - connector_id: github
    username: alice-gh
  trusted_device_ids: []
status:
  password_state: 1
version: v2
`);
    expect(user).toEqual({
      kind: 'user',
      version: 'v2',
      metadata: { name: 'alice', revision: '3f8e2a8c-0d1e-4b7a-9f57-2b0d3c1a9e10' },
      spec: {
        roles: ['access', 'editor'],
        traits: { logins: ['alice'] },
        github_identities: [{ connector_id: 'github', username: 'alice-gh' }],
      },
    });
    const sso = one<UserResource>('kind: user\nversion: v2\nmetadata: {name: bob}\nspec: {expires: "2030-01-01T00:00:00Z"}\n');
    expect(sso.metadata.expires).toBe('2030-01-01T00:00:00.000Z');
    expect(sso.spec).toEqual({ roles: [], traits: {} });
    expect(failure('kind: user\nversion: v2\nmetadata: {name: bob}\nspec: {local_auth: {password_hash: eA==}}\n').message).toContain(
      'spec.local_auth is a Teleport field Keyway does not support yet',
    );
  });

  it('accepts a role as tctl prints it, with Teleport defaults that change nothing', () => {
    const role = one<RoleResource>(`kind: role
metadata:
  name: kube-access
  labels: {teleport.dev/origin: dynamic}
spec:
  allow:
    kubernetes_groups:
    - '{{internal.kubernetes_groups}}'
    kubernetes_labels:
      '*': '*'
    logins: []
    namespaces: [default]
    node_labels: {}
    rules:
    - resources: [event]
      verbs: [list, read]
  deny: {}
  options:
    cert_format: standard
    create_db_user: false
    create_desktop_user: false
    desktop_clipboard: true
    desktop_directory_sharing: true
    enhanced_recording:
    - command
    - network
    forward_agent: false
    idp:
      saml:
        enabled: true
    max_session_ttl: 30h0m0s
    pin_source_ip: false
    port_forwarding: true
    record_session:
      default: best_effort
      desktop: true
    ssh_file_copy: true
version: v7
`);
    // Teleport's defaults for SSH, desktops and databases are stored as printed; the ones
    // bearing on Kubernetes (namespaces, pin_source_ip, record_session) change nothing and are dropped.
    expect(role.spec).toEqual({
      options: {
        max_session_ttl: '30h',
        cert_format: 'standard',
        create_db_user: false,
        create_desktop_user: false,
        desktop_clipboard: true,
        desktop_directory_sharing: true,
        enhanced_recording: ['command', 'network'],
        forward_agent: false,
        idp: { saml: { enabled: true } },
        port_forwarding: true,
        ssh_file_copy: true,
      },
      allow: {
        kubernetes_groups: ['{{internal.kubernetes_groups}}'],
        kubernetes_labels: { '*': '*' },
        kubernetes_resources: [{ kind: '*', namespace: '*', name: '*', verbs: ['*'] }],
        rules: [{ resources: ['event'], verbs: ['list', 'read'] }],
        logins: [],
        node_labels: {},
      },
      deny: {},
    });
    expect(role.metadata.labels).toEqual({ 'teleport.dev/origin': 'dynamic' });
  });

  it('fills Teleport defaults per role version', () => {
    const role = (version: string, allow: string) =>
      one<RoleResource>(`kind: role\nversion: ${version}\nmetadata: {name: r}\nspec: {allow: ${allow}}\n`);
    expect(role('v7', '{}').spec).toEqual({ options: { max_session_ttl: '30h' }, allow: {}, deny: {} });
    // Teleport gives v6 no default entry (v3-v5 get every pod): role-versions.test.ts has them all.
    expect(role('v6', "{kubernetes_labels: {env: dev}}").spec.allow.kubernetes_resources).toBeUndefined();
    expect(role('v6', "{kubernetes_labels: {env: dev}, kubernetes_resources: [{kind: pod, namespace: a, name: b}]}").spec.allow.kubernetes_resources).toEqual([
      { kind: 'pod', namespace: 'a', name: 'b', verbs: ['*'] },
    ]);
    expect(role('v8', "{kubernetes_labels: {env: dev}}").spec.allow.kubernetes_resources).toEqual([
      { kind: '*', api_group: '*', namespace: '*', name: '*', verbs: ['*'] },
    ]);
    expect(role('v8', "{kubernetes_resources: [{kind: deployments, api_group: apps, namespace: '*', name: '*', verbs: [get]}]}").spec.allow.kubernetes_resources).toEqual([
      { kind: 'deployments', api_group: 'apps', namespace: '*', name: '*', verbs: ['get'] },
    ]);
    expect(role('v7', "{kubernetes_labels: {env: dev}, kubernetes_resources: [{kind: namespace, name: dev}]}").spec.allow.kubernetes_resources).toEqual([
      { kind: 'namespace', name: 'dev', verbs: [] },
    ]);
  });

  it('checks kubernetes_resources per role version', () => {
    const err = (version: string, resource: string) =>
      failure(`kind: role\nversion: ${version}\nmetadata: {name: r}\nspec: {allow: {kubernetes_resources: [${resource}]}}\n`).message;
    expect(err('v6', '{kind: deployment, namespace: a, name: b}')).toContain('role v6 only supports kind "pod"');
    expect(err('v7', '{kind: pods, namespace: a, name: b, verbs: [get]}')).toContain('kind "pods" is not one of');
    expect(err('v7', '{kind: pod, name: b, verbs: [get]}')).toContain('spec.allow.kubernetes_resources[0].namespace is required for kind "pod"');
    expect(err('v7', '{kind: pod, namespace: a, verbs: [get]}')).toContain('kubernetes_resources[0].name is required (use "*" for any name)');
    expect(err('v7', '{kind: pod, namespace: a, name: b, verbs: [get, fly]}')).toContain('verb "fly" is not one of');
    expect(err('v7', "{kind: pod, namespace: a, name: b, verbs: ['*', get]}")).toContain('"*" cannot be combined');
    expect(err('v7', '{kind: pod, namespace: a, name: b, api_group: apps, verbs: [get]}')).toContain('api_group is only supported in role v8');
    expect(err('v8', "{kind: pod, namespace: '*', name: '*', verbs: [get]}")).toContain('role v8 uses Kubernetes plural resource names');
    expect(err('v8', "{kind: deployments, namespace: '*', name: '*', verbs: [get]}")).toContain('api_group is required for "deployments"');
  });

  it('checks label selectors and templates in roles', () => {
    const err = (allow: string) => failure(`kind: role\nversion: v7\nmetadata: {name: r}\nspec: {allow: ${allow}}\n`).message;
    expect(err("{kubernetes_labels: {'*': prod}}")).toContain('the "*" key only accepts the value "*"');
    expect(err("{kubernetes_groups: ['{{internal.groups}']}")).toContain('spec.allow.kubernetes_groups[0]: ');
    expect(err("{kubernetes_users: ['{{strings.upper(external.x)}}']}")).toContain('unsupported function strings.upper()');
    expect(err("{kubernetes_labels: {env: '^(dev$'}}")).toContain('spec.allow.kubernetes_labels.env: invalid regular expression');
    expect(err("{kubernetes_resources: [{kind: pod, namespace: '^[$', name: '*'}]}")).toContain(
      'spec.allow.kubernetes_resources[0].namespace: invalid regular expression',
    );
    expect(err('{kubernetes_labels: {env: 3}}')).toContain('spec.allow.kubernetes_labels.env: must be a string or a list of strings');
  });

  it('validates tokens, connectors, kube clusters and locks', () => {
    const bad = (text: string) => failure(text).message;
    expect(bad('kind: token\nversion: v2\nmetadata: {name: t}\nspec: {roles: [Kube], join_method: iam, allow: [{aws_account: "1"}]}\n')).toBe(
      [
        'input document 1 (token/t): spec.allow is a Teleport field Keyway does not support yet (join rules of cloud/CI join methods)',
        'input document 1 (token/t): spec.join_method: "iam" is a Teleport join method Keyway does not support yet (use "token")',
      ].join('\n'),
    );
    expect(bad('kind: token\nversion: v2\nmetadata: {name: t}\nspec: {roles: [Frobnicator]}\n')).toContain('unknown role "Frobnicator"');
    expect(bad('kind: token\nversion: v2\nmetadata: {name: t}\nspec: {roles: []}\n')).toContain('spec.roles: must list at least one role, e.g. [Kube]');
    expect(one('kind: token\nversion: v2\nmetadata: {name: t}\nspec: {roles: [kube, PROXY]}\n')).toMatchObject({
      spec: { roles: ['Kube', 'Proxy'], join_method: 'token' },
    });
    expect(bad('kind: github\nversion: v3\nmetadata: {name: gh}\nspec: {client_id: a, client_secret: b, teams_to_roles: []}\n')).toContain(
      'spec.teams_to_roles: must map at least one team to roles',
    );
    expect(bad('kind: oidc\nversion: v3\nmetadata: {name: o}\nspec: {issuer_url: "not a url", client_id: a, redirect_url: x, claims_to_roles: [{claim: g, value: v, roles: [r]}]}\n')).toContain(
      'spec.issuer_url: "not a url" is not an http(s) URL',
    );
    expect(bad('kind: saml\nversion: v2\nmetadata: {name: s}\nspec: {acs: "https://k/v1/webapi/saml/acs/s", attributes_to_roles: [{name: g, value: v, roles: [r]}]}\n')).toContain(
      'spec.sso is required when neither entity_descriptor nor entity_descriptor_url is set',
    );
    expect(bad('kind: kube_cluster\nversion: v3\nmetadata: {name: k}\nspec: {kubeconfig: "not base64!"}\n')).toContain(
      'spec.kubeconfig: must be a base64-encoded kubeconfig',
    );
    expect(bad('kind: lock\nversion: v2\nmetadata: {name: l}\nspec: {target: {}}\n')).toContain('spec.target: must name a user or a role to lock');
    expect(bad('kind: lock\nversion: v2\nmetadata: {name: l}\nspec: {target: {login: root}}\n')).toBe(
      'input document 1 (lock/l): spec.target.login is a Teleport field Keyway does not support yet (lock targets other than user and role)',
    );
  });
});

/** A deep copy with object keys in Postgres jsonb order: shorter keys first, then bytewise. */
function jsonbOrder(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(jsonbOrder);
  if (typeof v !== 'object' || v === null) return v;
  const keys = Object.keys(v).sort((a, b) => Buffer.byteLength(a) - Buffer.byteLength(b) || Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return Object.fromEntries(keys.map((k) => [k, jsonbOrder((v as Record<string, unknown>)[k])]));
}

/** One valid resource of every kind, written as a person would. */
const EVERY_KIND = `${SEED_USER}---
${DESIGN_ROLE}---
kind: role
version: v6
metadata: {name: legacy, description: "from Teleport 12"}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    rules:
      - {resources: [role, user], verbs: ['*']}
  deny:
    kubernetes_groups: [system:masters]
---
kind: role
version: v8
metadata: {name: v8-role}
spec:
  allow:
    kubernetes_labels: {region: '^us-.*$'}
    kubernetes_resources:
      - {kind: deployments, api_group: apps, namespace: prod, name: '*', verbs: [get, list]}
---
kind: token
version: v2
metadata:
  name: 6f1c3a3e2b9d4c8f
  expires: "2030-01-02T03:04:05Z"
  labels: {team: platform}
spec:
  roles: [Kube]
  join_method: token
---
kind: github
version: v3
metadata: {name: github}
spec:
  client_id: Iv1.abc
  client_secret: s3cr3t
  redirect_url: https://keyway.example.com/v1/webapi/github/callback
  display: GitHub
  endpoint_url: https://github.com
  api_endpoint_url: https://api.github.com
  teams_to_roles:
    - {organization: acme, team: devs, roles: [junior-devs]}
---
kind: oidc
version: v3
metadata: {name: okta}
spec:
  issuer_url: https://acme.okta.com
  client_id: "0oa1"
  client_secret: s3cr3t
  redirect_url: https://keyway.example.com/v1/webapi/oidc/callback
  scope: [groups]
  prompt: none
  claims_to_roles:
    - {claim: groups, value: '^dev-(.*)$', roles: ['$1-devs']}
---
kind: saml
version: v2
metadata: {name: adfs}
spec:
  acs: https://keyway.example.com/v1/webapi/saml/acs/adfs
  entity_descriptor_url: https://adfs.example.com/FederationMetadata/2007-06/FederationMetadata.xml
  service_provider_issuer: https://keyway.example.com/v1/webapi/saml/acs/adfs
  audience: https://keyway.example.com/v1/webapi/saml/acs/adfs
  signing_key_pair:
    private_key: |
      -----BEGIN PRIVATE KEY-----
      MIIE
      -----END PRIVATE KEY-----
    cert: |
      -----BEGIN CERTIFICATE-----
      MIIC
      -----END CERTIFICATE-----
  attributes_to_roles:
    - {name: 'http://schemas.xmlsoap.org/claims/Group', value: Developers, roles: [junior-devs]}
---
kind: kube_cluster
version: v3
metadata:
  name: prod-eu
  labels: {env: prod, region: eu-west-1}
spec:
  kubeconfig: YXBpVmVyc2lvbjogdjEK
---
kind: lock
version: v2
metadata: {name: 0b5f3c1e-8d2a-4f7b-9c6e-1a2b3c4d5e6f}
spec:
  target: {user: jimbo}
  message: Suspicious activity.
  expires: "2030-01-01T00:00:00Z"
  created_by: admin
`;

describe('formatResources', () => {
  const { docs } = parseResourceDocuments(EVERY_KIND, 'every-kind.yaml');

  it('covers every kind', () => {
    expect(new Set(docs.map((d) => d.kind))).toEqual(new Set(['user', 'role', 'token', 'github', 'oidc', 'saml', 'kube_cluster', 'lock']));
  });

  it('round-trips YAML for every kind', () => {
    const yaml = formatResources(docs, 'yaml');
    expect(yaml.split('\n').filter((l) => l === '---')).toHaveLength(docs.length - 1);
    expect(parseResourceDocuments(yaml).docs).toEqual(docs);
    for (const doc of docs) {
      expect(parseResourceDocuments(formatResources([doc], 'yaml')).docs).toEqual([doc]);
    }
    expect(yaml.startsWith('kind: user\nversion: v2\nmetadata:\n  name: jimbo\n')).toBe(true);
  });

  it('prints keys in Teleport\'s order, whatever order they were stored in', () => {
    // Postgres jsonb gives keys back shortest first: `deny` before `allow`, `kind` before `namespace`.
    const stored = docs.map((d) => jsonbOrder(d) as Resource);
    const role = stored.find((d) => d.metadata.name === 'junior-devs')!;
    expect(Object.keys(role.spec)).toEqual(['deny', 'allow', 'options']);
    expect(formatResources([role], 'yaml')).toBe(`kind: role
version: v7
metadata:
  name: junior-devs
spec:
  options:
    max_session_ttl: 8h
  allow:
    kubernetes_groups:
      - teleport-view
      - "{{internal.kubernetes_groups}}"
      - "{{external.k8s_groups}}"
    kubernetes_labels:
      env:
        - dev
        - staging
    kubernetes_resources:
      - kind: pod
        namespace: dev
        name: "*"
        verbs:
          - get
          - list
          - watch
          - exec
    kubernetes_users:
      - "{{internal.kubernetes_users}}"
  deny: {}
`);
    // Every kind: the stored order makes no difference, and the output still round-trips.
    expect(formatResources(stored, 'yaml')).toBe(formatResources(docs, 'yaml'));
    expect(formatResources(stored, 'json')).toBe(formatResources(docs, 'json'));
    expect(parseResourceDocuments(formatResources(stored, 'yaml')).docs).toEqual(docs);
    expect(parseResourceDocuments(formatResources(stored, 'json')).docs).toEqual(docs);
  });

  it('orders metadata, rules, v8 resources and maps; unknown keys keep their order at the end', () => {
    const role = JSON.parse(`{
      "spec": {
        "deny": {"rules": [{"verbs": ["*"], "resources": ["role"]}], "kubernetes_groups": ["system:masters"]},
        "allow": {
          "kubernetes_resources": [{"kind": "deployments", "name": "*", "verbs": ["get"], "api_group": "apps", "namespace": "prod"}],
          "kubernetes_labels": {"region": "eu", "env": "prod"}
        },
        "options": {"max_session_ttl": "8h"},
        "zz_extra": true
      },
      "zeta": 1,
      "kind": "role",
      "alpha": 2,
      "version": "v8",
      "metadata": {"revision": "7", "labels": {"b": "2", "a": "1"}, "expires": "2030-01-01T00:00:00.000Z", "name": "ops", "description": "Ops"}
    }`) as Resource;
    const out = JSON.parse(formatResources([role], 'json'))[0];
    expect(Object.keys(out)).toEqual(['kind', 'version', 'metadata', 'spec', 'zeta', 'alpha']);
    expect(Object.keys(out.metadata)).toEqual(['name', 'description', 'labels', 'expires', 'revision']);
    expect(Object.keys(out.metadata.labels)).toEqual(['a', 'b']);
    expect(Object.keys(out.spec)).toEqual(['options', 'allow', 'deny', 'zz_extra']);
    expect(Object.keys(out.spec.allow)).toEqual(['kubernetes_labels', 'kubernetes_resources']);
    expect(Object.keys(out.spec.allow.kubernetes_labels)).toEqual(['env', 'region']);
    expect(Object.keys(out.spec.allow.kubernetes_resources[0])).toEqual(['kind', 'namespace', 'name', 'verbs', 'api_group']);
    expect(Object.keys(out.spec.deny)).toEqual(['kubernetes_groups', 'rules']);
    expect(Object.keys(out.spec.deny.rules[0])).toEqual(['resources', 'verbs']);
    expect(formatResources([role], 'yaml')).toMatch(/^kind: role\nversion: v8\nmetadata:\n  name: ops\n  description: Ops\n/);
  });

  it('prints JSON as an array, also for one resource', () => {
    expect(JSON.parse(formatResources(docs, 'json'))).toEqual(docs);
    expect(JSON.parse(formatResources([docs[0]!], 'json'))).toEqual([docs[0]]);
    expect(parseResourceDocuments(formatResources(docs, 'json')).docs).toEqual(docs);
    expect(formatResources([], 'json')).toBe('[]\n');
  });

  it('prints a table per kind', () => {
    const text = formatResources(docs, 'text');
    expect(text).toContain(
      ['User   Roles        Expires', '-----  -----------  -------', 'jimbo  junior-devs  never'].join('\n'),
    );
    expect(text).toMatch(/Role\s+Kubernetes Labels\s+Kubernetes Groups\s+Kubernetes Users\s+Max Session TTL\n/);
    expect(text).toMatch(/junior-devs\s+env=\[dev,staging\]\s+teleport-view,\{\{internal\.kubernetes_groups\}\},\{\{external\.k8s_groups\}\}\s+\{\{internal\.kubernetes_users\}\}\s+8h\n/);
    expect(text).toMatch(/Token\s+Type\s+Expires\n[- ]+\n6f1c3a3e2b9d4c8f\s+Kube\s+2030-01-02T03:04:05Z\n/);
    expect(text).toMatch(/prod-eu\s+env=prod region=eu-west-1\n/);
    expect(text).toMatch(/ID\s+Target\s+Message\s+Expires\n[- ]+\n0b5f3c1e-8d2a-4f7b-9c6e-1a2b3c4d5e6f\s+user=jimbo\s+Suspicious activity\.\s+2030-01-01T00:00:00Z\n/);
    expect(text).toMatch(/github\s+GitHub\s+Iv1\.abc\s+acme\/devs=junior-devs\n/);
    expect(formatResources([], 'text')).toBe('');
  });
});
