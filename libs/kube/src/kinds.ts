/**
 * Teleport's kind names for Kubernetes resources (role v7 `kubernetes_resources[].kind`).
 * The API group is part of the key: a custom resource that happens to be called `pods` in group
 * `example.com` is not a `pod`.
 */

export interface KubeKind {
  /** Teleport's kind (`pod`, `deployment`, `kube_node`…), or the plural resource for others. */
  kind: string;
  /** True for cluster-scoped resources (namespaces, nodes, cluster roles…). */
  clusterScoped: boolean;
  /**
   * True when the kind is one of Teleport's role v7 kinds. For any other resource the scope is
   * not known here (it would take discovery); `clusterScoped` is then false and callers treat a
   * request without a namespace as one across all namespaces.
   */
  builtin: boolean;
}

interface Entry {
  kind: string;
  clusterScoped: boolean;
  groups: readonly string[];
}

const CORE = [''] as const;

/**
 * plural resource → Teleport kind, scope and the API groups it is served from (including the
 * legacy `extensions` group for workloads and ingresses). Teleport names nodes and roles
 * `kube_node` and `kube_role`, because `node` and `role` are its own resource kinds.
 */
const TABLE: Record<string, Entry> = {
  pods: { kind: 'pod', clusterScoped: false, groups: CORE },
  secrets: { kind: 'secret', clusterScoped: false, groups: CORE },
  configmaps: { kind: 'configmap', clusterScoped: false, groups: CORE },
  namespaces: { kind: 'namespace', clusterScoped: true, groups: CORE },
  services: { kind: 'service', clusterScoped: false, groups: CORE },
  serviceaccounts: { kind: 'serviceaccount', clusterScoped: false, groups: CORE },
  nodes: { kind: 'kube_node', clusterScoped: true, groups: CORE },
  persistentvolumes: { kind: 'persistentvolume', clusterScoped: true, groups: CORE },
  persistentvolumeclaims: { kind: 'persistentvolumeclaim', clusterScoped: false, groups: CORE },
  deployments: { kind: 'deployment', clusterScoped: false, groups: ['apps', 'extensions'] },
  replicasets: { kind: 'replicaset', clusterScoped: false, groups: ['apps', 'extensions'] },
  statefulsets: { kind: 'statefulset', clusterScoped: false, groups: ['apps'] },
  daemonsets: { kind: 'daemonset', clusterScoped: false, groups: ['apps', 'extensions'] },
  jobs: { kind: 'job', clusterScoped: false, groups: ['batch'] },
  cronjobs: { kind: 'cronjob', clusterScoped: false, groups: ['batch'] },
  ingresses: { kind: 'ingress', clusterScoped: false, groups: ['networking.k8s.io', 'extensions'] },
  clusterroles: { kind: 'clusterrole', clusterScoped: true, groups: ['rbac.authorization.k8s.io'] },
  clusterrolebindings: { kind: 'clusterrolebinding', clusterScoped: true, groups: ['rbac.authorization.k8s.io'] },
  roles: { kind: 'kube_role', clusterScoped: false, groups: ['rbac.authorization.k8s.io'] },
  rolebindings: { kind: 'rolebinding', clusterScoped: false, groups: ['rbac.authorization.k8s.io'] },
  certificatesigningrequests: { kind: 'certificatesigningrequest', clusterScoped: true, groups: ['certificates.k8s.io'] },
};

/** The Teleport kinds `kindOf` can return for built-in resources. */
export const TELEPORT_KUBE_KINDS: readonly string[] = Object.values(TABLE).map((e) => e.kind);

/** Teleport kinds of cluster-scoped resources. */
export const CLUSTER_SCOPED_KINDS: readonly string[] = Object.values(TABLE)
  .filter((e) => e.clusterScoped)
  .map((e) => e.kind);

/**
 * The Teleport kind of `resource` (plural, as in the URL) served from `apiGroup` (`''` for the
 * core group): `pods`/`''` → `pod`, `deployments`/`apps` → `deployment`, `nodes` → `kube_node`,
 * `roles`/`rbac.authorization.k8s.io` → `kube_role`. Anything else (other core resources such as
 * `events`, custom resources, built-ins from an unexpected group) is its plural resource name,
 * with `builtin: false`.
 */
export function kindOf(resource: string, apiGroup: string): KubeKind {
  const entry = Object.hasOwn(TABLE, resource) ? TABLE[resource] : undefined;
  if (entry && entry.groups.includes(apiGroup)) {
    return { kind: entry.kind, clusterScoped: entry.clusterScoped, builtin: true };
  }
  return { kind: resource, clusterScoped: false, builtin: false };
}

/** A readable name for messages: `pod`, `node` (for `kube_node`), `widgets.example.com`. */
export function kindDisplayName(resource: string, apiGroup: string): string {
  const k = kindOf(resource, apiGroup);
  if (k.builtin) return k.kind.replace(/^kube_/, '');
  return apiGroup === '' ? resource : `${resource}.${apiGroup}`;
}
