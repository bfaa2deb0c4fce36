import { describe, expect, it } from 'vitest';
import { normalizeRequestPath, parseRequestInfo, type RequestInfo } from '@keyway/kube';
import { parseResourceDocuments, type RoleResource } from '@keyway/resources';
import {
  authorizeKubeRequest,
  kubeLabelsMatch,
  matchKubePattern,
  visibleKubeClusters,
  type KubeAccessInput,
  type KubeAccessResult,
  type KubeClusterInfo,
} from './kube.js';
import { ACCESS_ROLE } from './presets.js';
import type { Traits } from './templates.js';

function role(name: string, spec: string, version = 'v7'): RoleResource {
  return parseResourceDocuments(`kind: role\nversion: ${version}\nmetadata: {name: ${name}}\nspec: ${spec}\n`).docs[0] as RoleResource;
}

/** The seed role of DESIGN.md / the brief. */
const JUNIOR_DEVS = parseResourceDocuments(`kind: role
version: v7
metadata: {name: junior-devs}
spec:
  options: {max_session_ttl: 8h}
  allow:
    kubernetes_labels: {env: [dev, staging]}
    kubernetes_groups: ['{{internal.kubernetes_groups}}']
    kubernetes_resources:
      - {kind: pod, namespace: default, name: '*', verbs: [get, list, watch]}
  deny: {}
`).docs[0] as RoleResource;

const JIMBO_TRAITS: Traits = { internal: { kubernetes_groups: ['teleport-view'] }, external: {} };
const DEV = { name: 'kubernetes', labels: { env: 'dev' } };

function req(method: string, raw: string): RequestInfo {
  const n = normalizeRequestPath(raw);
  return parseRequestInfo(method, n.path, n.query);
}

function authz(roles: RoleResource[], method: string, raw: string, extra: Partial<KubeAccessInput> = {}): KubeAccessResult {
  return authorizeKubeRequest({ username: 'jimbo', roles, traits: JIMBO_TRAITS, cluster: DEV, request: req(method, raw), ...extra });
}

function allowed(r: KubeAccessResult): Extract<KubeAccessResult, { allowed: true }> {
  if (!r.allowed) throw new Error(`expected allowed, got: ${r.message}`);
  return r;
}

function denied(r: KubeAccessResult): Extract<KubeAccessResult, { allowed: false }> {
  if (r.allowed) throw new Error(`expected denied, got allowed as ${r.kubernetesUser}`);
  expect(r.status).toBe(403);
  return r;
}

type Case = [method: string, path: string, allow: boolean, message?: RegExp];

function table(roles: RoleResource[], cases: Case[], extra: Partial<KubeAccessInput> = {}) {
  it.each(cases)('%s %s → %s', (method, path, allow, message) => {
    const r = authz(roles, method, path, extra);
    if (r.allowed !== allow) throw new Error(`expected ${allow ? 'allowed' : 'denied'}: ${r.allowed ? 'allowed' : r.message}`);
    if (message) expect(r.allowed ? '' : r.message).toMatch(message);
  });
}

