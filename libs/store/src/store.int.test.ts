import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@keyway/testing';
import { Store } from './store.js';

const role = (name: string, ttl = '8h') => ({
  kind: 'role',
  version: 'v7',
  metadata: { name },
  spec: { options: { max_session_ttl: ttl }, allow: {}, deny: {} },
});

describe('Store on Postgres', () => {
  let tdb: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    tdb = await createTestDatabase();
    store = await Store.open({ location: { type: 'postgres', connString: tdb.url } });
  });
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });

  it('creates, reads, lists and deletes resources with revisions', async () => {
    const put = await store.putResource('role', 'dev', role('dev'), { createOnly: true });
    expect(put).toEqual({ revision: '1', created: true });
    const got = await store.getResource('role', 'dev');
    expect(got.resource).toMatchObject({ kind: 'role', metadata: { name: 'dev', revision: '1' } });
    await expect(store.putResource('role', 'dev', role('dev'), { createOnly: true })).rejects.toMatchObject({
      kind: 'AlreadyExists',
    });
    expect((await store.putResource('role', 'dev', role('dev', '1h'))).revision).toBe('2');
    expect((await store.listResources('role')).map((r) => r.name)).toEqual(['dev']);
    await store.deleteResource('role', 'dev');
    await expect(store.getResource('role', 'dev')).rejects.toMatchObject({ kind: 'NotFound' });
    await expect(store.deleteResource('role', 'dev')).rejects.toMatchObject({ kind: 'NotFound' });
  });

  it('refuses an update based on a stale revision', async () => {
    await store.putResource('role', 'ops', role('ops'));
    await store.putResource('role', 'ops', role('ops', '2h'), { expectedRevision: '1' });
    await expect(store.putResource('role', 'ops', role('ops', '3h'), { expectedRevision: '1' })).rejects.toMatchObject({
      kind: 'CompareFailed',
      data: { revision: '2', expected: '1' },
    });
    expect((await store.getResource('role', 'ops')).resource).toMatchObject({ spec: { options: { max_session_ttl: '2h' } } });
  });

  it('rolls back every write of a failed transaction', async () => {
    await expect(
      store.transaction(async (trx) => {
        await store.putResource('role', 'a', role('a'), { createOnly: true }, trx);
        await store.putResource('role', 'ops', role('ops'), { createOnly: true }, trx); // exists: fails
      }),
    ).rejects.toMatchObject({ kind: 'AlreadyExists' });
    await expect(store.getResource('role', 'a')).rejects.toMatchObject({ kind: 'NotFound' });
  });

  it('keeps connectors of different kinds apart and hides expired resources', async () => {
    await store.putResource('github', 'sso', { kind: 'github', metadata: { name: 'sso' }, spec: {} });
    await store.putResource('oidc', 'sso', { kind: 'oidc', metadata: { name: 'sso' }, spec: {} });
    expect((await store.listResources('github')).length).toBe(1);
    await store.putResource('token', 'old', { kind: 'token', metadata: { name: 'old' } }, { expires: new Date(Date.now() - 1000) });
    await expect(store.getResource('token', 'old')).rejects.toMatchObject({ kind: 'NotFound' });
    expect(await store.listResources('token')).toEqual([]);
    // an expired name can be reused
    expect((await store.putResource('token', 'old', { kind: 'token', metadata: { name: 'old' } }, { createOnly: true })).created).toBe(true);
    expect(await store.deleteExpired(new Date(Date.now() + 1000))).toBeGreaterThanOrEqual(0);
  });
});

describe('Store embedded (PGlite over the wire protocol)', () => {
  it('keeps data across a restart and refuses a second opener', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'keyway-store-'));
    const first = await Store.open({ location: { type: 'embedded', dataDir } });
    await first.putResource('role', 'dev', role('dev'));
    await expect(Store.open({ location: { type: 'embedded', dataDir } })).rejects.toThrow(/in use by process/);
    await first.close();
    const second = await Store.open({ location: { type: 'embedded', dataDir } });
    try {
      expect((await second.getResource('role', 'dev')).revision).toBe('1');
      await second.transaction(async (trx) => {
        await second.putResource('role', 'x', role('x'), {}, trx);
        await second.putResource('role', 'y', role('y'), {}, trx);
      });
      expect((await second.listResources('role')).map((r) => r.name)).toEqual(['dev', 'x', 'y']);
    } finally {
      await second.close();
    }
  }, 60_000);
});
