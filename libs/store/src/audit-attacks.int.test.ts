import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type RawBuilder } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@keyway/testing';
import { appendAuditEvents, type AuditEventRecord } from './audit.js';
import { chainHash, useAuditKeys, type AuditKey } from './audit-chain.js';
import { checkpointAuditChain, startKeyedAuditChain } from './audit-keys.js';
import { verifyAuditChain } from './audit-verify.js';
import { Store } from './store.js';

/**
 * The attacker can read and write every table but does not hold the audit key. Each attack
 * must be found, and the first wrong or missing event named.
 */
const event = (i: number): AuditEventRecord => ({
  uid: `uid-${i}`,
  time: new Date(Date.UTC(2026, 10, 21, 10, 0, i)).toISOString(),
  event: 'kube.request',
  code: 'T3009I',
  user: i % 2 ? 'jimbo' : 'ada',
  kubernetes_cluster: 'prod',
  resource_namespace: 'default',
  verb: 'list',
  response_code: 200,
});
const events = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => event(from + i));

describe.each(['postgres', 'embedded'] as const)('audit chain attacks on %s', (kind) => {
  let tdb: TestDatabase | undefined;
  let store: Store;
  const key: AuditKey = { id: 'ak-test', key: randomBytes(32) };
  /** What a restarted auth server knows: its keys, nothing of the head it wrote before. */
  const restart = () => useAuditKeys(store, [key]);
  const run = <R,>(q: RawBuilder<R>) => q.execute(store.db);

  beforeAll(async () => {
    if (kind === 'postgres') {
      tdb = await createTestDatabase();
      store = await Store.open({ location: { type: 'postgres', connString: tdb.url } });
    } else {
      store = await Store.open({ location: { type: 'embedded', dataDir: mkdtempSync(join(tmpdir(), 'kw-audit-attack-')) } });
    }
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });
  // Ten keyed events in two batches, checkpoints after each (the second as the writer stops), the server restarted.
  beforeEach(async () => {
    await run(sql`TRUNCATE audit_events, audit_keys, audit_checkpoints RESTART IDENTITY`);
    expect(await startKeyedAuditChain(store, key, 'sealed')).toBe(true);
    restart();
    await appendAuditEvents(store, events(1, 6));
    expect(await checkpointAuditChain(store)).toMatchObject({ seq: 6 });
    // Nothing new since: no second checkpoint of the same head.
    expect(await checkpointAuditChain(store)).toBeUndefined();
    await appendAuditEvents(store, events(7, 10));
    expect(await checkpointAuditChain(store)).toMatchObject({ seq: 10 });
    restart();
  });

  it('verifies an untouched keyed chain, and keeps it keyed across a second start', async () => {
    expect(await verifyAuditChain(store)).toEqual({ checked: 10, keyedFrom: 1, checkpoint: 10 });
    // A second server starting on the same store records no second key.
    expect(await startKeyedAuditChain(store, { id: 'other', key: randomBytes(32) }, 'sealed')).toBe(false);
    await appendAuditEvents(store, events(11, 12));
    expect(await verifyAuditChain(store)).toEqual({ checked: 12, keyedFrom: 1, checkpoint: 10 });
    const links = await run(sql<{ key_id: string; seq: string }>`SELECT key_id, seq FROM audit_events ORDER BY id`);
    expect(links.rows.map((r) => [r.key_id, Number(r.seq)])).toEqual(Array.from({ length: 12 }, (_, i) => ['ak-test', i + 1]));
  });

  it('verifies times in any RFC 3339 form, finer than the column keeps them', async () => {
    const odd = [
      { ...event(11), time: '2026-11-21T10:00:59.9999999Z' },
      { ...event(12), time: '2026-11-21T12:00:00.123456+02:00' },
    ];
    await appendAuditEvents(store, odd);
    expect(await verifyAuditChain(store)).toMatchObject({ checked: 12 });
    expect((await verifyAuditChain(store)).broken).toBeUndefined();
  });

  it('deleting the last events is truncation after the checkpoint', async () => {
    await run(sql`DELETE FROM audit_events WHERE seq > 7`);
    const r = await verifyAuditChain(store);
    expect(r.checked).toBe(7);
    expect(r.broken).toMatchObject({ uid: 'uid-7', seq: 7, reason: expect.stringMatching(/events #8–#10 were deleted \(truncated after checkpoint 2\)/) });
  });

  it('deleting events newer than the last checkpoint is caught by the server that wrote them', async () => {
    await appendAuditEvents(store, events(11, 13));
    await run(sql`DELETE FROM audit_events WHERE seq > 11`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-11', reason: expect.stringMatching(/stored up to event #13: events #12–#13 were deleted/) });
    // The writer does not refill the numbers it already used: the gap stays visible.
    await appendAuditEvents(store, [event(14)]);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-14', seq: 14, reason: expect.stringMatching(/events #12–#13 before it were deleted/) });
  });

  it('deleting one event in the middle names the gap', async () => {
    await run(sql`DELETE FROM audit_events WHERE uid = 'uid-5'`);
    const r = await verifyAuditChain(store);
    expect(r).toMatchObject({ checked: 4, broken: { uid: 'uid-6', seq: 6, reason: expect.stringMatching(/event #5 before it was deleted/) } });
  });

  it('editing an event and recomputing every following link with plain sha256 is found at the edit', async () => {
    await forgeFrom(4, false);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-4', reason: expect.stringMatching(/was edited: its content does not match its hash \(keyed\)/) });
  });

  it('rewriting the links in the unkeyed form is a downgrade, found at the first rewritten event', async () => {
    await forgeFrom(4, true);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-4', reason: expect.stringMatching(/unkeyed link, but the log is keyed from event #1 on/) });
  });

  it('rewriting the whole chain unkeyed and moving or deleting where keying starts is found', async () => {
    await forgeFrom(1, true);
    await run(sql`UPDATE audit_keys SET start_seq = 11`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ reason: expect.stringMatching(/where keyed linking starts \(audit key ak-test, event #11\) was modified/) });
    await run(sql`DELETE FROM audit_keys`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ reason: expect.stringMatching(/record of audit key ak-test.*was removed/) });
    // The key record gone but the links left as they were: each names a key with no record.
    await run(sql`TRUNCATE audit_events, audit_checkpoints`);
    await appendAuditEvents(store, events(1, 3));
    await run(sql`DELETE FROM audit_keys`);
    useAuditKeys(store, []);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-1', reason: expect.stringMatching(/audit key ak-test, which has no record/) });
  });

  it('a writer without the key refuses to extend a keyed chain', async () => {
    useAuditKeys(store, []);
    await expect(appendAuditEvents(store, [event(11)])).rejects.toThrow(/keyed from event #1 on, and this writer holds no audit key/);
    restart();
    expect(await verifyAuditChain(store)).toMatchObject({ checked: 10 });
    expect((await verifyAuditChain(store)).broken).toBeUndefined();
  });

  it.each([
    ['username', sql`username = 'mallory'`, /user is "mallory" but the event says "jimbo"/],
    ['namespace', sql`namespace = 'kube-system'`, /namespace is "kube-system" but the event says "default"/],
    ['kubernetes_cluster', sql`kubernetes_cluster = NULL`, /kubernetes_cluster is empty but the event says "prod"/],
    ['event', sql`event = 'user.login'`, /event is "user.login" but the event says "kube.request"/],
    ['time', sql`time = time + interval '1 hour'`, /time is 2026-11-21T11:00:03.000Z but the event says "2026-11-21T10:00:03.000Z"/],
  ])('editing the %s search column is found', async (_column, set, reason) => {
    await run(sql`UPDATE audit_events SET ${set} WHERE uid = 'uid-3'`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-3', seq: 3, reason: expect.stringMatching(reason) });
  });

  it('reordering events is found at the first one out of place', async () => {
    // Swap the ids of events 4 and 5, so search and verify meet 5 first.
    await run(sql`UPDATE audit_events SET id = -id WHERE seq IN (4, 5)`);
    await run(sql`UPDATE audit_events SET id = CASE WHEN seq = 4 THEN 5 ELSE 4 END WHERE seq IN (4, 5)`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ id: '4', uid: 'uid-5', reason: expect.stringMatching(/out of order: it is event #5, but event #4 \(id 5, uid uid-4\) comes after it/) });
  });

  it('renumbering events to close a gap is found at the renumbered event', async () => {
    await run(sql`DELETE FROM audit_events WHERE seq = 5`);
    await run(sql`UPDATE audit_events SET seq = seq - 1 WHERE seq > 5`);
    await run(sql`DELETE FROM audit_checkpoints`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-6', seq: 5, reason: expect.stringMatching(/does not link to the event before it/) });
  });

  it('replacing the checkpoint after a truncation is found: its signature does not match', async () => {
    await run(sql`DELETE FROM audit_events WHERE seq > 7`);
    await run(sql`UPDATE audit_checkpoints SET seq = 7, hash = (SELECT hash FROM audit_events WHERE seq = 7) WHERE seq = 10`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-7', reason: expect.stringMatching(/checkpoint 2 .* whose signature does not match: the checkpoint was forged or modified/) });
    // A forged checkpoint added beyond the end, in its place, is no better.
    await run(sql`DELETE FROM audit_checkpoints WHERE id = 2`);
    await run(sql`INSERT INTO audit_checkpoints (seq, hash, key_id, time, mac) VALUES (9, 'x', 'ak-test', '2026-01-01T00:00:00Z', 'y')`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-7', reason: expect.stringMatching(/checkpoint 3 .* forged or modified \(it names event #9\)/) });
  });

  it('a forged checkpoint in the middle is reported before a later edit', async () => {
    await run(sql`UPDATE audit_checkpoints SET mac = 'forged' WHERE seq = 6`);
    await run(sql`UPDATE audit_events SET data = jsonb_set(data::jsonb, '{verb}', '"delete"')::json WHERE seq = 8`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-6', reason: expect.stringMatching(/named by checkpoint 1 .* forged or modified/) });
    await run(sql`DELETE FROM audit_checkpoints WHERE seq = 6`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-8', reason: expect.stringMatching(/was edited/) });
  });

  it('deleting the whole log is found', async () => {
    await run(sql`DELETE FROM audit_events`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ id: '', reason: expect.stringMatching(/^the log has no events, but checkpoint 2 .* recorded event #10: events #1–#10 were deleted/) });
  });

  it('replacing the last event with one of the attacker\'s own is found at it', async () => {
    await run(sql`DELETE FROM audit_events WHERE seq = 10`);
    await run(sql`INSERT INTO audit_events (uid, time, event, code, data, seq, key_id, prev_hash, hash)
      SELECT 'uid-x', time, event, code, data, 10, key_id, hash, 'f00' FROM audit_events WHERE seq = 9`);
    expect((await verifyAuditChain(store)).broken).toMatchObject({ uid: 'uid-x', seq: 10, reason: expect.stringMatching(/was edited/) });
  });

  it('verifies from a point in time, still checking what comes after', async () => {
    const since = new Date(Date.UTC(2026, 10, 21, 10, 0, 6));
    expect(await verifyAuditChain(store, since)).toEqual({ checked: 5, keyedFrom: 1, checkpoint: 10 });
    await run(sql`DELETE FROM audit_events WHERE uid = 'uid-8'`);
    expect((await verifyAuditChain(store, since)).broken).toMatchObject({ uid: 'uid-9', reason: expect.stringMatching(/#8 before it was deleted/) });
  });

  /** Edits event `from` and recomputes every following link with plain sha256, as someone without the key can. */
  async function forgeFrom(from: number, asUnkeyed: boolean): Promise<void> {
    const rows = await run(sql<{ id: string; seq: string; text: string }>`SELECT id, seq, data::text AS text FROM audit_events ORDER BY id`);
    let prev = from === 1 ? '0'.repeat(64) : ((await run(sql<{ hash: string }>`SELECT hash FROM audit_events WHERE seq = ${from - 1}`)).rows[0]?.hash as string);
    for (const r of rows.rows.filter((x) => Number(x.seq) >= from)) {
      const text = Number(r.seq) === from ? r.text.replace('"response_code":200', '"response_code":403') : r.text;
      const hash = chainHash(prev, text);
      await run(sql`UPDATE audit_events SET data = ${text}::json, prev_hash = ${prev}, hash = ${hash}, key_id = ${asUnkeyed ? null : 'ak-test'} WHERE id = ${r.id}`);
      prev = hash;
    }
  }
});