describe('authorizeKubeRequest: the seed role junior-devs', () => {
  it('lets jimbo read pods in default as himself with the teleport-view group', () => {
    expect(authz([JUNIOR_DEVS], 'GET', '/api/v1/namespaces/default/pods')).toEqual({
      allowed: true,
      kubernetesUser: 'jimbo',
      kubernetesGroups: ['system:authenticated', 'teleport-view'],
      impersonatedByClient: false,
      roles: ['junior-devs'],
    });
  });

  it('explains a denial the way kubectl will print it', () => {
    const r = denied(authz([JUNIOR_DEVS], 'GET', '/api/v1/namespaces/kube-system/secrets'));
    expect(r.message).toBe(
      'keyway: user "jimbo" with roles [junior-devs] may not list secrets in namespace "kube-system" on cluster "kubernetes": ' +
        'no kubernetes_resources rule of roles [junior-devs] allows it',
    );
    expect(r.rule).toBeUndefined();
  });

  table(
    [JUNIOR_DEVS],
    [
      // discovery is open to anyone who may use the cluster
      ['GET', '/api', true],
      ['GET', '/api/v1', true],
      ['GET', '/apis', true],
      ['GET', '/apis/apps/v1', true],
      ['GET', '/version', true],
      ['GET', '/openapi/v2', true],
      ['GET', '/openapi/v3/apis/apps/v1?hash=1', true],
      // pods in default
      ['GET', '/api/v1/namespaces/default/pods', true],
      ['GET', '/api/v1/namespaces/default/pods?watch=1', true],
      ['GET', '/api/v1/watch/namespaces/default/pods', true],
      ['GET', '/api/v1/namespaces/default/pods/web-1', true],
      ['GET', '/api/v1/namespaces/default/pods/web-1/log?follow=true', true],
      ['HEAD', '/api/v1/namespaces/default/pods/web-1', true],
      ['POST', '/api/v1/namespaces/default/pods', false, /may not create pods in namespace "default"/],
      ['DELETE', '/api/v1/namespaces/default/pods/web-1', false, /may not delete pod "web-1" in namespace "default"/],
      ['DELETE', '/api/v1/namespaces/default/pods', false, /may not deletecollection pods/],
      ['PATCH', '/api/v1/namespaces/default/pods/web-1', false],
      ['POST', '/api/v1/namespaces/default/pods/web-1/exec?command=sh', false, /may not exec into pod "web-1" in namespace "default"/],
      ['POST', '/api/v1/namespaces/default/pods/web-1/attach', false, /exec into pod/],
      ['POST', '/api/v1/namespaces/default/pods/web-1/portforward', false, /may not port-forward to pod "web-1"/],
      ['POST', '/api/v1/namespaces/default/pods/web-1/eviction', false, /may not create eviction of pod "web-1"/],
      // elsewhere
      ['GET', '/api/v1/namespaces/dev/pods', false, /list pods in namespace "dev"/],
      ['GET', '/api/v1/pods', false, /may not list pods in all namespaces .*namespace: '\*'.*-n/],
      ['GET', '/api/v1/pods?watch=true', false, /may not watch pods in all namespaces/],
      ['GET', '/api/v1/namespaces/default/secrets/db', false, /may not get secret "db" in namespace "default"/],
      ['GET', '/api/v1/namespaces/default/configmaps', false],
      ['GET', '/apis/apps/v1/namespaces/default/deployments', false, /list deployments in namespace "default"/],
      ['GET', '/api/v1/nodes', false, /may not list nodes on cluster "kubernetes"/],
      ['GET', '/apis/example.com/v1/namespaces/default/widgets', false, /list widgets.example.com in namespace "default"/],
      // the namespace the pods live in may be read, not changed, not listed
      ['GET', '/api/v1/namespaces/default', true],
      ['GET', '/api/v1/watch/namespaces/default', true],
      ['GET', '/api/v1/namespaces/kube-system', false, /may not get namespace "kube-system" on cluster/],
      ['DELETE', '/api/v1/namespaces/default', false, /may not delete namespace "default"/],
      ['PUT', '/api/v1/namespaces/default/finalize', false, /may not update finalize of namespace "default"/],
      ['GET', '/api/v1/namespaces', false, /may not list namespaces on cluster/],
      // methods kube does not map to a verb
      ['OPTIONS', '/api/v1/namespaces/default/pods/web-1', false, /unsupported method/],
    ],
  );

  it('applies to dev and staging clusters only', () => {
    expect(allowed(authorizeKubeRequest({ username: 'jimbo', roles: [JUNIOR_DEVS], traits: JIMBO_TRAITS, cluster: { name: 'stg', labels: { env: 'staging', region: 'eu' } }, request: req('GET', '/api/v1/namespaces/default/pods') })).kubernetesUser).toBe('jimbo');
    const others: KubeClusterInfo[] = [
      { name: 'prod', labels: { env: 'prod' } },
      { name: 'bare', labels: {} },
    ];
    for (const cluster of others) {
      for (const path of ['/api/v1/namespaces/default/pods', '/api', '/version']) {
        const r = denied(authorizeKubeRequest({ username: 'jimbo', roles: [JUNIOR_DEVS], traits: JIMBO_TRAITS, cluster, request: req('GET', path) }));
        expect(r.message).toBe(`keyway: user "jimbo" with roles [junior-devs] has no access to cluster "${cluster.name}": no kubernetes_labels of roles [junior-devs] match it`);
      }
    }
    expect(denied(authorizeKubeRequest({ username: 'nobody', roles: [], traits: JIMBO_TRAITS, cluster: DEV, request: req('GET', '/api') })).message).toBe(
      'keyway: user "nobody" with roles [] has no access to cluster "kubernetes": the user has no roles',
    );
  });
});

