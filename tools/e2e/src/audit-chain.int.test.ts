import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthService, ca } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { createTestDatabase, type TestDatabase } from '@keyway/testing';
import { kwctlIn } from './harness.js';

// The audit chain as an operator meets it: auth creates and seals the audit key on first
// start, links every event with it, signs the head when it stops, and `kwctl audit verify`
// names what someone with write access to Postgres (but not the key) did to the log.
const CA_KEY = 'test-ca-key-audit-chain-0123456789';
const { decryptCaKey, isEncryptedCaKey } = ca;

describe('keyed audit chain: auth + kwctl audit verify on Postgres', () => {
  let tdb: TestDatabase;
  let db: pg.Client;
  let auth: AuthService | undefined;
  let dataDir: string;
  const kwctl = kwctlIn(() => dataDir);
  let n = 0;

  const start = async () => {
    const config = loadConfig({
      env: { KEYWAY_DATABASE_URL: tdb.url, KEYWAY_CA_KEY: CA_KEY, KEYWAY_DATA_DIR: dataDir, KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'acme' },
    });
    auth = await AuthService.create({ config, logger: silentLogger() });
    await auth.serve();
    return auth;
  };
  const emit = async (count: number) => {
    const a = auth as AuthService;
    for (let i = 0; i < count; i++) {
      n++;
      a.audit.emit({ uid: `e2e-${n}`, time: new Date(Date.UTC(2026, 10, 21, 10, 0, n)).toISOString(), event: 'kube.request', code: 'T3009I', user: 'jimbo', kubernetes_cluster: 'prod', resource_namespace: 'default', verb: 'get' });
    }
    await a.audit.flush();
  };

  beforeAll(async () => {
    tdb = await createTestDatabase();
    db = new pg.Client({ connectionString: tdb.url });
    await db.connect();
    dataDir = mkdtempSync(join(tmpdir(), 'keyway-audit-chain-'));
    await start();
  }, 60_000);
  afterAll(async () => {
    await auth?.close();
    await db?.end();
    await tdb?.drop();
  });

  it('creates one audit key on first start, sealed like the CA keys, and links every event with it', async () => {
    await emit(5);
    const keys = await db.query<{ id: string; encrypted_key: string; start_seq: string }>('SELECT id, encrypted_key, start_seq FROM audit_keys');
    expect(keys.rows).toHaveLength(1);
    const k = keys.rows[0] as { id: string; encrypted_key: string; start_seq: string };
    expect(isEncryptedCaKey(k.encrypted_key)).toBe(true);
    // Preset roles are created before any event: keyed from the very first.
    expect(Number(k.start_seq)).toBe(1);
    await expect(decryptCaKey(k.encrypted_key, 'not-the-ca-key', { context: `audit key ${k.id}` })).rejects.toThrow(/wrong KEYWAY_CA_KEY/);
    // Bound to its id: a key record moved under another id does not open.
    await expect(decryptCaKey(k.encrypted_key, CA_KEY, { context: 'audit key other' })).rejects.toThrow(/integrity check/);
    const key = Buffer.from(await decryptCaKey(k.encrypted_key, CA_KEY, { context: `audit key ${k.id}` }), 'base64url');
    expect(key).toHaveLength(32);
    const rows = await db.query<{ seq: string; key_id: string; prev_hash: string; hash: string; text: string }>('SELECT seq, key_id, prev_hash, hash, data::text AS text FROM audit_events ORDER BY id');
    expect(rows.rows.length).toBeGreaterThanOrEqual(5);
    for (const r of rows.rows) {
      expect(r.key_id).toBe(k.id);
      expect(r.hash).toBe(createHmac('sha256', key).update(`${r.seq}\n${r.prev_hash}\n${r.text}`).digest('hex'));
    }
    expect((await kwctl(['audit', 'verify'])).out).toMatch(/^The audit log is intact: \d+ event\(s\) checked\.\n$/);
  });

  it('a restart keeps the key; deleting the last events after the writer stopped fails verify, naming them', async () => {
    await (auth as AuthService).close();
    auth = undefined;
    const cps = await db.query<{ seq: string }>('SELECT seq FROM audit_checkpoints ORDER BY id DESC LIMIT 1');
    const last = await db.query<{ seq: string }>('SELECT max(seq) AS seq FROM audit_events');
    expect(cps.rows[0]?.seq).toBe(last.rows[0]?.seq);
    const end = Number(last.rows[0]?.seq);
    await db.query('DELETE FROM audit_events WHERE seq > $1', [end - 2]);
    await start();
    expect((await db.query('SELECT id FROM audit_keys')).rows).toHaveLength(1);
    const survivor = await db.query<{ id: string; uid: string }>('SELECT id, uid FROM audit_events WHERE seq = $1', [end - 2]);
    const verify = await kwctl(['audit', 'verify']);
    expect(verify.code).toBe(1);
    expect(verify.err).toContain(`event ${survivor.rows[0]?.id} (kube.request, uid ${survivor.rows[0]?.uid}) is the last stored event`);
    expect(verify.err).toMatch(new RegExp(`events #${end - 1}–#${end} were deleted \\(truncated after checkpoint \\d+\\)`));
  });

  it('a changed search column fails verify, naming the event and the column', async () => {
    // A fresh log for this attack: the truncated one above stays broken.
    await db.query('TRUNCATE audit_events, audit_checkpoints');
    await (auth as AuthService).close();
    auth = undefined;
    await db.query('TRUNCATE audit_keys');
    await start();
    await emit(3);
    expect((await kwctl(['audit', 'verify'])).code).toBe(0);
    const victim = await db.query<{ id: string; uid: string }>("SELECT id, uid FROM audit_events WHERE event = 'kube.request' ORDER BY id LIMIT 1");
    await db.query("UPDATE audit_events SET username = 'someone-else' WHERE uid = $1", [victim.rows[0]?.uid]);
    const verify = await kwctl(['audit', 'verify']);
    expect(verify.code).toBe(1);
    expect(verify.err).toContain(`event ${victim.rows[0]?.id} (kube.request, uid ${victim.rows[0]?.uid}) has a search column that disagrees with its content: user is "someone-else" but the event says "jimbo"`);
  });
});
