import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { KeywayError } from '@keyway/errors';
import { parseResourceDocuments, type ResourceProblem } from './documents.js';
import { ROLE_VERSIONS } from './role-versions.js';
import { STORED_CONDITION_NAMES } from './teleport-fields.js';
import { validateResourceObject } from './validate.js';
import type { RoleResource, RoleVersion } from './types.js';

const parse = (version: string, spec: string): RoleResource =>
  parseResourceDocuments(`kind: role\nversion: ${version}\nmetadata: {name: r}\nspec: ${spec}\n`).docs[0] as RoleResource;

function problems(version: string, spec: string): ResourceProblem[] {
  try {
    parseResourceDocuments(`kind: role\nversion: ${version}\nmetadata: {name: r}\nspec: ${spec}\n`);
  } catch (err) {
    return (err as KeywayError & { data: { problems: ResourceProblem[] } }).data.problems;
  }
  return [];
}

const ALL_PODS = [{ kind: 'pod', namespace: '*', name: '*', verbs: ['*'] }];
const EVERYTHING_V7 = [{ kind: '*', namespace: '*', name: '*', verbs: ['*'] }];
const EVERYTHING_V8 = [{ kind: '*', namespace: '*', name: '*', verbs: ['*'], api_group: '*' }];
const WILD = { '*': '*' };