describe('authorizeKubeRequest: kubernetes_resources', () => {
  describe('exec and portforward are verbs of their own', () => {
    const exec = role('exec', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: pod, namespace: default, name: 'web-*', verbs: [get, exec]}]}}");
    const pf = role('pf', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [portforward]}]}}");
    table(
      [exec],
      [
        ['POST', '/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true', true],
        ['GET', '/api/v1/namespaces/default/pods/web-1/exec?command=sh', true],
        ['POST', '/api/v1/namespaces/default/pods/web-1/attach', true],
        ['POST', '/api/v1/namespaces/default/pods/db-1/exec', false, /exec into pod "db-1"/],
        ['POST', '/api/v1/namespaces/default/pods/web-1/portforward', false],
        ['GET', '/api/v1/namespaces/default/pods/web-1/log', true],
        ['POST', '/api/v1/namespaces/default/pods', false],
      ],
    );
    table(
      [pf],
      [
        ['POST', '/api/v1/namespaces/default/pods/web-1/portforward?ports=80', true],
        ['GET', '/api/v1/namespaces/default/pods/web-1/portforward', true],
        ['POST', '/api/v1/namespaces/default/pods/web-1/exec', false],
        ['GET', '/api/v1/namespaces/default/pods/web-1', false],
      ],
    );
  });

  describe('deny wins over allow', () => {
    const all = role('all', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_groups: [admins]}}");
    const noKubeSystemSecrets = role('no-ks-secrets', "{deny: {kubernetes_resources: [{kind: secret, namespace: kube-system, name: '*', verbs: ['*']}]}}");
    const noProdDb = role('no-prod-db', "{deny: {kubernetes_resources: [{kind: secret, namespace: '*', name: 'prod-*', verbs: [get, list, watch]}]}}");
    table(
      [all, noKubeSystemSecrets, noProdDb],
      [
        ['GET', '/api/v1/namespaces/kube-system/secrets/token', false, /denied by the deny rule \{kind: secret, namespace: kube-system, name: '\*', verbs: \['\*'\]\} of role "no-ks-secrets"$/],
        ['DELETE', '/api/v1/namespaces/kube-system/secrets/token', false],
        ['GET', '/api/v1/namespaces/kube-system/secrets', false],
        ['GET', '/api/v1/namespaces/kube-system/pods', true],
        ['GET', '/api/v1/namespaces/default/secrets/app', true],
        ['GET', '/api/v1/namespaces/default/secrets/prod-db', false, /deny rule \{kind: secret, namespace: '\*', name: 'prod-\*', verbs: \[get, list, watch\]\} of role "no-prod-db"$/],
        ['DELETE', '/api/v1/namespaces/default/secrets/prod-db', true],
        // A list would include denied objects and Keyway does not filter: refused, and said so.
        ['GET', '/api/v1/namespaces/default/secrets', false, /of role "no-prod-db", which covers part of this collection \(Keyway does not filter collections\)/],
        ['GET', '/api/v1/secrets', false, /list secrets in all namespaces .*covers part of this collection/],
        ['GET', '/api/v1/namespaces/default/configmaps', true],
        ['GET', '/api/v1/namespaces/kube-system/configmaps', true],
        ['GET', '/api/v1/configmaps', true],
      ],
    );

    it('names the rule and role', () => {
      const r = denied(authz([all, noKubeSystemSecrets], 'GET', '/api/v1/namespaces/kube-system/secrets/token'));
      expect(r).toMatchObject({ rule: 'spec.deny.kubernetes_resources[0]', role: 'no-ks-secrets' });
      expect(r.message).toBe(
        'keyway: user "jimbo" with roles [all, no-ks-secrets] may not get secret "token" in namespace "kube-system" on cluster "kubernetes": ' +
          `denied by the deny rule {kind: secret, namespace: kube-system, name: '*', verbs: ['*']} of role "no-ks-secrets"`,
      );
    });

    it('applies deny rules of roles that do not match the cluster, and deny entries without verbs deny every verb', () => {
      const elsewhere = role('elsewhere', "{allow: {kubernetes_labels: {env: prod}}, deny: {kubernetes_resources: [{kind: configmap, namespace: '*', name: '*'}]}}");
      denied(authz([all, elsewhere], 'GET', '/api/v1/namespaces/default/configmaps/x'));
      denied(authz([all, elsewhere], 'DELETE', '/api/v1/namespaces/default/configmaps/x'));
      allowed(authz([all, elsewhere], 'GET', '/api/v1/namespaces/default/pods/x'));
    });

    it('denies a whole namespace with kind namespace', () => {
      const noKubeSystem = role('no-kube-system', '{deny: {kubernetes_resources: [{kind: namespace, name: kube-system, verbs: ["*"]}]}}');
      const roles = [all, noKubeSystem];
      denied(authz(roles, 'GET', '/api/v1/namespaces/kube-system/pods/x'));
      denied(authz(roles, 'GET', '/apis/example.com/v1/namespaces/kube-system/widgets'));
      denied(authz(roles, 'DELETE', '/api/v1/namespaces/kube-system'));
      denied(authz(roles, 'GET', '/api/v1/pods'));
      allowed(authz(roles, 'GET', '/api/v1/namespaces/default/pods/x'));
      allowed(authz(roles, 'GET', '/api/v1/namespaces/default'));
      allowed(authz(roles, 'GET', '/api/v1/nodes'));
    });

    it('denies built-in cluster-scoped kinds through a wildcard deny as Teleport does, whatever its namespace', () => {
      const noProd = role('no-prod', "{deny: {kubernetes_resources: [{kind: '*', namespace: prod, name: '*', verbs: [delete]}]}}");
      denied(authz([all, noProd], 'DELETE', '/api/v1/namespaces/prod/pods/x'));
      denied(authz([all, noProd], 'DELETE', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin'));
      allowed(authz([all, noProd], 'DELETE', '/apis/example.com/v1/clusterwidgets/x'));
      allowed(authz([all, noProd], 'DELETE', '/api/v1/namespaces/dev/pods/x'));
    });

    it('lets a deny role take away a cluster by its labels', () => {
      const noProd = role('no-prod', '{deny: {kubernetes_labels: {env: [prod, "^prod-.*$"]}}}');
      const prod = { name: 'prod-eu', labels: { env: 'prod-eu' } };
      const r = denied(authorizeKubeRequest({ username: 'jimbo', roles: [all, noProd], traits: JIMBO_TRAITS, cluster: prod, request: req('GET', '/api') }));
      expect(r).toEqual({
        allowed: false,
        status: 403,
        message: 'keyway: user "jimbo" with roles [all, no-prod] has no access to cluster "prod-eu": the deny kubernetes_labels of role "no-prod" match it',
        rule: 'spec.deny.kubernetes_labels',
        role: 'no-prod',
      });
      allowed(authz([all, noProd], 'GET', '/api'));
    });
  });

  describe('kind namespace grants everything inside (role v7)', () => {
    const team = role('team', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: namespace, name: 'team-*', verbs: ['*']}]}}");
    table(
      [team],
      [
        ['GET', '/api/v1/namespaces/team-a/secrets/db', true],
        ['GET', '/api/v1/namespaces/team-a/secrets', true],
        ['POST', '/apis/apps/v1/namespaces/team-a/deployments', true],
        ['POST', '/api/v1/namespaces/team-a/pods/web/exec', true],
        ['GET', '/apis/example.com/v1/namespaces/team-a/widgets/w', true],
        ['GET', '/api/v1/namespaces/team-a', true],
        ['DELETE', '/api/v1/namespaces/team-b', true],
        ['GET', '/api/v1/namespaces/other/pods', false],
        ['GET', '/api/v1/pods', false, /in all namespaces/],
        ['GET', '/api/v1/namespaces', false],
        ['GET', '/api/v1/nodes', false],
      ],
    );
    const everyNs = role('every-ns', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: namespace, name: '*', verbs: [list]}]}}");
    table(
      [everyNs],
      [
        ['GET', '/api/v1/pods', true],
        ['GET', '/api/v1/namespaces', true],
        ['GET', '/api/v1/namespaces/x/pods', true],
        ['GET', '/api/v1/namespaces/x/pods/y', false],
      ],
    );
  });

  describe('cluster-scoped and wildcard kinds', () => {
    const nodes = role('nodes', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: kube_node, name: '*', verbs: [get, list, watch]}, {kind: clusterrole, name: 'view', verbs: [get, list]}]}}");
    table(
      [nodes],
      [
        ['GET', '/api/v1/nodes', true],
        ['GET', '/api/v1/nodes?watch=1', true],
        ['GET', '/api/v1/nodes/n1', true],
        ['DELETE', '/api/v1/nodes/n1', false, /may not delete node "n1" on cluster "kubernetes"/],
        ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/view', true],
        ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin', false],
        ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles', false, /only allow some names/],
        ['DELETE', '/apis/rbac.authorization.k8s.io/v1/clusterroles/view', false, /no kubernetes_resources rule of roles \[nodes\] allows it$/],
        ['GET', '/api/v1/persistentvolumes', false],
      ],
    );
    const devStar = role('dev-star', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: '*', namespace: dev, name: '*', verbs: ['*']}]}}");
    table(
      [devStar],
      [
        ['GET', '/api/v1/namespaces/dev/pods', true],
        ['POST', '/apis/apps/v1/namespaces/dev/deployments', true],
        ['GET', '/apis/example.com/v1/namespaces/dev/widgets/w', true],
        ['GET', '/api/v1/namespaces/prod/pods', false],
        // A '*' kind in one namespace does not reach cluster-scoped objects (Keyway is stricter
        // than Teleport here), nor the namespace object beyond reading it.
        ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin', false],
        ['GET', '/api/v1/nodes/n1', false],
        ['GET', '/apis/example.com/v1/clusterwidgets/w', false],
        ['DELETE', '/api/v1/namespaces/dev', false],
        ['GET', '/api/v1/namespaces/dev', true],
      ],
    );
    const everything = role('everything', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: '*', namespace: '*', name: '*', verbs: ['*']}]}}");
    table(
      [everything],
      [
        ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin', true],
        ['GET', '/api/v1/nodes', true],
        ['GET', '/apis/example.com/v1/clusterwidgets/w', true],
        ['GET', '/api/v1/pods', true],
        ['POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', true],
      ],
    );

    it('does not take a custom resource called pods for pods', () => {
      const pods = role('pods', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: pod, namespace: '*', name: '*', verbs: ['*']}]}}");
      allowed(authz([pods], 'GET', '/api/v1/namespaces/x/pods/y'));
      denied(authz([pods], 'GET', '/apis/evil.example.com/v1/namespaces/x/pods/y'));
    });
  });

  describe('wildcards and regular expressions in names and namespaces', () => {
    const r = role(
      'patterns',
      "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: configmap, namespace: '^team-(a|b)$', name: 'app-*-config', verbs: [get]}, {kind: secret, namespace: 'ci-*', name: '^build-[0-9]+$', verbs: [get]}]}}",
    );
    table(
      [r],
      [
        ['GET', '/api/v1/namespaces/team-a/configmaps/app-web-config', true],
        ['GET', '/api/v1/namespaces/team-b/configmaps/app--config', true],
        ['GET', '/api/v1/namespaces/team-c/configmaps/app-web-config', false],
        ['GET', '/api/v1/namespaces/team-ab/configmaps/app-web-config', false],
        ['GET', '/api/v1/namespaces/team-a/configmaps/app-web-config2', false],
        ['GET', '/api/v1/namespaces/ci-main/secrets/build-42', true],
        ['GET', '/api/v1/namespaces/ci-main/secrets/build-42x', false],
        ['GET', '/api/v1/namespaces/xci-main/secrets/build-42', false],
      ],
    );
  });

  describe('collections need name "*"', () => {
    const named = role(
      'named',
      "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: pod, namespace: default, name: 'web-*', verbs: [get, list]}, {kind: configmap, namespace: default, name: 'app-*', verbs: [create, get]}, {kind: secret, namespace: default, name: '*', verbs: [create]}]}}",
    );
    table(
      [named],
      [
        ['GET', '/api/v1/namespaces/default/pods/web-1', true],
        ['GET', '/api/v1/namespaces/default/pods', false, /only allow some names, and a collection takes name: '\*'/],
        ['POST', '/api/v1/namespaces/default/configmaps', false, /creating takes name: '\*', since the name is in the request body/],
        ['GET', '/api/v1/namespaces/default/configmaps/app-1', true],
        ['POST', '/api/v1/namespaces/default/secrets', true],
      ],
    );
  });

  describe('role v8 names resources by plural and API group', () => {
    const v8 = role(
      'v8',
      "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: deployments, api_group: apps, namespace: prod, name: '*', verbs: [get, list]}, {kind: pods, namespace: prod, name: '*', verbs: [get]}, {kind: '*', api_group: 'example.com', namespace: '*', name: '*', verbs: ['*']}]}}",
      'v8',
    );
    table(
      [v8],
      [
        ['GET', '/apis/apps/v1/namespaces/prod/deployments', true],
        ['GET', '/apis/apps/v1/namespaces/prod/deployments/web', true],
        ['GET', '/apis/extensions/v1beta1/namespaces/prod/deployments/web', false],
        ['GET', '/api/v1/namespaces/prod/pods/web', true],
        ['GET', '/apis/example.com/v1/namespaces/prod/pods/web', true],
        ['GET', '/api/v1/namespaces/prod/secrets/x', false],
        ['GET', '/apis/example.com/v1/widgets', true],
        ['GET', '/apis/other.example.com/v1/widgets', false],
      ],
    );
  });

  describe('role v6 restricts pods only', () => {
    const v6 = role('v6', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: pod, namespace: dev, name: '*'}]}}", 'v6');
    table(
      [v6],
      [
        ['GET', '/api/v1/namespaces/dev/pods/x', true],
        ['POST', '/api/v1/namespaces/dev/pods/x/exec', true],
        ['GET', '/api/v1/namespaces/prod/pods/x', false],
        ['GET', '/apis/apps/v1/namespaces/prod/deployments', true],
        ['GET', '/api/v1/namespaces/prod/secrets', true],
      ],
    );
  });

  it('expands traits templates in namespaces and names', () => {
    const mine = role('mine', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_resources: [{kind: pod, namespace: '{{internal.namespaces}}', name: '{{internal.username}}-*', verbs: [get]}]}}");
    const traits: Traits = { internal: { namespaces: ['a', 'b'], username: ['jim'] }, external: {} };
    allowed(authz([mine], 'GET', '/api/v1/namespaces/a/pods/jim-1', { traits }));
    allowed(authz([mine], 'GET', '/api/v1/namespaces/b/pods/jim-2', { traits }));
    denied(authz([mine], 'GET', '/api/v1/namespaces/c/pods/jim-1', { traits }));
    denied(authz([mine], 'GET', '/api/v1/namespaces/a/pods/bob-1', { traits }));
    denied(authz([mine], 'GET', '/api/v1/namespaces/a/pods/jim-1', { traits: { internal: {}, external: {} } }));
  });
});

