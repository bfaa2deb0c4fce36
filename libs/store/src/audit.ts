import { sql, type Transaction } from 'kysely';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { BadParameterError } from '@keyway/errors';
import { GENESIS, chainHash, chainState, keyedLink, searchColumns, type AuditKey } from './audit-chain.js';
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
export const CHAIN_LOCK = 0x6b77_6175;

/** An event as its row's columns; `data` is the JSON text stored and hashed. */
export type AuditEventRow = Pick<AuditEventsTable, 'uid' | 'event' | 'code' | 'cluster_name' | 'username' | 'kubernetes_cluster' | 'namespace'> & { time: string; data: string };
type PreparedEvent = AuditEventRow;

/** The columns an event is stored (and searched) under. */
export function auditEventRow(e: AuditEventRecord): AuditEventRow {
  return { ...searchColumns(e), data: JSON.stringify(e) };
}

interface ChainedRow extends PreparedEvent {
  seq: number;
  key_id: string | null;
  prev_hash: string;
  hash: string;
}

interface Head {
  seq: number;
  hash: string;
}

const HEAD_SQL = 'SELECT seq, hash FROM audit_events ORDER BY id DESC LIMIT 1';
const KEYED_FROM_SQL = 'SELECT start_seq FROM audit_keys ORDER BY start_seq LIMIT 1';
const MAX_SEQ_SQL = 'SELECT coalesce(max(seq), 0) AS seq FROM audit_events';
type Query = <R>(text: string) => Promise<R[]>;

/**
 * Where the next event links, read under the chain lock. What this process stored last wins
 * over a stored head that went backwards (its tail was deleted): the gap stays visible to
 * verify instead of being refilled with new events under the same numbers.
 */
async function chainHead(query: Query, stored: { seq: string | null; hash: string | null } | undefined, key: AuditKey | undefined, mine: Head | undefined): Promise<Head> {
  if (!key) {
    // An unkeyed writer may not extend a keyed chain: its links would be the forgeable kind.
    const keyed = await query<{ start_seq: string }>(KEYED_FROM_SQL);
    if (keyed[0]) throw new BadParameterError(`the audit chain is keyed from event #${keyed[0].start_seq} on, and this writer holds no audit key`);
  }
  let head: Head = { seq: 0, hash: GENESIS };
  if (stored) {
    // A row without a number was written around the chain (the bench's plain inserts).
    const seq = stored.seq === null ? Number((await query<{ seq: string }>(MAX_SEQ_SQL))[0]?.seq ?? 0) : Number(stored.seq);
    head = { seq, hash: stored.hash ?? GENESIS };
  }
  return mine && mine.seq >= head.seq ? mine : head;
}

/** Largest audit event, as JSON text. */
export const MAX_AUDIT_EVENT_BYTES = 256 * 1024;

/** Why an event cannot be stored (its identifying fields, its size), or undefined when it can. */
export function auditEventProblem(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return 'an audit event is a JSON object';
  const r = e as Record<string, unknown>;
  if (typeof r['uid'] !== 'string' || !/^[\w.:-]{1,128}$/.test(r['uid'])) return 'uid must be 1 to 128 letters, digits, ".", ":", "_" or "-"';
  if (typeof r['event'] !== 'string' || !/^[\w.:-]{1,64}$/.test(r['event'])) return 'event must be a name of at most 64 characters, like kube.request';
  if (typeof r['code'] !== 'string' || !/^[A-Za-z0-9]{1,16}$/.test(r['code'])) return 'code must be at most 16 letters and digits, like T3009I';
  if (typeof r['time'] !== 'string' || r['time'].length > 40 || !Number.isFinite(Date.parse(r['time']))) return 'time must be an ISO 8601 time';
  if (Buffer.byteLength(JSON.stringify(r)) > MAX_AUDIT_EVENT_BYTES) return `an audit event may be at most ${MAX_AUDIT_EVENT_BYTES / 1024} KiB of JSON`;
  return undefined;
}

/**
 * Appends events in order, each chained to its predecessor. Idempotent on uid: an event
 * already stored (a retried batch) is skipped and does not enter the chain twice.
 * Returns how many were new.
 */
