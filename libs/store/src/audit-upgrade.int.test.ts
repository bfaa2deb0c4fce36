import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@keyway/testing';
import { appendAuditEvents, auditEventRow, type AuditEventRecord } from './audit.js';
import { GENESIS, chainHash, useAuditKeys, type AuditKey } from './audit-chain.js';
import { checkpointAuditChain, startKeyedAuditChain } from './audit-keys.js';
import { verifyAuditChain } from './audit-verify.js';
import { startEmbeddedPostgres } from './embedded.js';
import { migrationProvider } from './migrations.js';
import type { Database } from './schema.js';
import { Store } from './store.js';

const event = (i: number): AuditEventRecord => ({
  uid: `uid-${i}`,
  time: new Date(Date.UTC(2026, 10, 21, 10, 0, i)).toISOString(),
  event: 'kube.request',
  code: 'T3009I',
  user: 'jimbo',
  kubernetes_cluster: 'prod',
  resource_namespace: 'default',
  response_code: 200,
});

/** Rows as the writer before migration 0006 stored them: sha256 links, no number, ids with gaps. */
async function writeLegacyRows(pool: pg.PoolConfig): Promise<void> {
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ ...pool, max: 1 }) }) });
  try {
    const migrator = new Migrator({ db, provider: migrationProvider, migrationTableName: 'keyway_migrations', migrationLockTableName: 'keyway_migrations_lock' });
    const { error } = await migrator.migrateTo('0005_audit_exact_text');
    if (error) throw error instanceof Error ? error : new Error(String(error));
    let prev = GENESIS;
    for (const [i, id] of [1, 2, 5, 9].entries()) {
      const row = auditEventRow(event(i + 1));
      const hash = chainHash(prev, row.data);
      await db
        .insertInto('audit_events')
        .values({ ...row, id: String(id), prev_hash: prev, hash } as never)
        .execute();
      prev = hash;
    }
    await sql`SELECT setval('audit_events_id_seq', 9)`.execute(db);
  } finally {
    await db.destroy();
  }
}

describe.each(['postgres', 'embedded'] as const)('an audit log from before keyed linking, on %s', (kind) => {
  let tdb: TestDatabase | undefined;
  let store: Store;
  const key: AuditKey = { id: 'ak-upgrade', key: randomBytes(32) };
  beforeAll(async () => {
    if (kind === 'postgres') {
      tdb = await createTestDatabase();
      await writeLegacyRows({ connectionString: tdb.url });
      store = await Store.open({ location: { type: 'postgres', connString: tdb.url } });
    } else {
      const dataDir = mkdtempSync(join(tmpdir(), 'kw-audit-up-'));
      const embedded = await startEmbeddedPostgres(dataDir);
      try {
        await writeLegacyRows(embedded.connection);
      } finally {
        await embedded.close();
      }
      store = await Store.open({ location: { type: 'embedded', dataDir } });
    }
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });

  it('numbers the old rows, keeps verifying them the old way, and keys what follows', async () => {
    const numbered = await sql<{ id: string; seq: string }>`SELECT id, seq FROM audit_events ORDER BY id`.execute(store.db);
    expect(numbered.rows.map((r) => [Number(r.id), Number(r.seq)])).toEqual([
      [1, 1],
      [2, 2],
      [5, 3],
      [9, 4],
    ]);
    // Unkeyed until the key is recorded: an old chain verifies as it did.
    expect(await verifyAuditChain(store)).toEqual({ checked: 4 });
    expect(await startKeyedAuditChain(store, key, 'sealed')).toBe(true);
    useAuditKeys(store, [key]);
    await appendAuditEvents(store, [event(5), event(6)]);
    await checkpointAuditChain(store);
    expect(await verifyAuditChain(store)).toEqual({ checked: 6, keyedFrom: 5, checkpoint: 6 });
  });

  it('an old row edited in place is named', async () => {
    const before = await sql<{ text: string }>`SELECT data::text AS text FROM audit_events WHERE uid = 'uid-2'`.execute(store.db);
    await sql`UPDATE audit_events SET data = jsonb_set(data::jsonb, '{response_code}', '403')::json WHERE uid = 'uid-2'`.execute(store.db);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-2', seq: 2, reason: expect.stringMatching(/was edited/) });
    await sql`UPDATE audit_events SET data = ${before.rows[0]?.text}::json WHERE uid = 'uid-2'`.execute(store.db);
    expect((await verifyAuditChain(store)).broken).toBeUndefined();
  });

  it('old rows edited and their sha256 links recomputed no longer reach where keyed linking started', async () => {
    const rows = await sql<{ id: string; text: string }>`SELECT id, data::text AS text FROM audit_events WHERE key_id IS NULL ORDER BY id`.execute(store.db);
    let prev = GENESIS;
    for (const r of rows.rows) {
      const text = r.text.includes('"uid-2"') ? r.text.replace('"response_code":200', '"response_code":403') : r.text;
      const hash = chainHash(prev, text);
      await sql`UPDATE audit_events SET data = ${text}::json, prev_hash = ${prev}, hash = ${hash} WHERE id = ${r.id}`.execute(store.db);
      prev = hash;
    }
    expect((await verifyAuditChain(store)).broken).toMatchObject({
      uid: 'uid-5',
      seq: 5,
      reason: expect.stringMatching(/is where keyed linking started, and the chain before it no longer ends in the link recorded then/),
    });
  });
});
