import { describe, expect, it } from 'vitest';
import { KUBERNETES_V7_KINDS } from '@keyway/resources';
import { CLUSTER_SCOPED_KINDS, TELEPORT_KUBE_KINDS, kindDisplayName, kindOf } from './kinds.js';

describe('kindOf', () => {
  it.each([
    ['pods', '', 'pod', false],
    ['secrets', '', 'secret', false],
    ['configmaps', '', 'configmap', false],
    ['namespaces', '', 'namespace', true],
    ['services', '', 'service', false],
    ['serviceaccounts', '', 'serviceaccount', false],
    ['persistentvolumes', '', 'persistentvolume', true],
    ['persistentvolumeclaims', '', 'persistentvolumeclaim', false],
    ['nodes', '', 'kube_node', true],
    ['deployments', 'apps', 'deployment', false],
    ['deployments', 'extensions', 'deployment', false],
    ['replicasets', 'apps', 'replicaset', false],
    ['statefulsets', 'apps', 'statefulset', false],
    ['daemonsets', 'apps', 'daemonset', false],
    ['jobs', 'batch', 'job', false],
    ['cronjobs', 'batch', 'cronjob', false],
    ['ingresses', 'networking.k8s.io', 'ingress', false],
    ['ingresses', 'extensions', 'ingress', false],
    ['clusterroles', 'rbac.authorization.k8s.io', 'clusterrole', true],
    ['clusterrolebindings', 'rbac.authorization.k8s.io', 'clusterrolebinding', true],
    ['roles', 'rbac.authorization.k8s.io', 'kube_role', false],
    ['rolebindings', 'rbac.authorization.k8s.io', 'rolebinding', false],
    ['certificatesigningrequests', 'certificates.k8s.io', 'certificatesigningrequest', true],
  ])('%s (%j) → %s', (resource, group, kind, clusterScoped) => {
    expect(kindOf(resource, group)).toEqual({ kind, clusterScoped, builtin: true });
  });

  it.each([
    ['events', ''],
    ['endpoints', ''],
    ['widgets', 'example.com'],
    ['pods', 'example.com'],
    ['deployments', ''],
    ['secrets', 'apps'],
    ['constructor', ''],
    ['__proto__', ''],
  ])('%s (%j) is its own plural kind', (resource, group) => {
    expect(kindOf(resource, group)).toEqual({ kind: resource, clusterScoped: false, builtin: false });
  });

  it('covers exactly the role v7 kinds the resource schema accepts', () => {
    expect([...TELEPORT_KUBE_KINDS].sort()).toEqual([...KUBERNETES_V7_KINDS].sort());
    expect([...CLUSTER_SCOPED_KINDS].sort()).toEqual(
      ['certificatesigningrequest', 'clusterrole', 'clusterrolebinding', 'kube_node', 'namespace', 'persistentvolume'],
    );
  });

  it('has readable names for messages', () => {
    expect(kindDisplayName('nodes', '')).toBe('node');
    expect(kindDisplayName('roles', 'rbac.authorization.k8s.io')).toBe('role');
    expect(kindDisplayName('pods', '')).toBe('pod');
    expect(kindDisplayName('widgets', 'example.com')).toBe('widgets.example.com');
    expect(kindDisplayName('events', '')).toBe('events');
  });
});
