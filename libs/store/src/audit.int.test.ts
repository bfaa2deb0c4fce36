import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@keyway/testing';
import { appendAuditEvents, auditEventRow, searchAuditEvents, type AuditEventRecord } from './audit.js';
import { canonicalJson, chainHash } from './audit-chain.js';
import { verifyAuditChain } from './audit-verify.js';
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

// Postgres takes the COPY path; the embedded server, which has no COPY, multi-row inserts.
describe.each(['postgres', 'embedded'] as const)('audit chain on %s', (kind) => {
  let tdb: TestDatabase | undefined;
  let store: Store;
  beforeAll(async () => {
    if (kind === 'postgres') {
      tdb = await createTestDatabase();
      store = await Store.open({ location: { type: 'postgres', connString: tdb.url } });
    } else {
      store = await Store.open({ location: { type: 'embedded', dataDir: mkdtempSync(join(tmpdir(), 'kw-audit-')) } });
    }
    expect(store.supportsCopy).toBe(kind === 'postgres');
  }, 60_000);
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

  it('stores and chains the exact text, whatever characters the fields carry', async () => {
    const odd = event(5, { request_path: '/api/v1/namespaces/x\\y/pods?a=\tb', resource_name: 'line\nbreak \u00e9 \\N', user_traits: { 'k\\': ['\r'] } });
    expect(await appendAuditEvents(store, [odd, event(6)])).toBe(2);
    const [stored] = await searchAuditEvents(store, { limit: 1, before: (await searchAuditEvents(store, { limit: 1 }))[0]?.id });
    expect(stored?.data).toEqual(odd);
    const text = await sql<{ t: string }>`SELECT data::text AS t FROM audit_events WHERE uid = 'uid-5'`.execute(store.db);
    expect(text.rows[0]?.t).toBe(JSON.stringify(odd));
    expect(await verifyAuditChain(store)).toEqual({ checked: 6 });
  });

  it('a batch with duplicates inside it stores each uid once', async () => {
    expect(await appendAuditEvents(store, [event(7), event(7), event(6), event(8)])).toBe(2);
    expect(await verifyAuditChain(store)).toEqual({ checked: 8 });
  });

  it('still verifies events hashed over the canonical form (before 0005)', async () => {
    const legacy = event(9, { b: 1, a: 2 });
    const head = await sql<{ hash: string }>`SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1`.execute(store.db);
    const prev = head.rows[0]?.hash ?? '';
    await store.db
      .insertInto('audit_events')
      // Numbered as migration 0006 numbers the rows before it.
      .values({ ...auditEventRow(legacy), prev_hash: prev, hash: chainHash(prev, canonicalJson(legacy)), seq: 9 })
      .execute();
    expect(await verifyAuditChain(store)).toEqual({ checked: 9 });
  });

  it('names the first event whose row was edited', async () => {
    await sql`UPDATE audit_events SET data = jsonb_set(data::jsonb, '{response_code}', '403')::json WHERE uid = 'uid-2'`.execute(store.db);
    const result = await verifyAuditChain(store);
    expect(result.broken).toMatchObject({ uid: 'uid-2', reason: expect.stringMatching(/does not match its hash/) });
    expect(result.checked).toBe(1);
  });
});
