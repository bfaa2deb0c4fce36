import { sql } from 'kysely';
import { CHAIN_LOCK } from './audit.js';
import { GENESIS, chainState, checkpointMac, keyStartMac, type AuditKey } from './audit-chain.js';
import type { Store } from './store.js';

export interface AuditKeyRecord {
  id: string;
  /** As the auth service sealed it; the store never sees the key in the clear. */
  encryptedKey: string;
  startSeq: number;
}

/** The stored audit keys, oldest first. */
export async function listAuditKeyRecords(store: Store): Promise<AuditKeyRecord[]> {
  const rows = await store.db.selectFrom('audit_keys').select(['id', 'encrypted_key', 'start_seq']).orderBy('start_seq').execute();
  return rows.map((r) => ({ id: r.id, encryptedKey: r.encrypted_key, startSeq: Number(r.start_seq) }));
}

/**
 * Records the first audit key: every event after the current head is linked with it. The
 * record carries a MAC under the key over where keyed linking starts (and the link it
 * continues), so moving it later to pass rewritten rows off as unkeyed fails verification.
 * Under the chain lock, so no event lands between reading the head and recording it; two
 * servers starting at once record one key. Returns whether this call recorded it.
 */
export async function startKeyedAuditChain(store: Store, key: AuditKey, encryptedKey: string): Promise<boolean> {
  return store.transaction(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${CHAIN_LOCK})`.execute(trx);
    if (await trx.selectFrom('audit_keys').select('id').limit(1).executeTakeFirst()) return false;
    const last = await trx.selectFrom('audit_events').select(['seq', 'hash']).orderBy('id', 'desc').limit(1).executeTakeFirst();
    let seq = last?.seq === null || last?.seq === undefined ? 0 : Number(last.seq);
    if (last && last.seq === null) {
      const max = await trx
        .selectFrom('audit_events')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .executeTakeFirst();
      seq = Number(max?.seq ?? 0);
    }
    const startHash = last?.hash ?? GENESIS;
    await trx
      .insertInto('audit_keys')
      .values({ id: key.id, encrypted_key: encryptedKey, start_seq: seq + 1, start_hash: startHash, mac: keyStartMac(key, seq + 1, startHash) })
      .execute();
    return true;
  });
}

export interface AuditCheckpoint {
  seq: number;
  hash: string;
  time: string;
}

/**
 * Signs the last event this process stored, if it stored any since its last checkpoint: the
 * stored chain may then not end before it. Called periodically and when the writer stops.
 */
export async function checkpointAuditChain(store: Store, now = new Date()): Promise<AuditCheckpoint | undefined> {
  const state = chainState(store);
  const key = state.current;
  const head = state.head;
  if (!key || !head || head.seq <= state.checkpointed) return undefined;
  const time = now.toISOString();
  await store.db
    .insertInto('audit_checkpoints')
    .values({ seq: head.seq, hash: head.hash, key_id: key.id, time, mac: checkpointMac(key, head.seq, head.hash, time) })
    .execute();
  state.checkpointed = Math.max(state.checkpointed, head.seq);
  return { seq: head.seq, hash: head.hash, time };
}
