import { describe, expect, it } from 'vitest';
import type { AuditEventRecord, AuditLog } from '@keyway/audit';
import { LimitExceededError } from '@keyway/errors';
import { silentLogger } from '@keyway/log';
import type { Identity } from '@keyway/pki';
import type { Store, StoredKind, StoredResource } from '@keyway/store';
import type { Caller } from '../api/caller.js';
import type { Change } from '../api/change-feed.js';
import { SCIM_LOCK_LABEL, ScimService, scimTokenName } from './scim.js';

// The service's decisions with a small in-memory store (the end-to-end test runs it against
// Postgres, the proxy and real logins): who may call, which tokens count, what is touched.

function memoryStore(): Store & { rows: Map<string, StoredResource> } {
  const rows = new Map<string, StoredResource>();
  const key = (k: StoredKind, n: string) => `${k}/${n}`;
  let revision = 0;
  return {
    rows,
    findResource: async (k: StoredKind, n: string) => rows.get(key(k, n)),
    listResources: async (k: StoredKind) => [...rows.values()].filter((r) => r.kind === k),
    putResource: async (k: StoredKind, n: string, resource: Record<string, unknown>) => {
      rows.set(key(k, n), { kind: k, name: n, resource, revision: String(++revision), expires: null });
      return { created: true, revision: String(revision) };
    },
    deleteResource: async (k: StoredKind, n: string) => void rows.delete(key(k, n)),
  } as unknown as Store & { rows: Map<string, StoredResource> };
}

const identity = (systemRoles: Identity['systemRoles']): Identity => ({ username: 'h', roles: [], traits: {}, kubernetesUsers: [], kubernetesGroups: [], clusterName: 'acme', mfaVerified: false, systemRoles, expires: new Date(Date.now() + 60_000) }) as Identity;
const proxy: Caller = { kind: 'host', identity: identity(['Proxy']) };

function setup(o: { limited?: boolean } = {}) {
  const store = memoryStore();
  const changes: Change[] = [];
  const events: AuditEventRecord[] = [];
  const audit = { emit: (e: AuditEventRecord) => events.push(e) } as unknown as AuditLog;
  const scim = new ScimService({
    store,
    publish: (c) => changes.push(c),
    audit,
    logger: silentLogger(),
    clusterName: 'acme',
    now: () => new Date('2030-01-01T00:00:00Z'),
    limit: () => {
      if (o.limited) throw new LimitExceededError('too many SCIM requests from this address; retry after 1s');
    },
  });
  const put = (kind: StoredKind, name: string, resource: Record<string, unknown>) => store.putResource(kind, name, resource, {});
  const call = (method: string, path: string, body: unknown = undefined, token = 'the-token', caller: Caller = proxy) =>
    scim.handle(caller, { token, method, path, query: '', body: body === undefined ? '' : JSON.stringify(body), remoteIp: '192.0.2.1' }).then((r) => ({ status: r.status, body: r.body ? (JSON.parse(r.body) as Record<string, unknown>) : {} }));
  return { store, changes, events, put, call };
}

const token = (roles: string[]) => ({ kind: 'token', version: 'v2', metadata: { name: scimTokenName('the-token') }, spec: { roles, join_method: 'token' } });
const ssoUser = (name: string) => ({ kind: 'user', version: 'v2', metadata: { name }, spec: { roles: ['dev'], created_by: { connector: { type: 'oidc', id: 'okta', identity: name } } } });
const localUser = (name: string) => ({ kind: 'user', version: 'v2', metadata: { name }, spec: { roles: ['dev'] } });
const off = { Operations: [{ op: 'replace', path: 'active', value: false }] };

