import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@keyway/testing';
import { appendAuditEvents, canonicalJson, searchAuditEvents, verifyAuditChain, type AuditEventRecord } from './audit.js';
import { Store } from './store.js';

const event = (i: number, extra: Record<string, unknown> = {}): AuditEventRecord => ({
  uid: `uid-${i}`,
  time: new Date(Date.UTC(2026, 10, 21, 10, 0, i)).toISOString(),
  event: 'kube.request',
  code: 'T3009I',
  user: i % 2 ? 'jimbo' : 'ada',
  kubernetes_cluster: 'prod',
  resource_namespace: 'default',
  verb: 'list',
  response_code: 200,
  ...extra,
});

describe('audit chain on Postgres', () => {
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

  it('hashes independently of key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
  });

  it('appends in order, once per uid, and verifies', async () => {
    expect(await appendAuditEvents(store, [event(1), event(2), event(3)])).toBe(3);
    // A retried batch adds only what is new.
    expect(await appendAuditEvents(store, [event(2), event(3), event(4)])).toBe(1);
    const all = await searchAuditEvents(store, { limit: 10 });
    expect(all.map((e) => e.uid)).toEqual(['uid-4', 'uid-3', 'uid-2', 'uid-1']);
    expect(await verifyAuditChain(store)).toEqual({ checked: 4 });
  });

  it('filters and pages newest first', async () => {
    const jimbo = await searchAuditEvents(store, { user: 'jimbo', event: 'kube.request', limit: 1 });
    expect(jimbo.map((e) => e.uid)).toEqual(['uid-3']);
    const next = await searchAuditEvents(store, { user: 'jimbo', limit: 1, before: jimbo[0]?.id });
    expect(next.map((e) => e.uid)).toEqual(['uid-1']);
    expect(await searchAuditEvents(store, { cluster: 'staging' })).toEqual([]);
  });

  it('names the first event whose row was edited', async () => {
    await sql`UPDATE audit_events SET data = jsonb_set(data, '{response_code}', '403') WHERE uid = 'uid-2'`.execute(store.db);
    const result = await verifyAuditChain(store);
    expect(result.broken).toMatchObject({ uid: 'uid-2', reason: expect.stringMatching(/does not match its hash/) });
    expect(result.checked).toBe(1);
  });
});
