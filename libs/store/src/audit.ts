import { hash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { AuditEventsTable, Database } from './schema.js';
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

/**
 * Keys sorted at every level. Events stored before the data column kept its exact text
 * (migration 0005) were hashed over this form; verification still accepts it for them.
 */
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

/** The chain link: the predecessor's hash and the event's stored JSON text, exactly. */
export function chainHash(prevHash: string, data: string): string {
  // One-shot: no Hash object per event.
  return hash('sha256', `${prevHash}\n${data}`, 'hex');
}

/** An event as its row's columns; `data` is the JSON text stored and hashed. */
export type AuditEventRow = Pick<AuditEventsTable, 'uid' | 'event' | 'code' | 'cluster_name' | 'username' | 'kubernetes_cluster' | 'namespace'> & { time: string; data: string };
type PreparedEvent = AuditEventRow;

/** The columns an event is stored (and searched) under. */
export function auditEventRow(e: AuditEventRecord): AuditEventRow {
  return {
    uid: e.uid,
    time: e.time,
    event: e.event,
    code: e.code,
    cluster_name: str(e['cluster_name']),
    username: str(e['user']),
    kubernetes_cluster: str(e['kubernetes_cluster']),
    namespace: str(e['resource_namespace'] ?? e['kubernetes_pod_namespace']),
    data: JSON.stringify(e),
  };
}

interface ChainedRow extends PreparedEvent {
  prev_hash: string;
  hash: string;
}

/**
 * Appends events in order, each chained to its predecessor. Idempotent on uid: an event
 * already stored (a retried batch) is skipped and does not enter the chain twice.
 * Returns how many were new.
 */
export async function appendAuditEvents(store: Store, events: AuditEventRecord[]): Promise<number> {
  if (events.length === 0) return 0;
  // Serialized before the chain lock is taken, so other writers wait only for the hashing.
  const prepared = prepare(events);
  if (!store.supportsCopy) return appendWithInsert(store, prepared);
  // Fast path: one COPY. If any uid was already stored (a retried batch), COPY fails on the
  // unique index, the attempt rolls back, and the batch is chained again without them.
  const fast = await store.withConnection((client) => copyChained(client, prepared, false)).catch((err: unknown) => {
    if (isUidConflict(err)) return undefined;
    throw err;
  });
  return fast ?? store.withConnection((client) => copyChained(client, prepared, true));
}

function prepare(events: AuditEventRecord[]): PreparedEvent[] {
  const seen = new Set<string>();
  const out: PreparedEvent[] = [];
  for (const e of events) {
    if (seen.has(e.uid)) continue;
    seen.add(e.uid);
    out.push(auditEventRow(e));
  }
  return out;
}

function chain(events: PreparedEvent[], head: string): ChainedRow[] {
  let prev = head;
  return events.map((e) => {
    const hash = chainHash(prev, e.data);
    const row = { ...e, prev_hash: prev, hash };
    prev = hash;
    return row;
  });
}

async function copyChained(client: PoolClient, events: PreparedEvent[], skipStored: boolean): Promise<number> {
  // One round trip to open the transaction, take the chain lock and read the chain's head.
  const opened = (await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${CHAIN_LOCK}); SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1`)) as unknown as { rows: { hash: string | null }[] }[];
  try {
    let todo = events;
    if (skipStored) {
      const stored = await client.query<{ uid: string }>('SELECT uid FROM audit_events WHERE uid = ANY($1::text[])', [events.map((e) => e.uid)]);
      const existing = new Set(stored.rows.map((r) => r.uid));
      todo = events.filter((e) => !existing.has(e.uid));
    }
    if (todo.length > 0) await copyRows(client, copyText(todo, opened[2]?.rows[0]?.hash ?? GENESIS));
    await client.query('COMMIT');
    return todo.length;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * The rows in COPY's text format (tab-separated, \N for null, backslash escapes), chained
 * as they are written: one string per batch, no row objects in between.
 */
function copyText(events: PreparedEvent[], head: string): string {
  let prev = head;
  let out = '';
  for (const e of events) {
    const hash = chainHash(prev, e.data);
    // JSON text has no raw tab, newline or carriage return; only its backslashes need doubling.
    const data = e.data.includes('\\') ? e.data.replaceAll('\\', '\\\\') : e.data;
    out += `${copyField(e.uid)}\t${copyField(e.time)}\t${copyField(e.event)}\t${copyField(e.code)}\t${copyField(e.cluster_name)}\t${copyField(e.username)}\t${copyField(e.kubernetes_cluster)}\t${copyField(e.namespace)}\t${data}\t${prev}\t${hash}\n`;
    prev = hash;
  }
  return out;
}

function copyRows(client: PoolClient, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(`COPY audit_events (${COPY_COLUMNS}) FROM STDIN`));
    stream.on('finish', resolve);
    stream.on('error', reject);
    stream.end(text);
  });
}

const COPY_COLUMNS = 'uid, time, event, code, cluster_name, username, kubernetes_cluster, namespace, data, prev_hash, hash';
const NEEDS_COPY_ESCAPE = /[\\\t\n\r]/;

function copyField(v: string | null): string {
  if (v === null) return '\\N';
  return NEEDS_COPY_ESCAPE.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c] as string) : v;
}

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function isUidConflict(err: unknown): boolean {
  const e = err as { code?: string; constraint?: string };
  return e.code === '23505' && (e.constraint ?? '').includes('uid');
}

/** The embedded server has no COPY: multi-row inserts, same chain, same idempotence. */
async function appendWithInsert(store: Store, events: PreparedEvent[]): Promise<number> {
  return store.transaction(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${CHAIN_LOCK})`.execute(trx);
    const existing = new Set<string>();
    for (let i = 0; i < events.length; i += 1000) {
      const uids = events.slice(i, i + 1000).map((e) => e.uid);
      for (const r of await trx.selectFrom('audit_events').select('uid').where('uid', 'in', uids).execute()) existing.add(r.uid);
    }
    const last = await trx.selectFrom('audit_events').select('hash').orderBy('id', 'desc').limit(1).executeTakeFirst();
    const rows = chain(
      events.filter((e) => !existing.has(e.uid)),
      last?.hash ?? GENESIS,
    );
    for (let i = 0; i < rows.length; i += 1000) await insertRows(trx, rows.slice(i, i + 1000));
    return rows.length;
  });
}

function insertRows(trx: Transaction<Database>, rows: ChainedRow[]) {
  return trx.insertInto('audit_events').values(rows).execute();
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
      .select(['id', 'uid', 'event', 'hash', 'prev_hash', sql<string>`data::text`.as('text')])
      .where('id', '>', afterId)
      .orderBy('id', 'asc')
      .limit(1000)
      .execute();
    if (rows.length === 0) return { checked };
    for (const r of rows) {
      if (r.prev_hash !== prev) {
        return { checked, broken: { id: String(r.id), uid: r.uid, event: r.event, reason: 'does not link to the event before it' } };
      }
      if (chainHash(prev, r.text) !== r.hash && chainHash(prev, canonicalJson(JSON.parse(r.text))) !== r.hash) {
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