describe('ScimService', () => {
  it('answers only proxies, and only with a Scim token stored under its hash', async () => {
    const t = setup();
    await expect(t.call('GET', '/Users', undefined, 'the-token', { kind: 'host', identity: identity(['Kube']) })).rejects.toThrow(/may not relay SCIM/);
    await expect(t.call('GET', '/Users', undefined, 'the-token', { kind: 'anonymous' })).rejects.toThrow();
    expect((await t.call('GET', '/Users')).status).toBe(401);
    // A join token of the same value, stored as join tokens are (by value), is no SCIM token.
    await t.put('token', 'the-token', { ...token(['Kube']), metadata: { name: 'the-token' } });
    expect((await t.call('GET', '/Users')).status).toBe(401);
    // Nor is a token under the hash that carries another role.
    await t.put('token', scimTokenName('the-token'), token(['Kube']));
    expect((await t.call('GET', '/Users')).status).toBe(401);
    await t.put('token', scimTokenName('the-token'), token(['Scim']));
    expect((await t.call('GET', '/Users')).status).toBe(200);
    expect((await t.call('GET', '/Users', undefined, 'the-tokeN')).status).toBe(401);
  });

  it('answers 429 in SCIM form when the address is over its rate', async () => {
    const t = setup({ limited: true });
    const r = await t.call('GET', '/Users');
    expect(r).toEqual({ status: 429, body: { schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '429', detail: expect.stringMatching(/too many SCIM requests/) } });
  });

  it('deactivation locks first, then deletes the SSO user, publishing both; DELETE marks the lock deleted', async () => {
    const t = setup();
    await t.put('token', scimTokenName('the-token'), token(['Scim']));
    await t.put('user', 'ada', ssoUser('ada'));
    expect((await t.call('PATCH', '/Users/ada', off)).body).toMatchObject({ id: 'ada', active: false });
    expect(t.changes.map((c) => `${c.type} ${c.kind}`)).toEqual(['put lock', 'delete user']);
    const locks = [...t.store.rows.values()].filter((r) => r.kind === 'lock');
    expect(locks).toHaveLength(1);
    expect(locks[0]?.resource).toMatchObject({ metadata: { labels: { [SCIM_LOCK_LABEL]: 'deactivated' } }, spec: { target: { user: 'ada' }, message: 'deprovisioned by SCIM' } });
    expect((locks[0]?.resource as { spec: Record<string, unknown> }).spec['expires']).toBeUndefined();
    expect(t.events.map((e) => [e['event'], e['scim']])).toEqual([
      ['lock.created', true],
      ['user.delete', true],
    ]);
    // Idempotent: a second deactivation adds no lock.
    await t.call('PATCH', '/Users/ada', off);
    expect([...t.store.rows.values()].filter((r) => r.kind === 'lock')).toHaveLength(1);
    expect((await t.call('DELETE', '/Users/ada')).status).toBe(204);
    expect((await t.call('GET', '/Users/ada')).status).toBe(404);
  });

  it('re-activation lifts only the locks SCIM made', async () => {
    const t = setup();
    await t.put('token', scimTokenName('the-token'), token(['Scim']));
    await t.put('lock', 'admin-lock', { kind: 'lock', version: 'v2', metadata: { name: 'admin-lock' }, spec: { target: { user: 'bo' }, message: 'incident' } });
    await t.call('PATCH', '/Users/bo', off);
    expect([...t.store.rows.values()].filter((r) => r.kind === 'lock')).toHaveLength(2);
    expect((await t.call('PATCH', '/Users/bo', { Operations: [{ op: 'replace', path: 'active', value: true }] })).body).toMatchObject({ active: true });
    expect([...t.store.rows.keys()].filter((k) => k.startsWith('lock/'))).toEqual(['lock/admin-lock']);
  });

  it('never touches a local user', async () => {
    const t = setup();
    await t.put('token', scimTokenName('the-token'), token(['Scim']));
    await t.put('user', 'root', localUser('root'));
    for (const [method, body] of [['PATCH', off], ['PUT', { userName: 'root', active: false }], ['DELETE', undefined], ['GET', undefined]] as const) {
      const r = await t.call(method, '/Users/root', body);
      expect(r.status, method).toBe(409);
      expect(r.body['detail']).toMatch(/local Keyway user/);
    }
    expect((await t.call('GET', '/Users')).body).toMatchObject({ totalResults: 0 });
    expect(t.changes).toEqual([]);
  });
});
