/** The resources the test API server serves, and the discovery documents that describe them. */

export interface ResourceDef {
  group: string;
  version: string;
  /** Plural, as in the URL. */
  resource: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  verbs: string[];
  /** Create-only review APIs answered from the request (never stored). */
  review?: boolean;
}

export interface SubresourceDef {
  resource: string;
  subresource: string;
  kind: string;
  verbs: string[];
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export const RESOURCES: readonly ResourceDef[] = [
  { group: '', version: 'v1', resource: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, shortNames: ['ns'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] },
  { group: '', version: 'v1', resource: 'pods', singular: 'pod', kind: 'Pod', namespaced: true, shortNames: ['po'], categories: ['all'], verbs: ALL_VERBS },
  { group: '', version: 'v1', resource: 'configmaps', singular: 'configmap', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'], verbs: ALL_VERBS },
  { group: '', version: 'v1', resource: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true, verbs: ALL_VERBS },
  { group: '', version: 'v1', resource: 'services', singular: 'service', kind: 'Service', namespaced: true, shortNames: ['svc'], categories: ['all'], verbs: ALL_VERBS },
  { group: '', version: 'v1', resource: 'serviceaccounts', singular: 'serviceaccount', kind: 'ServiceAccount', namespaced: true, shortNames: ['sa'], verbs: ALL_VERBS },
  { group: '', version: 'v1', resource: 'events', singular: 'event', kind: 'Event', namespaced: true, shortNames: ['ev'], verbs: ALL_VERBS },
  { group: 'apps', version: 'v1', resource: 'deployments', singular: 'deployment', kind: 'Deployment', namespaced: true, shortNames: ['deploy'], categories: ['all'], verbs: ALL_VERBS },
  { group: 'authentication.k8s.io', version: 'v1', resource: 'selfsubjectreviews', singular: 'selfsubjectreview', kind: 'SelfSubjectReview', namespaced: false, verbs: ['create'], review: true },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectaccessreviews', singular: 'selfsubjectaccessreview', kind: 'SelfSubjectAccessReview', namespaced: false, verbs: ['create'], review: true },
];

export const SUBRESOURCES: readonly SubresourceDef[] = [
  { resource: 'pods', subresource: 'log', kind: 'Pod', verbs: ['get'] },
  { resource: 'pods', subresource: 'exec', kind: 'PodExecOptions', verbs: ['create', 'get'] },
  { resource: 'pods', subresource: 'attach', kind: 'PodAttachOptions', verbs: ['create', 'get'] },
  { resource: 'pods', subresource: 'portforward', kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
  { resource: 'pods', subresource: 'status', kind: 'Pod', verbs: ['get', 'patch', 'update'] },
  { resource: 'namespaces', subresource: 'status', kind: 'Namespace', verbs: ['get', 'patch', 'update'] },
  { resource: 'deployments', subresource: 'status', kind: 'Deployment', verbs: ['get', 'patch', 'update'] },
];

export function findResource(group: string, version: string, resource: string): ResourceDef | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}

export function resourceByName(resource: string, group = ''): ResourceDef | undefined {
  return RESOURCES.find((r) => r.group === group && r.resource === resource);
}

export function apiVersionOf(def: ResourceDef): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

export function groupVersions(): Array<{ group: string; version: string }> {
  const seen = new Map<string, { group: string; version: string }>();
  for (const r of RESOURCES) seen.set(`${r.group}/${r.version}`, { group: r.group, version: r.version });
  return [...seen.values()];
}

export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2024-12-11T00:00:00Z',
  goVersion: 'go1.23.3',
  compiler: 'gc',
  platform: 'linux/amd64',
};

export function apiVersionsDoc(serverAddress: string): unknown {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupDoc(group: string): unknown {
  const versions = groupVersions()
    .filter((gv) => gv.group === group)
    .map((gv) => ({ groupVersion: `${group}/${gv.version}`, version: gv.version }));
  return { name: group, versions, preferredVersion: versions[0] };
}

export function apiGroupListDoc(): unknown {
  const groups = [...new Set(RESOURCES.map((r) => r.group).filter((g) => g !== ''))];
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(groupDoc) };
}

export function apiGroupDoc(group: string): unknown | undefined {
  if (!RESOURCES.some((r) => r.group === group && group !== '')) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...(groupDoc(group) as object) };
}

export function apiResourceListDoc(group: string, version: string): unknown | undefined {
  const defs = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (defs.length === 0) return undefined;
  const resources: unknown[] = [];
  for (const d of defs) {
    const entry: Record<string, unknown> = { name: d.resource, singularName: d.singular, namespaced: d.namespaced, kind: d.kind, verbs: d.verbs };
    if (d.shortNames) entry['shortNames'] = d.shortNames;
    if (d.categories) entry['categories'] = d.categories;
    resources.push(entry);
    for (const s of SUBRESOURCES.filter((x) => x.resource === d.resource)) {
      resources.push({ name: `${d.resource}/${s.subresource}`, singularName: '', namespaced: d.namespaced, kind: s.kind, verbs: s.verbs });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

/**
 * `/openapi/v3`: one entry per group-version. kubectl (create/apply with --validate=strict)
 * reads it to learn that the server does field validation; without it kubectl falls back to
 * client-side validation, which needs the full /openapi/v2 schema.
 */
export function openApiV3RootDoc(): unknown {
  const paths: Record<string, unknown> = {};
  for (const gv of groupVersions()) {
    const p = gv.group ? `apis/${gv.group}/${gv.version}` : `api/${gv.version}`;
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=keyway-test-${VERSION_INFO.gitVersion}` };
  }
  return { paths };
}

/** A minimal OpenAPI v3 document for a group-version: the mutating operations with their GVK and parameters. */
export function openApiV3Doc(group: string, version: string): unknown | undefined {
  const defs = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (defs.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  const params = ['dryRun', 'fieldManager', 'fieldValidation', 'pretty'].map((name) => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } }));
  for (const d of defs) {
    const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
    const base = d.namespaced ? `${prefix}/namespaces/{namespace}/${d.resource}` : `${prefix}/${d.resource}`;
    const gvk = { group, version, kind: d.kind };
    const op = (action: string) => ({ 'x-kubernetes-action': action, 'x-kubernetes-group-version-kind': gvk, parameters: params, responses: { '200': { description: 'OK' } } });
    paths[base] = { post: op('post'), get: op('list') };
    paths[`${base}/{name}`] = { get: op('get'), put: op('put'), patch: op('patch'), delete: op('delete') };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: VERSION_INFO.gitVersion }, paths, components: { schemas: {} } };
}