export async function appendAuditEvents(store: Store, events: AuditEventRecord[]): Promise<number> {
  if (events.length === 0) return 0;
  // A malformed event would fail its batch on every retry and stop the log behind it.
  const bad = events.flatMap((e) => {
    const problem = auditEventProblem(e);
    return problem ? [{ uid: typeof e.uid === 'string' ? e.uid.slice(0, 64) : '', problem }] : [];
  });
  if (bad.length > 0) {
    throw new BadParameterError(`${bad.length} of ${events.length} audit events cannot be stored; the first: ${bad[0]?.problem}`, { invalid: bad.slice(0, 10) });
  }
  // Serialized before the chain lock is taken, so other writers wait only for the hashing.
  const prepared = prepare(events);
  if (!store.supportsCopy) return appendWithInsert(store, prepared);
  // Fast path: one COPY. If any uid was already stored (a retried batch), COPY fails on the
  // unique index, the attempt rolls back, and the batch is chained again without them.
  const fast = await store.withConnection((client) => copyChained(store, client, prepared, false)).catch((err: unknown) => {
    if (isUidConflict(err)) return undefined;
    throw err;
  });
  return fast ?? store.withConnection((client) => copyChained(store, client, prepared, true));
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

function link(key: AuditKey | undefined, seq: number, prev: string, data: string): string {
  return key ? keyedLink(key.key, seq, prev, data) : chainHash(prev, data);
}

function chain(events: PreparedEvent[], head: Head, key: AuditKey | undefined): ChainedRow[] {
  let prev = head.hash;
  let seq = head.seq;
  return events.map((e) => {
    seq++;
    const hash = link(key, seq, prev, e.data);
    const row = { ...e, seq, key_id: key?.id ?? null, prev_hash: prev, hash };
    prev = hash;
    return row;
  });
}

async function copyChained(store: Store, client: PoolClient, events: PreparedEvent[], skipStored: boolean): Promise<number> {
  const state = chainState(store);
  const key = state.current;
  // One round trip to open the transaction, take the chain lock and read the chain's head.
  const opened = (await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${CHAIN_LOCK}); ${HEAD_SQL}`)) as unknown as { rows: { seq: string | null; hash: string | null }[] }[];
  try {
    const query: Query = async <R>(text: string) => (await client.query(text)).rows as R[];
    const head = await chainHead(query, opened[2]?.rows[0], key, state.head);
    let todo = events;
    if (skipStored) {
      const stored = await client.query<{ uid: string }>('SELECT uid FROM audit_events WHERE uid = ANY($1::text[])', [events.map((e) => e.uid)]);
      const existing = new Set(stored.rows.map((r) => r.uid));
      todo = events.filter((e) => !existing.has(e.uid));
    }
    let last = head;
    if (todo.length > 0) {
      const { text, end } = copyText(todo, head, key);
      await copyRows(client, text);
      last = end;
    }
    await client.query('COMMIT');
    state.head = last;
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
function copyText(events: PreparedEvent[], head: Head, key: AuditKey | undefined): { text: string; end: Head } {
  let prev = head.hash;
  let seq = head.seq;
  const keyId = key ? copyField(key.id) : '\\N';
  let out = '';
  for (const e of events) {
    seq++;
    const hash = link(key, seq, prev, e.data);
    // JSON text has no raw tab, newline or carriage return; only its backslashes need doubling.
    const data = e.data.includes('\\') ? e.data.replaceAll('\\', '\\\\') : e.data;
    out += `${copyField(e.uid)}\t${copyField(e.time)}\t${copyField(e.event)}\t${copyField(e.code)}\t${copyField(e.cluster_name)}\t${copyField(e.username)}\t${copyField(e.kubernetes_cluster)}\t${copyField(e.namespace)}\t${data}\t${prev}\t${hash}\t${seq}\t${keyId}\n`;
    prev = hash;
  }
  return { text: out, end: { seq, hash: prev } };
}

function copyRows(client: PoolClient, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(`COPY audit_events (${COPY_COLUMNS}) FROM STDIN`));
    stream.on('finish', resolve);
    stream.on('error', reject);
    stream.end(text);
  });
}

const COPY_COLUMNS = 'uid, time, event, code, cluster_name, username, kubernetes_cluster, namespace, data, prev_hash, hash, seq, key_id';
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
  const state = chainState(store);
  const key = state.current;
  const rows = await store.transaction(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${CHAIN_LOCK})`.execute(trx);
    const existing = new Set<string>();
    for (let i = 0; i < events.length; i += 1000) {
      const uids = events.slice(i, i + 1000).map((e) => e.uid);
      for (const r of await trx.selectFrom('audit_events').select('uid').where('uid', 'in', uids).execute()) existing.add(r.uid);
    }
    const query: Query = async <R>(text: string) => (await sql.raw(text).execute(trx)).rows as R[];
    const stored = await query<{ seq: string | null; hash: string | null }>(HEAD_SQL);
    const head = await chainHead(query, stored[0], key, state.head);
    const rows = chain(
      events.filter((e) => !existing.has(e.uid)),
      head,
      key,
    );
    for (let i = 0; i < rows.length; i += 1000) await insertRows(trx, rows.slice(i, i + 1000));
    return rows;
  });
  const last = rows.at(-1);
  if (last) state.head = { seq: last.seq, hash: last.hash };
  return rows.length;
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