describe("Teleport's per-version role defaults", () => {
  // [version, spec as written, the allow block Teleport stores (and kwctl get shows)]
  const cases: [RoleVersion, string, Record<string, unknown>][] = [
    // v3: absent selectors are wildcards; node_labels only with logins.
    ['v3', '{}', { kubernetes_labels: WILD, app_labels: WILD, db_labels: WILD, kubernetes_resources: ALL_PODS }],
    ['v3', '{allow: {logins: [root]}}', { logins: ['root'], node_labels: WILD, kubernetes_labels: WILD, app_labels: WILD, db_labels: WILD, kubernetes_resources: ALL_PODS }],
    ['v3', '{allow: {logins: []}}', { logins: [], kubernetes_labels: WILD, app_labels: WILD, db_labels: WILD, kubernetes_resources: ALL_PODS }],
    ['v3', '{allow: {kubernetes_labels: {}}}', { kubernetes_labels: {}, app_labels: WILD, db_labels: WILD }],
    ['v3', '{allow: {node_labels: {env: dev}, logins: [a]}}', { node_labels: { env: 'dev' }, logins: ['a'], kubernetes_labels: WILD, app_labels: WILD, db_labels: WILD, kubernetes_resources: ALL_PODS }],
    ['v3', "{allow: {kubernetes_labels: {env: dev}, kubernetes_resources: [{kind: pod, namespace: dev, name: '*'}]}}", {
      kubernetes_labels: { env: 'dev' },
      app_labels: WILD,
      db_labels: WILD,
      kubernetes_resources: [{ kind: 'pod', namespace: 'dev', name: '*', verbs: ['*'] }],
    }],
    // kubernetes_groups has no default in any version: it is what was written.
    ['v3', "{allow: {kubernetes_groups: [devs]}}", { kubernetes_groups: ['devs'], kubernetes_labels: WILD, app_labels: WILD, db_labels: WILD, kubernetes_resources: ALL_PODS }],
    // v4, v5: no label defaults; a selector without resources gets every pod.
    ['v4', '{}', {}],
    ['v4', '{allow: {kubernetes_labels: {env: dev}}}', { kubernetes_labels: { env: 'dev' }, kubernetes_resources: ALL_PODS }],
    ['v5', '{allow: {kubernetes_labels: {env: dev}}}', { kubernetes_labels: { env: 'dev' }, kubernetes_resources: ALL_PODS }],
    ['v5', '{allow: {logins: [root]}}', { logins: ['root'] }],
    // v6: verbs default to '*', but no default entry.
    ['v6', '{allow: {kubernetes_labels: {env: dev}}}', { kubernetes_labels: { env: 'dev' } }],
    ['v6', "{allow: {kubernetes_labels: {env: dev}, kubernetes_resources: [{kind: pod, namespace: a, name: b}]}}", {
      kubernetes_labels: { env: 'dev' },
      kubernetes_resources: [{ kind: 'pod', namespace: 'a', name: 'b', verbs: ['*'] }],
    }],
    // v7 / v8: everything, v8 in every API group.
    ['v7', '{allow: {kubernetes_labels: {env: dev}}}', { kubernetes_labels: { env: 'dev' }, kubernetes_resources: EVERYTHING_V7 }],
    ['v7', '{}', {}],
    ['v8', '{allow: {kubernetes_labels: {env: dev}}}', { kubernetes_labels: { env: 'dev' }, kubernetes_resources: EVERYTHING_V8 }],
    ['v8', "{allow: {kubernetes_labels: {env: dev}, kubernetes_resources: [{kind: deployments, api_group: apps, namespace: '*', name: '*', verbs: [get]}]}}", {
      kubernetes_labels: { env: 'dev' },
      kubernetes_resources: [{ kind: 'deployments', api_group: 'apps', namespace: '*', name: '*', verbs: ['get'] }],
    }],
  ];
  it.each(cases)('role %s %s', (version, spec, allow) => {
    const role = parse(version, spec);
    expect(role.version).toBe(version);
    expect(role.spec.allow).toEqual(allow);
    // Deny blocks get no defaults.
    expect(role.spec.deny).toEqual({});
  });

  it("loads the seed's v3 role as written, with v3's defaults", () => {
    const role = parse('v3', "{allow: {kubernetes_groups: ['system:masters', '{{external.trait_name}}']}}");
    expect(role.spec.allow.kubernetes_groups).toEqual(['system:masters', '{{external.trait_name}}']);
    expect(role.spec.allow.kubernetes_labels).toEqual(WILD);
    expect(role.spec.allow.kubernetes_resources).toEqual(ALL_PODS);
  });

  it('keeps v3-v6 to pods with verbs ["*"], v7 to its kinds, and api_group to v8', () => {
    for (const v of ['v3', 'v4', 'v5', 'v6']) {
      expect(problems(v, "{allow: {kubernetes_resources: [{kind: secret, namespace: '*', name: '*'}]}}")).toEqual([
        expect.objectContaining({ path: 'spec.allow.kubernetes_resources[0].kind', message: expect.stringContaining(`role ${v} only supports kind "pod"`) }),
      ]);
      expect(problems(v, "{allow: {kubernetes_resources: [{kind: pod, namespace: '*', name: '*', verbs: [get]}]}}")).toEqual([
        expect.objectContaining({ path: 'spec.allow.kubernetes_resources[0].verbs' }),
      ]);
    }
    expect(problems('v7', "{allow: {kubernetes_resources: [{kind: pod, namespace: '*', name: '*', verbs: [get], api_group: ''}]}}")).toEqual([]);
    expect(problems('v7', "{allow: {kubernetes_resources: [{kind: pod, namespace: '*', name: '*', verbs: [get], api_group: apps}]}}")).toEqual([
      expect.objectContaining({ path: 'spec.allow.kubernetes_resources[0].api_group' }),
    ]);
    expect(problems('v8', "{allow: {kubernetes_resources: [{kind: pod, namespace: '*', name: '*', verbs: [get]}]}}")).toEqual([
      expect.objectContaining({ path: 'spec.allow.kubernetes_resources[0].kind', message: expect.stringContaining('plural') }),
    ]);
  });

  it('refuses a stored field of the wrong type, naming it', () => {
    expect(problems('v7', '{allow: {logins: root}}')).toEqual([expect.objectContaining({ path: 'spec.allow.logins', code: 'invalid' })]);
    expect(problems('v7', '{allow: {node_labels: [a]}}')).toEqual([expect.objectContaining({ path: 'spec.allow.node_labels', code: 'invalid' })]);
  });
});