describe('authorizeKubeRequest: kubernetes users and groups', () => {
  const viewer = role('viewer', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_groups: [viewers, '{{internal.kubernetes_groups}}'], kubernetes_resources: [{kind: pod, namespace: '*', name: '*', verbs: [get, list]}]}}");
  const ops = role(
    'ops',
    "{allow: {kubernetes_labels: {team: '^pay.*$'}, kubernetes_groups: [ops, viewers, 'sso-{{external.groups}}'], kubernetes_users: ['{{email.local(external.email)}}'], kubernetes_resources: [{kind: configmap, namespace: '*', name: '*', verbs: ['*']}]}}",
  );
  const masters = role('masters', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_groups: ['system:masters'], kubernetes_resources: [{kind: secret, namespace: '*', name: '*', verbs: ['*']}]}}");
  const noMasters = role('no-masters', "{deny: {kubernetes_groups: ['system:masters']}}");
  const traits: Traits = { internal: { kubernetes_groups: ['teleport-view'] }, external: { groups: ['dev', 'oncall'], email: ['jim.b@example.com'] } };
  const payments = { name: 'payments', labels: { team: 'payments', env: 'prod' } };

  function on(roles: RoleResource[], method: string, path: string, extra: Partial<KubeAccessInput> = {}) {
    return authorizeKubeRequest({ username: 'jimbo', roles, traits, cluster: payments, request: req(method, path), ...extra });
  }

  it('takes users and groups from the roles that grant the request, expanded and sorted', () => {
    expect(allowed(on([viewer, ops], 'GET', '/api/v1/namespaces/x/pods'))).toMatchObject({
      kubernetesUser: 'jimbo',
      kubernetesGroups: ['system:authenticated', 'teleport-view', 'viewers'],
      roles: ['viewer'],
    });
    expect(allowed(on([viewer, ops], 'GET', '/api/v1/namespaces/x/configmaps'))).toMatchObject({
      kubernetesUser: 'jim.b',
      kubernetesGroups: ['ops', 'sso-dev', 'sso-oncall', 'system:authenticated', 'viewers'],
      roles: ['ops'],
    });
    // Discovery: every role that applies to the cluster.
    expect(allowed(on([viewer, ops], 'GET', '/apis'))).toMatchObject({
      kubernetesUser: 'jim.b',
      kubernetesGroups: ['ops', 'sso-dev', 'sso-oncall', 'system:authenticated', 'teleport-view', 'viewers'],
      roles: ['viewer', 'ops'],
    });
  });

  it('does not lend one role’s groups to a request another role grants', () => {
    expect(allowed(on([viewer, masters], 'GET', '/api/v1/namespaces/x/pods/p')).kubernetesGroups).not.toContain('system:masters');
    expect(allowed(on([viewer, masters], 'GET', '/api/v1/namespaces/x/secrets/s')).kubernetesGroups).toEqual(['system:authenticated', 'system:masters']);
  });

  it('removes denied groups and users, keeps system:authenticated', () => {
    expect(allowed(on([masters, noMasters], 'GET', '/api/v1/namespaces/x/secrets/s')).kubernetesGroups).toEqual(['system:authenticated']);
    const noJim = role('no-jim', "{deny: {kubernetes_users: ['jim.b', jimbo]}}");
    const r = denied(on([viewer, noJim], 'GET', '/api/v1/namespaces/x/pods'));
    expect(r).toMatchObject({ rule: 'spec.deny.kubernetes_users', role: 'no-jim' });
    expect(r.message).toMatch(/may not act as kubernetes user "jimbo" on cluster "payments": denied by the deny kubernetes_users of role "no-jim"/);
    // jim.b is removed from the allowed users, so the default (the Keyway username) is denied too.
    denied(on([ops, noJim], 'GET', '/api/v1/namespaces/x/configmaps'));
  });

  describe('several kubernetes users', () => {
    const two = role('two', "{allow: {kubernetes_labels: {'*': '*'}, kubernetes_users: [jimbo-ro, jimbo-admin], kubernetes_groups: [devs, admins], kubernetes_resources: [{kind: '*', namespace: '*', name: '*', verbs: ['*']}]}}");

    it('requires the client to choose one', () => {
      const r = denied(on([two], 'GET', '/api/v1/namespaces/x/pods'));
      expect(r.message).toBe(
        'keyway: user "jimbo" with roles [two] has several kubernetes users on cluster "payments" (["jimbo-admin", "jimbo-ro"]) ' +
          'and may use only one per request; choose one with kubectl --as=<user>',
      );
    });

    it('honours --as inside the allowed set, with exactly the asked-for identity', () => {
      expect(allowed(on([two], 'GET', '/api/v1/namespaces/x/pods', { impersonateUser: 'jimbo-admin' }))).toEqual({
        allowed: true,
        kubernetesUser: 'jimbo-admin',
        kubernetesGroups: ['system:authenticated'],
        impersonatedByClient: true,
        roles: ['two'],
      });
      expect(allowed(on([two], 'GET', '/api/v1/namespaces/x/pods', { impersonateUser: 'jimbo-ro', impersonateGroups: ['devs', 'devs'] }))).toMatchObject({
        kubernetesUser: 'jimbo-ro',
        kubernetesGroups: ['devs', 'system:authenticated'],
        impersonatedByClient: true,
      });
      expect(allowed(on([two], 'GET', '/api/v1/namespaces/x/pods', { impersonateUser: 'jimbo-ro', impersonateGroups: ['admins', 'system:authenticated'] })).kubernetesGroups).toEqual([
        'admins',
        'system:authenticated',
      ]);
    });

    it('refuses --as and --as-group outside the allowed set, naming both', () => {
      const u = denied(on([two], 'GET', '/api/v1/namespaces/x/pods', { impersonateUser: 'root' }));
      expect(u.message).toBe(
        'keyway: user "jimbo" with roles [two] may not impersonate kubernetes user "root" on cluster "payments": ' +
          'the kubernetes users allowed here are ["jimbo-admin", "jimbo-ro"]',
      );
      denied(on([two], 'GET', '/api/v1/namespaces/x/pods', { impersonateUser: 'jimbo' }));
      const g = denied(on([two], 'GET', '/api/v1/namespaces/x/pods', { impersonateUser: 'jimbo-ro', impersonateGroups: ['devs', 'system:masters', 'system:nodes'] }));
      expect(g.message).toBe(
        'keyway: user "jimbo" with roles [two] may not impersonate kubernetes groups ["system:masters", "system:nodes"] on cluster "payments": ' +
          'the kubernetes groups allowed here are ["admins", "devs", "system:authenticated"]',
      );
      // --as-group alone still needs a single user
      denied(on([two], 'GET', '/api/v1/namespaces/x/pods', { impersonateGroups: ['devs'] }));
    });
  });

  describe('--as with the default user', () => {
    it('accepts the Keyway username and narrows groups with --as-group', () => {
      expect(allowed(on([viewer], 'GET', '/api/v1/namespaces/x/pods', { impersonateUser: 'jimbo' }))).toMatchObject({
        kubernetesUser: 'jimbo',
        kubernetesGroups: ['system:authenticated'],
        impersonatedByClient: true,
      });
      expect(allowed(on([viewer], 'GET', '/api/v1/namespaces/x/pods', { impersonateGroups: ['viewers'] }))).toMatchObject({
        kubernetesUser: 'jimbo',
        kubernetesGroups: ['system:authenticated', 'viewers'],
        impersonatedByClient: true,
      });
      expect(allowed(on([viewer], 'GET', '/api/v1/namespaces/x/pods', { impersonateGroups: [] })).impersonatedByClient).toBe(false);
    });

    it('refuses elevation to anything outside the set', () => {
      expect(denied(on([viewer], 'GET', '/api/v1/namespaces/x/pods', { impersonateUser: 'admin' })).message).toMatch(
        /may not impersonate kubernetes user "admin" on cluster "payments": the kubernetes users allowed here are \["jimbo"\]/,
      );
      expect(denied(on([viewer], 'GET', '/api/v1/namespaces/x/pods', { impersonateGroups: ['system:masters'] })).message).toMatch(
        /may not impersonate kubernetes group \["system:masters"\] on cluster "payments": the kubernetes groups allowed here are \["system:authenticated", "teleport-view", "viewers"\]/,
      );
      // ops grants configmaps, not pods: its groups are not available for a pods request.
      denied(on([viewer, ops], 'GET', '/api/v1/namespaces/x/pods', { impersonateGroups: ['ops'] }));
      denied(on([viewer], 'GET', '/api/v1/namespaces/x/pods', { impersonateUser: '' }));
    });
  });

  it('refuses, naming the role, when a users or groups template is broken', () => {
    const broken = structuredClone(viewer);
    broken.metadata.name = 'broken';
    broken.spec.allow.kubernetes_groups = ['{{internal.x'];
    const r = denied(on([broken], 'GET', '/api/v1/namespaces/x/pods'));
    expect(r.role).toBe('broken');
    expect(r.message).toMatch(/role "broken" has an invalid allow kubernetes_groups value "\{\{internal.x"/);
  });
});

