import { describe, expect, it } from 'vitest';
import { isBadParameter } from '@keyway/errors';
import { normalizeRequestPath } from './path.js';
import { parseRequestInfo, type RequestInfo } from './request-info.js';

/** Parses a raw request target the way the proxy does: normalise, then parse path + query. */
function parse(method: string, raw: string): RequestInfo {
  const n = normalizeRequestPath(raw);
  return parseRequestInfo(method, n.path, n.query);
}

type Expected = Partial<RequestInfo>;

const nonResource = (path: string, verb: string): Expected => ({
  isResourceRequest: false,
  path,
  verb,
  accessVerb: verb,
  apiPrefix: '',
  apiGroup: '',
  apiVersion: '',
  namespace: '',
  resource: '',
  subresource: '',
  name: '',
  parts: [],
  kind: '',
  clusterScoped: false,
});

const TABLE: [method: string, raw: string, expected: Expected][] = [
  // ---- discovery and other non-resource paths ----
  ['GET', '/', nonResource('/', 'get')],
  ['GET', '/api', nonResource('/api', 'get')],
  ['GET', '/api/v1', nonResource('/api/v1', 'get')],
  ['GET', '/apis', nonResource('/apis', 'get')],
  ['GET', '/apis/apps', nonResource('/apis/apps', 'get')],
  ['GET', '/apis/apps/v1', nonResource('/apis/apps/v1', 'get')],
  ['GET', '/version', nonResource('/version', 'get')],
  ['GET', '/version?timeout=32s', nonResource('/version', 'get')],
  ['GET', '/openapi/v2', nonResource('/openapi/v2', 'get')],
  ['GET', '/openapi/v3/apis/apps/v1?hash=abc', nonResource('/openapi/v3/apis/apps/v1', 'get')],
  ['GET', '/healthz', nonResource('/healthz', 'get')],
  ['HEAD', '/livez', nonResource('/livez', 'head')],
  ['POST', '/logs/x', nonResource('/logs/x', 'post')],
  ['GET', '/foo/v1/pods', nonResource('/foo/v1/pods', 'get')],

  // ---- core group, namespaced ----
  ['GET', '/api/v1/namespaces/default/pods', { isResourceRequest: true, verb: 'list', accessVerb: 'list', apiPrefix: 'api', apiGroup: '', apiVersion: 'v1', namespace: 'default', resource: 'pods', name: '', subresource: '', parts: ['pods'], kind: 'pod', clusterScoped: false }],
  ['GET', '/api/v1/namespaces/default/pods/web-1', { verb: 'get', accessVerb: 'get', namespace: 'default', resource: 'pods', name: 'web-1', subresource: '', parts: ['pods', 'web-1'], kind: 'pod' }],
  ['HEAD', '/api/v1/namespaces/default/pods/web-1', { verb: 'get', name: 'web-1' }],
  ['POST', '/api/v1/namespaces/default/pods', { verb: 'create', accessVerb: 'create', namespace: 'default', resource: 'pods', name: '' }],
  ['PUT', '/api/v1/namespaces/default/configmaps/cfg', { verb: 'update', namespace: 'default', resource: 'configmaps', name: 'cfg', kind: 'configmap' }],
  ['PATCH', '/api/v1/namespaces/default/secrets/db', { verb: 'patch', namespace: 'default', resource: 'secrets', name: 'db', kind: 'secret' }],
  ['DELETE', '/api/v1/namespaces/default/pods/web-1', { verb: 'delete', name: 'web-1' }],
  ['DELETE', '/api/v1/namespaces/default/pods', { verb: 'deletecollection', accessVerb: 'deletecollection', name: '' }],
  ['DELETE', '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb', { verb: 'deletecollection' }],
  ['OPTIONS', '/api/v1/namespaces/default/pods/web-1', { isResourceRequest: true, verb: '', accessVerb: '' }],
  ['get', '/api/v1/namespaces/default/pods/web-1', { isResourceRequest: true, verb: '' }],
  ['GET', '/api/v1/namespaces/default/serviceaccounts/builder', { kind: 'serviceaccount', clusterScoped: false }],
  ['GET', '/api/v1/namespaces/default/persistentvolumeclaims/data', { kind: 'persistentvolumeclaim' }],
  ['GET', '/api/v1/namespaces/default/services/web', { kind: 'service' }],
  ['GET', '/api/v1/namespaces/default/events', { verb: 'list', resource: 'events', kind: 'events', clusterScoped: false }],

  // ---- core group, across namespaces and cluster-scoped ----
  ['GET', '/api/v1/pods', { verb: 'list', namespace: '', resource: 'pods', parts: ['pods'], kind: 'pod' }],
  ['GET', '/api/v1/secrets?watch=true', { verb: 'watch', accessVerb: 'watch', namespace: '', resource: 'secrets' }],
  ['GET', '/api/v1/nodes', { verb: 'list', resource: 'nodes', kind: 'kube_node', clusterScoped: true }],
  ['GET', '/api/v1/nodes/node-1', { verb: 'get', name: 'node-1', kind: 'kube_node', clusterScoped: true }],
  ['GET', '/api/v1/nodes/node-1/proxy/metrics', { verb: 'get', name: 'node-1', subresource: 'proxy', parts: ['nodes', 'node-1', 'proxy', 'metrics'] }],
  ['GET', '/api/v1/persistentvolumes/pv-1', { kind: 'persistentvolume', clusterScoped: true }],
  ['GET', '/api/v1/namespaces', { verb: 'list', namespace: '', resource: 'namespaces', name: '', parts: ['namespaces'], kind: 'namespace', clusterScoped: true }],
  ['GET', '/api/v1/namespaces/kube-system', { verb: 'get', namespace: 'kube-system', resource: 'namespaces', name: 'kube-system', parts: ['namespaces', 'kube-system'], kind: 'namespace', clusterScoped: true }],
  ['DELETE', '/api/v1/namespaces/dev', { verb: 'delete', namespace: 'dev', resource: 'namespaces', name: 'dev' }],
  ['PUT', '/api/v1/namespaces/dev/finalize', { verb: 'update', namespace: 'dev', resource: 'namespaces', name: 'dev', subresource: 'finalize', parts: ['namespaces', 'dev', 'finalize'] }],
  ['GET', '/api/v1/namespaces/dev/status', { verb: 'get', resource: 'namespaces', name: 'dev', subresource: 'status' }],
  ['POST', '/api/v1/namespaces', { verb: 'create', resource: 'namespaces', name: '' }],

  // ---- group APIs ----
  ['GET', '/apis/apps/v1/namespaces/prod/deployments', { apiPrefix: 'apis', apiGroup: 'apps', apiVersion: 'v1', verb: 'list', namespace: 'prod', resource: 'deployments', kind: 'deployment' }],
  ['GET', '/apis/apps/v1/namespaces/prod/deployments/web', { verb: 'get', name: 'web', kind: 'deployment' }],
  ['PATCH', '/apis/apps/v1/namespaces/prod/deployments/web/scale', { verb: 'patch', name: 'web', subresource: 'scale', kind: 'deployment' }],
  ['GET', '/apis/apps/v1/deployments', { verb: 'list', namespace: '', resource: 'deployments' }],
  ['GET', '/apis/apps/v1/namespaces/prod/statefulsets/db', { kind: 'statefulset' }],
  ['GET', '/apis/apps/v1/namespaces/prod/daemonsets/agent', { kind: 'daemonset' }],
  ['GET', '/apis/apps/v1/namespaces/prod/replicasets/web-abc', { kind: 'replicaset' }],
  ['GET', '/apis/extensions/v1beta1/namespaces/prod/deployments/web', { apiGroup: 'extensions', kind: 'deployment' }],
  ['GET', '/apis/batch/v1/namespaces/prod/jobs/migrate', { apiGroup: 'batch', kind: 'job' }],
  ['GET', '/apis/batch/v1/namespaces/prod/cronjobs/nightly', { kind: 'cronjob' }],
  ['GET', '/apis/networking.k8s.io/v1/namespaces/prod/ingresses/web', { apiGroup: 'networking.k8s.io', kind: 'ingress' }],
  ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin', { kind: 'clusterrole', clusterScoped: true, namespace: '' }],
  ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', { verb: 'list', kind: 'clusterrolebinding', clusterScoped: true }],
  ['GET', '/apis/rbac.authorization.k8s.io/v1/namespaces/dev/roles/edit', { kind: 'kube_role', clusterScoped: false, namespace: 'dev' }],
  ['GET', '/apis/rbac.authorization.k8s.io/v1/namespaces/dev/rolebindings/edit', { kind: 'rolebinding' }],
  ['POST', '/apis/certificates.k8s.io/v1/certificatesigningrequests', { verb: 'create', kind: 'certificatesigningrequest', clusterScoped: true }],
  ['PUT', '/apis/certificates.k8s.io/v1/certificatesigningrequests/csr-1/approval', { verb: 'update', name: 'csr-1', subresource: 'approval' }],
  ['GET', '/apis/example.com/v1/namespaces/dev/pods/x', { apiGroup: 'example.com', resource: 'pods', kind: 'pods', clusterScoped: false }],
  ['GET', '/apis/example.com/v1/widgets', { verb: 'list', resource: 'widgets', kind: 'widgets', namespace: '' }],
  ['POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { verb: 'create', resource: 'selfsubjectaccessreviews', kind: 'selfsubjectaccessreviews' }],

  // ---- watch ----
  ['GET', '/api/v1/namespaces/default/pods?watch=true', { verb: 'watch', accessVerb: 'watch', name: '' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=1', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=TRUE', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/default/pods?watch', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=yes', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/default/pods?w%61tch=1', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=false', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=False', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=0', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=0&watch=1', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=1&watch=0', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb&watch=1', { verb: 'watch', name: '' }],
  ['GET', '/api/v1/namespaces/default/pods/web?watch=1', { verb: 'get', name: 'web' }],
  ['GET', '/api/v1/watch/namespaces/default/pods', { verb: 'watch', namespace: 'default', resource: 'pods', name: '', parts: ['pods'] }],
  ['GET', '/api/v1/watch/namespaces/default/pods/web', { verb: 'watch', namespace: 'default', resource: 'pods', name: 'web' }],
  ['GET', '/api/v1/watch/pods', { verb: 'watch', namespace: '', resource: 'pods' }],
  ['GET', '/api/v1/watch/namespaces', { verb: 'watch', resource: 'namespaces', kind: 'namespace' }],
  ['GET', '/apis/apps/v1/watch/namespaces/prod/deployments?watch=false', { verb: 'watch', apiGroup: 'apps', resource: 'deployments' }],
  ['GET', '/api/v1/proxy/namespaces/default/pods/web/healthz', { verb: 'proxy', resource: 'pods', name: 'web', subresource: '', parts: ['pods', 'web', 'healthz'] }],

  // ---- pod subresources ----
  ['POST', '/api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true&tty=true', { verb: 'create', accessVerb: 'exec', name: 'web', subresource: 'exec', kind: 'pod' }],
  ['GET', '/api/v1/namespaces/default/pods/web/exec?command=sh', { verb: 'get', accessVerb: 'exec', subresource: 'exec' }],
  ['POST', '/api/v1/namespaces/default/pods/web/attach?stdin=true', { verb: 'create', accessVerb: 'exec', subresource: 'attach' }],
  ['POST', '/api/v1/namespaces/default/pods/web/portforward?ports=8080', { verb: 'create', accessVerb: 'portforward', subresource: 'portforward' }],
  ['GET', '/api/v1/namespaces/default/pods/web/portforward', { verb: 'get', accessVerb: 'portforward' }],
  ['GET', '/api/v1/namespaces/default/pods/web/log?follow=true&container=app', { verb: 'get', accessVerb: 'get', name: 'web', subresource: 'log', kind: 'pod' }],
  ['GET', '/api/v1/namespaces/default/pods/web/status', { verb: 'get', accessVerb: 'get', subresource: 'status' }],
  ['POST', '/api/v1/namespaces/default/pods/web/eviction', { verb: 'create', accessVerb: 'create', subresource: 'eviction' }],
  ['PATCH', '/api/v1/namespaces/default/pods/web/ephemeralcontainers', { verb: 'patch', accessVerb: 'patch', subresource: 'ephemeralcontainers' }],
  ['POST', '/apis/example.com/v1/namespaces/default/pods/web/exec', { verb: 'create', accessVerb: 'create', kind: 'pods' }],
  ['POST', '/api/v1/namespaces/default/services/web/exec', { verb: 'create', accessVerb: 'create', kind: 'service' }],
  ['GET', '/api/v1/namespaces/default/pods/web/constructor', { accessVerb: 'get', subresource: 'constructor' }],

  // ---- odd but well-formed paths are parsed as kube parses them ----
  ['GET', '//api//v1//namespaces//default//pods', { path: '/api/v1/namespaces/default/pods', verb: 'list', namespace: 'default', resource: 'pods' }],
  ['GET', '/api/v1/namespaces/default/pods/', { path: '/api/v1/namespaces/default/pods/', verb: 'list', resource: 'pods' }],
  ['GET', '/api/v1/namespaces/%64efault/pods/w%65b', { path: '/api/v1/namespaces/default/pods/web', namespace: 'default', name: 'web' }],
  ['GET', '/api/v1/namespaces/default', { resource: 'namespaces', name: 'default', namespace: 'default' }],
  ['GET', '/api/v1/namespaces/default/pods/web/exec/extra', { subresource: 'exec', parts: ['pods', 'web', 'exec', 'extra'] }],
];

describe('parseRequestInfo', () => {
  it.each(TABLE)('%s %s', (method, raw, expected) => {
    const info = parse(method, raw);
    expect(info).toMatchObject(expected);
    if (expected.isResourceRequest !== false) expect(info.isResourceRequest).toBe(true);
    expect(info.path).toBe(normalizeRequestPath(raw).path);
  });

  it('gives the complete info for one request', () => {
    expect(parse('GET', '/apis/apps/v1/namespaces/prod/deployments/web/scale')).toEqual({
      isResourceRequest: true,
      path: '/apis/apps/v1/namespaces/prod/deployments/web/scale',
      verb: 'get',
      apiPrefix: 'apis',
      apiGroup: 'apps',
      apiVersion: 'v1',
      namespace: 'prod',
      resource: 'deployments',
      subresource: 'scale',
      name: 'web',
      parts: ['deployments', 'web', 'scale'],
      accessVerb: 'get',
      kind: 'deployment',
      clusterScoped: false,
    });
  });

  it.each([
    ['/api/v1/namespaces/default/pods/..%2f..%2fsecrets', /encoded slash/],
    ['/api/v1/namespaces/default/pods/%2e%2e/secrets', /dot segments/],
    ['/api/v1/namespaces/kube-system%2Fsecrets', /encoded slash/],
    ['/api/v1/namespaces/default/pods/../../secrets', /dot segments/],
    ['/api/v1/namespaces/default/pods/web%00', /NUL/],
    ['/api/v1/namespaces\\kube-system\\secrets', /backslash/],
  ])('path attack %s never reaches the parser', (raw, why) => {
    expect(() => parse('GET', raw)).toThrow(why);
  });

  it('refuses paths that were not normalised, so the parsed and forwarded paths cannot differ', () => {
    for (const path of [
      '//api//v1/namespaces/default/pods',
      '/api/v1/namespaces/default/pods/%2e%2e/secrets',
      '/api/v1/namespaces/kube-system%2Fsecrets',
      '/api/v1/namespaces/%64efault/pods',
      '/api/v1/pods?watch=1',
      'api/v1/pods',
    ]) {
      let err: unknown;
      try {
        parseRequestInfo('GET', path);
      } catch (e) {
        err = e;
      }
      expect(isBadParameter(err), path).toBe(true);
    }
  });

  it('refuses queries Go would parse differently', () => {
    expect(() => parseRequestInfo('GET', '/api/v1/pods', 'watch=1;watch=0')).toThrow(/";"/);
    expect(() => parseRequestInfo('GET', '/api/v1/pods', 'watch=%')).toThrow(/malformed/);
  });

  it('accepts the query with or without "?"', () => {
    expect(parseRequestInfo('GET', '/api/v1/pods', '?watch=1').verb).toBe('watch');
    expect(parseRequestInfo('GET', '/api/v1/pods', 'watch=1').verb).toBe('watch');
  });

  it('refuses a special verb without a resource, as kube does', () => {
    expect(() => parse('GET', '/api/v1/watch')).toThrow(/unable to determine kind and namespace/);
  });
});