// ---- properties ----

const word = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
const matcher = fc.oneof(word, fc.constant('*'), word.map((w) => `${w}-*`));
const selector = fc.dictionary(word, fc.oneof(matcher, fc.array(matcher, { minLength: 1, maxLength: 3 })), { maxKeys: 3 });
const template = fc.oneof(word, fc.constantFrom('system:masters', '{{internal.kubernetes_groups}}', '{{external.groups}}', '{{email.local(external.email)}}'));

function kubeResource(version: RoleVersion): fc.Arbitrary<Record<string, unknown>> {
  if (version === 'v3' || version === 'v4' || version === 'v5' || version === 'v6') {
    return fc.record({ kind: fc.constant('pod'), namespace: matcher, name: matcher }, { requiredKeys: ['kind', 'namespace', 'name'] });
  }
  if (version === 'v7') {
    return fc.record({
      kind: fc.constantFrom('pod', 'secret', 'deployment', '*'),
      namespace: matcher,
      name: matcher,
      verbs: fc.constantFrom(['*'], ['get'], ['get', 'list', 'watch']),
    });
  }
  return fc.record({
    kind: fc.constantFrom('pods', 'deployments', '*'),
    api_group: fc.constantFrom('*', 'apps'),
    namespace: matcher,
    name: matcher,
    verbs: fc.constantFrom(['*'], ['get'], ['exec']),
  });
}

function conditions(version: RoleVersion) {
  return fc.record(
    {
      kubernetes_groups: fc.array(template, { maxLength: 3 }),
      kubernetes_users: fc.array(template, { maxLength: 2 }),
      kubernetes_labels: selector,
      kubernetes_resources: fc.array(kubeResource(version), { maxLength: 3 }),
      logins: fc.array(word, { maxLength: 2 }),
      node_labels: selector,
      app_labels: selector,
      db_names: fc.array(word, { maxLength: 2 }),
    },
    { requiredKeys: [] },
  );
}

const role = fc.constantFrom(...ROLE_VERSIONS).chain((version) =>
  fc.record({
    kind: fc.constant('role'),
    version: fc.constant(version),
    metadata: fc.record({ name: word }),
    spec: fc.record(
      {
        options: fc.record({ max_session_ttl: fc.constantFrom('1h', '8h', '30h0m0s'), forward_agent: fc.boolean() }, { requiredKeys: [] }),
        allow: conditions(version),
        deny: conditions(version),
      },
      { requiredKeys: [] },
    ),
  }),
);

describe('role properties', () => {
  it('any valid v3..v8 role parses, and parse → stored JSON → parse gives it back identically', () => {
    fc.assert(
      fc.property(role, (raw) => {
        const first = validateResourceObject(raw);
        // Deny entries of v7 need verbs to be meaningful, but an empty list is still valid.
        expect(first.problems).toEqual([]);
        const stored = JSON.parse(JSON.stringify(first.resource)) as unknown;
        const again = validateResourceObject(stored);
        expect(again.problems).toEqual([]);
        expect(again.resource).toEqual(first.resource);
      }),
      { numRuns: 300 },
    );
  });

  it('an unknown field anywhere in allow, deny or options is always named', () => {
    const unknown = word.filter((w) => !STORED_CONDITION_NAMES.includes(w) && !w.startsWith('kubernetes') && w !== 'rules').map((w) => `x-${w}`);
    fc.assert(
      fc.property(role, unknown, fc.constantFrom('allow', 'deny', 'options'), (raw, field, block) => {
        const spec = { ...(raw.spec as Record<string, Record<string, unknown>>) };
        spec[block] = { ...(spec[block] ?? {}), [field]: 1 };
        const r = validateResourceObject({ ...raw, spec });
        expect(r.resource).toBeUndefined();
        expect(r.problems).toContainEqual(expect.objectContaining({ path: `spec.${block}["${field}"]`, code: 'unknown' }));
      }),
      { numRuns: 200 },
    );
  });
});