describe('cluster labels', () => {
  const traits: Traits = { internal: { envs: ['qa', 'dev'], region: ['eu'] }, external: {} };
  it.each([
    [{ '*': '*' }, {}, true],
    [{ '*': ['*'] }, { env: 'prod' }, true],
    [{}, { env: 'dev' }, false],
    [undefined, { env: 'dev' }, false],
    [{ env: 'dev' }, { env: 'dev' }, true],
    [{ env: 'dev' }, { env: 'dev2' }, false],
    [{ env: ['dev', 'staging'] }, { env: 'staging' }, true],
    [{ env: '*' }, { env: 'anything' }, true],
    [{ env: '*' }, { region: 'eu' }, false],
    [{ env: 'dev-*' }, { env: 'dev-eu-1' }, true],
    [{ env: 'dev-*' }, { env: 'xdev-eu' }, false],
    [{ env: '^(dev|qa)-[0-9]+$' }, { env: 'qa-12' }, true],
    [{ env: '^(dev|qa)-[0-9]+$' }, { env: 'qa-12x' }, false],
    [{ env: 'dev.eu' }, { env: 'devxeu' }, false],
    [{ env: 'dev', region: 'eu' }, { env: 'dev' }, false],
    [{ env: 'dev', region: 'eu' }, { env: 'dev', region: 'eu', extra: 'x' }, true],
    [{ env: '{{internal.envs}}' }, { env: 'qa' }, true],
    [{ env: '{{internal.envs}}' }, { env: 'prod' }, false],
    [{ env: '{{internal.missing}}' }, { env: 'prod' }, false],
    [{ 'team-{{internal.region}}': 'x' }, { 'team-eu': 'x' }, true],
    [{ 'team-{{internal.envs}}': 'x' }, { 'team-qa': 'x' }, false],
    [{ env: '^(broken$' }, { env: 'x' }, false],
  ])('%j matches %j: %s', (selector, labels, expected) => {
    expect(kubeLabelsMatch(selector, labels, traits)).toBe(expected);
  });

  it('matches values as Teleport does', () => {
    expect(matchKubePattern('*', '')).toBe(true);
    expect(matchKubePattern('a*c', 'abbc')).toBe(true);
    expect(matchKubePattern('a*c', 'abbd')).toBe(false);
    expect(matchKubePattern('a+c', 'aac')).toBe(false);
    expect(matchKubePattern('a+c', 'a+c')).toBe(true);
    expect(matchKubePattern('^a+c$', 'aac')).toBe(true);
    expect(matchKubePattern('^(?i)ab$', 'AB')).toBe(true);
    expect(() => matchKubePattern('^(a$', 'a')).toThrow();
  });

  it('fails closed on broken deny selectors', () => {
    const all = role('all', "{allow: {kubernetes_labels: {'*': '*'}}}");
    const broken = role('broken', "{deny: {kubernetes_labels: {'{{internal.missing}}': x}}}");
    denied(authz([all, broken], 'GET', '/api'));
  });
});

