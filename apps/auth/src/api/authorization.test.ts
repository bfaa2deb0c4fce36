import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAccessDenied } from '@keyway/errors';
import type { SystemRole } from '@keyway/pki';
import { STORED_KINDS } from '@keyway/store';
import { HOST_READABLE, readRule, redactForRead, type ReadableKind, type ReadMethod } from './authorization.js';

const KINDS: ReadableKind[] = [...STORED_KINDS, 'proxy', 'kube_server'];
const METHODS: ReadMethod[] = ['get', 'list', 'watch'];

function outcome(kind: 'host' | 'user', roles: SystemRole[], k: ReadableKind, m: ReadMethod, secrets: boolean): 'host' | string[] | 'denied' {
  try {
    const d = readRule({ kind, identity: { systemRoles: roles } }, 'caller', k, m, secrets);
    return d.by === 'host' ? 'host' : d.verbs;
  } catch (err) {
    expect(isAccessDenied(err)).toBe(true);
    return 'denied';
  }
}

describe('readRule: one rule per kind, whatever the method', () => {
  it('a host reads a kind by get, list and watch alike, or by none of them; never with secrets unless Admin', () => {
    fc.assert(
      fc.property(fc.subarray<SystemRole>(['Proxy', 'Kube', 'Admin', 'Auth']), fc.constantFrom(...KINDS), (roles, kind) => {
        const results = METHODS.map((m) => outcome('host', roles, kind, m, false));
        expect(new Set(results).size).toBe(1);
        const admin = roles.includes('Admin');
        const expected = admin || roles.some((r) => (r === 'Proxy' || r === 'Kube') && HOST_READABLE[r].has(kind));
        expect(results[0]).toBe(expected ? 'host' : 'denied');
        for (const m of ['get', 'list'] as const) expect(outcome('host', roles, kind, m, true)).toBe(admin ? 'host' : 'denied');
        expect(outcome('host', roles, kind, 'watch', true)).toBe('denied');
      }),
      { seed: 3, numRuns: 300 },
    );
  });

  it('secret-bearing kinds are never readable by a proxy or an agent', () => {
    for (const role of ['Proxy', 'Kube'] as const) {
      for (const kind of ['token', 'github', 'oidc', 'saml'] as const) {
        for (const m of METHODS) expect(outcome('host', [role], kind, m, false)).toBe('denied');
      }
    }
    expect([...HOST_READABLE.Kube]).toEqual([]);
  });

  it('a user needs the same rule verbs by get and list (list adds `list`), and cannot watch', () => {
    for (const kind of KINDS) {
      expect(outcome('user', [], kind, 'get', false)).toEqual(['readnosecrets']);
      expect(outcome('user', [], kind, 'get', true)).toEqual(['read']);
      expect(outcome('user', [], kind, 'list', false)).toEqual(['list', 'readnosecrets']);
      expect(outcome('user', [], kind, 'list', true)).toEqual(['list', 'read']);
      expect(outcome('user', [], kind, 'watch', false)).toBe('denied');
    }
  });

  it('redacts secrets unless asked for, and leaves the input alone', () => {
    const gh = { kind: 'github', version: 'v3', metadata: { name: 'g' }, spec: { client_id: 'a', client_secret: 's3cret' } };
    expect(redactForRead(gh, false)).toMatchObject({ spec: { client_secret: '' } });
    expect(gh.spec.client_secret).toBe('s3cret');
    expect(redactForRead(gh, true)).toBe(gh);
    expect(redactForRead({ host_id: 'h' }, false)).toEqual({ host_id: 'h' });
  });
});
