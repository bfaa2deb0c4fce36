import { describe, expect, it } from 'vitest';
import { isBadParameter } from '@keyway/errors';
import { isInternalPath, normalizeRequestPath, parseQuery } from './path.js';

function rejection(raw: string): string {
  try {
    normalizeRequestPath(raw);
  } catch (err) {
    expect(isBadParameter(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`${raw} was accepted`);
}

describe("Keyway's internal paths", () => {
  it.each(['/.keyway/tunnel/info', '/.KeyWay/tunnel/info', '//.keyway//tunnel/info', '/%2Ekeyway/tunnel/info', '/%2ekeyway', '/.keyway', '/.keyway/', '/.keyway?x=1'])(
    'a user may not request %s',
    (raw) => {
      expect(rejection(raw)).toMatch(/Keyway's own/);
      expect(isInternalPath(raw)).toBe(true);
    },
  );
  it.each(['/api/v1/namespaces/default/configmaps/.keyway', '/api/v1/namespaces/.keyway-ns/pods', '/.well-known/openid-configuration', '/api'])('%s is not internal', (raw) => {
    expect(isInternalPath(raw)).toBe(false);
    expect(normalizeRequestPath(raw).path).toBe(raw);
  });
  it('fails closed on a first segment it cannot decode', () => {
    expect(isInternalPath('/%E0%A4%A/x')).toBe(true);
    expect(isInternalPath('/a%2Fb/x')).toBe(true);
  });
});

describe('normalizeRequestPath', () => {
  it.each([
    ['/api/v1/namespaces/default/pods', '/api/v1/namespaces/default/pods', ''],
    ['/api/v1/namespaces/default/pods?watch=1&resourceVersion=10', '/api/v1/namespaces/default/pods', 'watch=1&resourceVersion=10'],
    ['//api//v1///namespaces/default/pods', '/api/v1/namespaces/default/pods', ''],
    ['/api/v1/namespaces/default/pods/', '/api/v1/namespaces/default/pods/', ''],
    ['/api/v1/namespaces/default/pods//', '/api/v1/namespaces/default/pods/', ''],
    ['/', '/', ''],
    ['//', '/', ''],
    ['/api', '/api', ''],
    ['/version?timeout=32s', '/version', 'timeout=32s'],
    // Unreserved characters that were encoded are decoded once.
    ['/api/v1/namespaces/%64efault/pods', '/api/v1/namespaces/default/pods', ''],
    ['/api/v1/namespaces/default/pods/web%2D1', '/api/v1/namespaces/default/pods/web-1', ''],
    // Names with ':' (RBAC objects) and '...' (not a dot segment) are fine.
    ['/apis/rbac.authorization.k8s.io/v1/clusterroles/system:aggregate-to-view', '/apis/rbac.authorization.k8s.io/v1/clusterroles/system:aggregate-to-view', ''],
    ['/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Abasic-user', '/apis/rbac.authorization.k8s.io/v1/clusterroles/system:basic-user', ''],
    ['/api/v1/namespaces/default/configmaps/...', '/api/v1/namespaces/default/configmaps/...', ''],
    ['/api/v1/namespaces/default/pods?labelSelector=app%3Dweb%2Ctier+in+(a%2Cb)', '/api/v1/namespaces/default/pods', 'labelSelector=app%3Dweb%2Ctier+in+(a%2Cb)'],
    ['/api/v1/namespaces/default/pods/web/portforward?ports=8080', '/api/v1/namespaces/default/pods/web/portforward', 'ports=8080'],
  ])('%s → %s ? %s', (raw, path, query) => {
    const n = normalizeRequestPath(raw);
    expect(n).toEqual({ path, query, url: query === '' ? path : `${path}?${query}` });
    // Idempotent: the forwarded URL normalises to itself.
    expect(normalizeRequestPath(n.url)).toEqual(n);
  });

  it.each([
    ['/api/v1/namespaces/default/pods/..%2f..%2fsecrets', /encoded slash/],
    ['/api/v1/namespaces/default/pods/..%2F..%2Fsecrets', /encoded slash/],
    ['/api/v1/namespaces/kube-system%2Fsecrets', /encoded slash/],
    ['/api/v1/namespaces/kube-system%2fsecrets/db', /encoded slash/],
    ['/api/v1/namespaces/default/pods/%2e%2e/secrets', /dot segments/],
    ['/api/v1/namespaces/default/pods/%2E%2E/secrets', /dot segments/],
    ['/api/v1/namespaces/default/pods/%2e/secrets', /dot segments/],
    ['/api/v1/namespaces/default/pods/../secrets', /dot segments/],
    ['/api/v1/namespaces/default/pods/./x', /dot segments/],
    ['/api/v1/namespaces/default/pods/.%2e/secrets', /dot segments/],
    ['/api/v1/namespaces/default/pods/%252e%252e/secrets', /double encoding/],
    ['/api/v1/namespaces/default/pods/%252F', /double encoding/],
    ['/api/v1/namespaces/default/pods/web%00', /NUL/],
    ['/api/v1/namespaces/default/pods/web\u0000', /NUL/],
    ['/api/v1/namespaces/default/pods/web%0a', /control byte 0x0a/],
    ['/api/v1/namespaces/default/pods/web\r\nX-Injected: 1', /control byte 0x0d/],
    ['/api/v1/namespaces/default/pods/web%7f', /control byte 0x7f/],
    ['/api/v1/namespaces\\kube-system/secrets', /backslash/],
    ['/api/v1/namespaces/default/pods/..%5c..%5csecrets', /backslash/],
    ['/api/v1/namespaces/default/pods/a b', /space/],
    ['/api/v1/namespaces/default/pods/a%20b', /space/],
    ['/api/v1/namespaces/default/pods/%C3%A9', /non-ASCII/],
    ['/api/v1/namespaces/default/pods/é', /non-ASCII/],
    ['/api/v1/namespaces/default/pods/%3F', /"\?"/],
    ['/api/v1/namespaces/default/pods/%zz', /malformed percent-encoding/],
    ['/api/v1/namespaces/default/pods/%4', /malformed percent-encoding/],
    ['/api/v1/pods#frag', /fragment/],
    ['api/v1/pods', /must start with/],
    ['http://evil/api/v1/pods', /must start with/],
    ['*', /must start with/],
    ['', /empty/],
    ['/api/v1/pods?watch=1;x=2', /";"/],
    ['/api/v1/pods?watch=%zz', /malformed percent-encoding/],
    ['/api/v1/pods?watch=1\n', /control byte/],
    ['/api/v1/pods?a=b c', /space/],
  ])('rejects %j', (raw, why) => {
    expect(rejection(raw)).toMatch(why);
  });

  it('names the path in the error', () => {
    expect(rejection('/api/v1/namespaces/kube-system%2Fsecrets')).toBe(
      'invalid request path "/api/v1/namespaces/kube-system%2Fsecrets": an encoded slash (%2F) inside a path segment is not allowed',
    );
  });
});

describe('parseQuery', () => {
  it('parses as Go url.ParseQuery does', () => {
    const q = parseQuery('?watch=true&w%61tch=0&labelSelector=app%3Dweb+x&empty&=v&&x=1=2');
    expect(q.get('watch')).toEqual(['true', '0']);
    expect(q.get('labelSelector')).toEqual(['app=web x']);
    expect(q.get('empty')).toEqual(['']);
    expect(q.get('')).toEqual(['v']);
    expect(q.get('x')).toEqual(['1=2']);
  });
});
