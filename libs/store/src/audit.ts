import { createHash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database } from './schema.js';
import type { Store } from './store.js';

/** An audit event as stored: Teleport's field names, flat, plus the indexed columns. */
export interface StoredAuditEvent {
  id: string;
  uid: string;
  time: Date;
  event: string;
  code: string;
  data: Record<string, unknown>;
  hash: string;
  prevHash: string;
}

export interface AuditEventRecord {
  uid: string;
  time: string;
  event: string;
  code: string;
  [field: string]: unknown;
}

export interface AuditQuery {
  from?: Date;
  to?: Date;
  event?: string;
  user?: string;
  cluster?: string;
  namespace?: string;
  limit?: number;
  /** The id of the last event of the previous page (newest first). */
  before?: string;
}

/** Events are chained in one order; writers take this advisory lock to append. */
const CHAIN_LOCK = 0x6b77_6175;
const GENESIS = '0'.repeat(64);

/** Keys sorted at every level, so the hash of an event does not depend on key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value as object)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export function chainHash(prevHash: string, event: AuditEventRecord): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(event)).digest('hex');
}

/**
 * Appends events in order, each chained to its predecessor. Idempotent on uid: an event
 * already stored (a retried batch) is skipped and does not enter the chain twice.
 * Returns how many were new.
 */
export async function appendAuditEvents(store: Store, events: AuditEventRecord[]): Promise<number> {
  if (events.length === 0) return 0;
  // Fast path: a new batch goes in with one multi-row insert. If any uid was already
  // stored (a retried batch), that attempt is rolled back and the batch is chained again
  // without the duplicates, so a duplicate never enters the chain.
  const fast = await store.transaction((trx) => insertChained(trx, events, new Set(), true)).catch((err: unknown) => {
    if (err instanceof DuplicateInBatch) return undefined;
    throw err;
  });
  if (fast !== undefined) return fast;
  return store.transaction(async (trx) => {
    const uids = events.map((e) => e.uid);
    const existing = new Set((await trx.selectFrom('audit_events').select('uid').where('uid', 'in', uids).execute()).map((r) => r.uid));
    return insertChained(trx, events, existing, false);
  });
}

class DuplicateInBatch extends Error {}

async function insertChained(trx: Transaction<Database>, events: AuditEventRecord[], skip: Set<string>, failOnDuplicate: boolean): Promise<number> {
  await sql`SELECT pg_advisory_xact_lock(${CHAIN_LOCK})`.execute(trx);
  const last = await trx.selectFrom('audit_events').select('hash').orderBy('id', 'desc').limit(1).executeTakeFirst();
  let prev = last?.hash ?? GENESIS;
  const rows = [];
  const seen = new Set(skip);
  for (const e of events) {
    if (seen.has(e.uid)) continue;
    seen.add(e.uid);
    const hash = chainHash(prev, e);
    rows.push({
      uid: e.uid,
      time: e.time,
      event: e.event,
      code: e.code,
      cluster_name: str(e['cluster_name']),
      username: str(e['user']),
      kubernetes_cluster: str(e['kubernetes_cluster']),
      namespace: str(e['resource_namespace'] ?? e['kubernetes_pod_namespace']),
      data: JSON.stringify(e),
      prev_hash: prev,
      hash,
    });
    prev = hash;
  }
  // Multi-row inserts: row-by-row inserts would cap the rate far lower.
  for (let i = 0; i < rows.length; i += 1000) {
    const chunk = rows.slice(i, i + 1000);
    const inserted = await trx
      .insertInto('audit_events')
      .values(chunk)
      .onConflict((oc) => oc.column('uid').doNothing())
      .returning('id')
      .execute();
    if (inserted.length !== chunk.length) {
      if (failOnDuplicate) throw new DuplicateInBatch();
      throw new Error('audit event uid stored concurrently during a chained insert');
    }
  }
  return rows.length;
}

export async function searchAuditEvents(store: Store, q: AuditQuery): Promise<StoredAuditEvent[]> {
  let query = store.db.selectFrom('audit_events').select(['id', 'uid', 'time', 'event', 'code', 'data', 'hash', 'prev_hash']);
  if (q.from) query = query.where('time', '>=', q.from);
  if (q.to) query = query.where('time', '<', q.to);
  if (q.event) query = query.where('event', '=', q.event);
  if (q.user) query = query.where('username', '=', q.user);
  if (q.cluster) query = query.where('kubernetes_cluster', '=', q.cluster);
  if (q.namespace) query = query.where('namespace', '=', q.namespace);
  if (q.before) query = query.where('id', '<', q.before);
  const rows = await query.orderBy('id', 'desc').limit(Math.min(Math.max(q.limit ?? 100, 1), 10_000)).execute();
  return rows.map((r) => ({ id: String(r.id), uid: r.uid, time: r.time, event: r.event, code: r.code, data: r.data, hash: r.hash ?? '', prevHash: r.prev_hash ?? '' }));
}

export interface ChainVerification {
  checked: number;
  /** The first event whose stored hash or link does not match, if any. */
  broken?: { id: string; uid: string; event: string; reason: string };
}

/** Recomputes the chain from `since` (or the start), in pages. */
export async function verifyAuditChain(store: Store, since?: Date): Promise<ChainVerification> {
  let prev = GENESIS;
  let afterId = '0';
  let checked = 0;
  if (since) {
    const before = await store.db.selectFrom('audit_events').select(['id', 'hash']).where('time', '<', since).orderBy('id', 'desc').limit(1).executeTakeFirst();
    if (before) {
      prev = before.hash ?? GENESIS;
      afterId = String(before.id);
    }
  }
  for (;;) {
    const rows = await store.db
      .selectFrom('audit_events')
      .select(['id', 'uid', 'event', 'data', 'hash', 'prev_hash'])
      .where('id', '>', afterId)
      .orderBy('id', 'asc')
      .limit(1000)
      .execute();
    if (rows.length === 0) return { checked };
    for (const r of rows) {
      if (r.prev_hash !== prev) {
        return { checked, broken: { id: String(r.id), uid: r.uid, event: r.event, reason: 'does not link to the event before it' } };
      }
      if (chainHash(prev, r.data as AuditEventRecord) !== r.hash) {
        return { checked, broken: { id: String(r.id), uid: r.uid, event: r.event, reason: 'its content does not match its hash' } };
      }
      prev = r.hash ?? '';
      afterId = String(r.id);
      checked++;
    }
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}
