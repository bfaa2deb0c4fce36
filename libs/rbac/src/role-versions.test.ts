import { describe, expect, it } from 'vitest';
import { normalizeRequestPath, parseRequestInfo } from '@keyway/kube';
import { parseResourceDocuments, type RoleResource } from '@keyway/resources';
import { identityKubeGrants } from './grants.js';
import { authorizeKubeRequest, type KubeAccessResult } from './kube.js';
import type { Traits } from './templates.js';

// Roles of every version Teleport accepts, evaluated with the defaults Teleport gives them.

function role(version: string, spec: string, name = `r-${version}`): RoleResource {
  return parseResourceDocuments(`kind: role\nversion: ${version}\nmetadata: {name: ${name}}\nspec: ${spec}\n`).docs[0] as RoleResource;
}

/** The seed's role, as a Teleport user has it: v3, no kubernetes_labels (v3 makes that every cluster). */
const SEED_V3 = role('v3', `
  allow:
    kubernetes_groups: ["system:masters", "{{external.trait_name}}"]
`, 'kube-admins');

const SSO_TRAITS: Traits = { internal: {}, external: { trait_name: ['platform-team'] } };
const CLUSTER = { name: 'prod', labels: { env: 'prod' } };

function authz(roles: RoleResource[], method: string, raw: string, traits: Traits = SSO_TRAITS): KubeAccessResult {
  const n = normalizeRequestPath(raw);
  return authorizeKubeRequest({ username: 'alice@example.com', roles, traits, cluster: CLUSTER, request: parseRequestInfo(method, n.path, n.query) });
}

describe("the seed's v3 role", () => {
  it('grants system:masters and the external trait as impersonated groups, on any cluster', () => {
    const r = authz([SEED_V3], 'GET', '/api/v1/namespaces/kube-system/pods');
    expect(r).toEqual({
      allowed: true,
      kubernetesUser: 'alice@example.com',
      kubernetesGroups: ['platform-team', 'system:authenticated', 'system:masters'],
      impersonatedByClient: false,
      roles: ['kube-admins'],
    });
    // v3 restricts pods only: everything else is the Kubernetes groups' business.
    expect(authz([SEED_V3], 'DELETE', '/apis/apps/v1/namespaces/default/deployments/web').allowed).toBe(true);
    expect(authz([SEED_V3], 'GET', '/api/v1/nodes').allowed).toBe(true);
  });

  it('puts the same groups in the certificate', () => {
    expect(identityKubeGrants([SEED_V3], SSO_TRAITS).kubernetesGroups).toEqual(['platform-team', 'system:masters']);
  });
});

describe('kubernetes_resources per version', () => {
  const pods = '/api/v1/namespaces/dev/pods';
  const secrets = '/api/v1/namespaces/dev/secrets';
  // [version, spec, may list pods in dev, may list secrets in dev]
  const cases: [string, string, boolean, boolean][] = [
    ['v3', '{allow: {kubernetes_groups: [g]}}', true, true],
    ['v4', "{allow: {kubernetes_labels: {env: prod}, kubernetes_groups: [g]}}", true, true],
    ['v5', "{allow: {kubernetes_labels: {env: prod}, kubernetes_resources: [{kind: pod, namespace: other, name: '*'}]}}", false, true],
    // v6 gets no default entry: pods are out of reach, the rest is not restricted.
    ['v6', "{allow: {kubernetes_labels: {env: prod}}}", false, true],
    ['v6', "{allow: {kubernetes_labels: {env: prod}, kubernetes_resources: [{kind: pod, namespace: dev, name: '*'}]}}", true, true],
    ['v7', "{allow: {kubernetes_labels: {env: prod}}}", true, true],
    ['v7', "{allow: {kubernetes_labels: {env: prod}, kubernetes_resources: [{kind: pod, namespace: dev, name: '*', verbs: [list]}]}}", true, false],
    ['v8', "{allow: {kubernetes_labels: {env: prod}}}", true, true],
    ['v8', "{allow: {kubernetes_labels: {env: prod}, kubernetes_resources: [{kind: secrets, namespace: dev, name: '*', verbs: [list]}]}}", false, true],
    // v4+ roles have no wildcard cluster selector by default: no cluster at all.
    ['v4', '{allow: {kubernetes_groups: [g]}}', false, false],
  ];
  it.each(cases)('role %s %s: pods %s, secrets %s', (version, spec, podsOk, secretsOk) => {
    const r = role(version, spec);
    expect(authz([r], 'GET', pods).allowed).toBe(podsOk);
    expect(authz([r], 'GET', secrets).allowed).toBe(secretsOk);
  });

  it('a v3 deny entry on pods applies with its default verbs', () => {
    const denyPods = role('v3', "{deny: {kubernetes_resources: [{kind: pod, namespace: dev, name: '*'}]}}", 'no-dev-pods');
    expect(denyPods.spec.deny.kubernetes_resources).toEqual([{ kind: 'pod', namespace: 'dev', name: '*', verbs: ['*'] }]);
    expect(authz([SEED_V3, denyPods], 'GET', pods).allowed).toBe(false);
    expect(authz([SEED_V3, denyPods], 'GET', '/api/v1/namespaces/other/pods').allowed).toBe(true);
  });

  it('fields of services Keyway does not have change nothing for Kubernetes', () => {
    const withSsh = role('v7', "{allow: {logins: [root], node_labels: {'*': '*'}, db_labels: {'*': '*'}, kubernetes_labels: {env: prod}, kubernetes_resources: [{kind: pod, namespace: dev, name: '*', verbs: [get]}]}}");
    expect(authz([withSsh], 'GET', '/api/v1/namespaces/dev/pods/p').allowed).toBe(true);
    expect(authz([withSsh], 'GET', secrets).allowed).toBe(false);
  });
});
