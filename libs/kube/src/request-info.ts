import { BadParameterError } from '@keyway/errors';
import { kindOf } from './kinds.js';
import { normalizeRequestPath, parseQuery } from './path.js';

/**
 * What a Kubernetes API request is about. The first fields mirror kube-apiserver's RequestInfo
 * (k8s.io/apiserver/pkg/endpoints/request) field for field, so `verb` is the Kubernetes verb
 * (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, `proxy`,
 * or the lower-cased HTTP method for non-resource requests). The last ones are Keyway's.
 */
export interface RequestInfo {
  isResourceRequest: boolean;
  /** The normalised path (see normalizeRequestPath). */
  path: string;
  verb: string;
  /** `api` or `apis` for resource requests, else `''`. */
  apiPrefix: string;
  /** `''` for the core group (`/api`). */
  apiGroup: string;
  apiVersion: string;
  /**
   * As Kubernetes sets it: the `{namespace}` of `/namespaces/{namespace}/…`, which for the
   * namespace object itself (`/api/v1/namespaces/dev`) is its own name.
   */
  namespace: string;
  /** Plural resource, e.g. `pods`. */
  resource: string;
  subresource: string;
  name: string;
  /** Path parts starting at `{resource}`: resource, name, subresource, further parts. */
  parts: string[];
  /**
   * The verb that role `kubernetes_resources` are checked against (Teleport's): `exec` for
   * `pods/exec` and `pods/attach`, `portforward` for `pods/portforward`, otherwise `verb`
   * (so `pods/log` is `get` on the pod).
   */
  accessVerb: string;
  /** Teleport kind of the resource (see kindOf); `''` for non-resource requests. */
  kind: string;
  /** True for built-in cluster-scoped kinds (namespaces, nodes, cluster roles…). */
  clusterScoped: boolean;
}

/** API prefixes kube-apiserver serves resources under; `api` is the group-less one. */
const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_API_PREFIXES = new Set(['api']);
/** Path verbs of the form `/api/v1/{verb}/…` (legacy `watch`, and `proxy`). */
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
/** Special verbs after which parts are not subresources. */
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
/** Subresources of a namespace, to tell `/namespaces/x/status` from `/namespaces/x/pods`. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

/** Teleport's verbs for pod subresources that are not plain reads or writes. */
const POD_SUBRESOURCE_VERBS = new Map([
  ['exec', 'exec'],
  ['attach', 'exec'],
  ['portforward', 'portforward'],
]);

function methodVerb(method: string): string {
  switch (method) {
    case 'POST':
      return 'create';
    case 'GET':
    case 'HEAD':
      return 'get';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return 'delete';
    default:
      return '';
  }
}

/**
 * `watch` as kube-apiserver reads it from ListOptions: absent → false; otherwise the first value,
 * false only for `0` and (any case) `false` — `?watch`, `?watch=` and `?watch=yes` all watch.
 */
function isWatch(query: Map<string, string[]>): boolean {
  const values = query.get('watch');
  if (!values || values.length === 0) return false;
  const first = values[0]!;
  return !(first === '0' || first.toLowerCase() === 'false');
}

/**
 * Parses a request the way kube-apiserver's RequestInfoFactory does, for a path that has been
 * through normalizeRequestPath (anything else is a BadParameterError, so nothing can be parsed
 * differently from what is forwarded):
 *
 * - `/api/{version}/…` (core group) and `/apis/{group}/{version}/…` are resource requests;
 *   everything else (`/api`, `/api/v1`, `/apis`, `/apis/apps/v1`, `/version`, `/openapi/v2`,
 *   `/healthz`) is a non-resource request whose verb is the lower-cased method;
 * - `/namespaces/{ns}/{resource}/…` sets the namespace; `/namespaces/{ns}` is the namespace object
 *   and `/namespaces/{ns}/status|finalize` its subresources;
 * - the verb comes from the method (POST create, GET/HEAD get, PUT update, PATCH patch, DELETE
 *   delete, others `''`); a `get` without a name is `list`, or `watch` when the `watch` query
 *   parameter is set; a `delete` without a name is `deletecollection`; `/api/v1/watch/…` and
 *   `/api/v1/proxy/…` take their verb from the path.
 *
 * `query` is the raw query string, with or without the leading `?`.
 */
export function parseRequestInfo(method: string, path: string, query = ''): RequestInfo {
  const normalized = normalizeRequestPath(path);
  if (normalized.path !== path || normalized.query !== '') {
    throw new BadParameterError(
      `request path ${JSON.stringify(path)} is not normalised (expected ${JSON.stringify(normalized.path)}); ` +
        'pass it through normalizeRequestPath and give the query separately',
      { path },
    );
  }
  const params = parseQuery(query);

  const info: RequestInfo = {
    isResourceRequest: false,
    path,
    verb: method.toLowerCase(),
    apiPrefix: '',
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
    parts: [],
    accessVerb: method.toLowerCase(),
    kind: '',
    clusterScoped: false,
  };

  let parts = path.split('/').filter((p) => p !== '');
  if (parts.length < 3 || !API_PREFIXES.has(parts[0]!)) return info;
  const apiPrefix = parts[0]!;
  parts = parts.slice(1);
  let apiGroup = '';
  if (!GROUPLESS_API_PREFIXES.has(apiPrefix)) {
    if (parts.length < 3) return info;
    apiGroup = parts[0]!;
    parts = parts.slice(1);
  }
  const apiVersion = parts[0]!;
  parts = parts.slice(1);

  let verb: string;
  if (SPECIAL_VERBS.has(parts[0]!)) {
    if (parts.length < 2) {
      throw new BadParameterError(`unable to determine kind and namespace from ${JSON.stringify(path)}`, { path });
    }
    verb = parts[0]!;
    parts = parts.slice(1);
  } else {
    verb = methodVerb(method);
  }

  let namespace = '';
  if (parts[0] === 'namespaces' && parts.length > 1) {
    namespace = parts[1]!;
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
  }

  const resource = parts[0] ?? '';
  const name = parts[1] ?? '';
  const subresource = parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(verb) ? parts[2]! : '';

  if (name === '' && verb === 'get') verb = isWatch(params) ? 'watch' : 'list';
  if (name === '' && verb === 'delete') verb = 'deletecollection';

  const kind = kindOf(resource, apiGroup);
  const podVerb = kind.kind === 'pod' && kind.builtin && name !== '' ? POD_SUBRESOURCE_VERBS.get(subresource) : undefined;

  return {
    isResourceRequest: true,
    path,
    verb,
    apiPrefix,
    apiGroup,
    apiVersion,
    namespace,
    resource,
    subresource,
    name,
    parts,
    accessVerb: podVerb ?? verb,
    kind: kind.kind,
    clusterScoped: kind.clusterScoped,
  };
}