describe('visibleKubeClusters', () => {
  const clusters: KubeClusterInfo[] = [
    { name: 'dev-1', labels: { env: 'dev' } },
    { name: 'stg-1', labels: { env: 'staging' } },
    { name: 'prod-1', labels: { env: 'prod' } },
    { name: 'bare', labels: {} },
  ];
  it('lists the clusters some role selects and no role denies', () => {
    expect(visibleKubeClusters([JUNIOR_DEVS], JIMBO_TRAITS, clusters)).toEqual(['dev-1', 'stg-1']);
    expect(visibleKubeClusters([ACCESS_ROLE], JIMBO_TRAITS, clusters)).toEqual(['dev-1', 'stg-1', 'prod-1', 'bare']);
    const noStaging = role('no-staging', '{deny: {kubernetes_labels: {env: staging}}}');
    expect(visibleKubeClusters([ACCESS_ROLE, noStaging], JIMBO_TRAITS, clusters)).toEqual(['dev-1', 'prod-1', 'bare']);
    expect(visibleKubeClusters([], JIMBO_TRAITS, clusters)).toEqual([]);
    const rulesOnly = role('rules-only', "{allow: {rules: [{resources: [user], verbs: [list]}]}}");
    expect(visibleKubeClusters([rulesOnly], JIMBO_TRAITS, clusters)).toEqual([]);
  });
});
