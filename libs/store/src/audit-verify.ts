import { sql } from 'kysely';
import { GENESIS, canonicalJson, chainHash, chainState, checkpointMac, keyStartMac, keyedLink, sameMac, searchColumns, type AuditKey, type SearchColumns } from './audit-chain.js';
import type { Store } from './store.js';

export interface ChainVerification {
  checked: number;
  /** The first event that is wrong or missing (or next to where one is missing), and why. */
  broken?: { id: string; uid: string; event: string; seq?: number; reason: string };
  /** The number of the first keyed event, when the chain is keyed. */
  keyedFrom?: number;
  /** The newest checkpoint the stored chain reaches. */
  checkpoint?: number;
}

interface Segment {
  key: AuditKey;
  start: number;
  startHash: string;
}

interface Row {
  id: string;
  uid: string;
  event: string;
  code: string;
  time_us: string;
  cluster_name: string | null;
  username: string | null;
  kubernetes_cluster: string | null;
  namespace: string | null;
  seq: string | null;
  key_id: string | null;
  hash: string | null;
  prev_hash: string | null;
  text: string;
}

interface Checkpoint {
  id: string;
  seq: string;
  hash: string;
  key_id: string;
  time: string;
  mac: string;
}

const PAGE = 1000;
const COLUMN_NAMES: Record<keyof SearchColumns, string> = {
  uid: 'uid',
  time: 'time',
  event: 'event',
  code: 'code',
  cluster_name: 'cluster_name',
  username: 'user',
  kubernetes_cluster: 'kubernetes_cluster',
  namespace: 'namespace',
};

type Broken = NonNullable<ChainVerification['broken']>;

const brokenAt = (r: Row, reason: string): Broken => ({ id: String(r.id), uid: r.uid, event: r.event, ...(r.seq !== null ? { seq: Number(r.seq) } : {}), reason });
const brokenLog = (reason: string): Broken => ({ id: '', uid: '', event: '', reason });

/**
 * Recomputes the chain from `since` (or the start), in id order, and names the first event
 * that was edited, removed, moved or whose search columns disagree with its JSON; then checks
 * that the chain reaches its newest checkpoint (and the last event this server stored).
 */
export async function verifyAuditChain(store: Store, since?: Date): Promise<ChainVerification> {
  const state = chainState(store);
  const segments: Segment[] = [];
  const keyRows = await store.db.selectFrom('audit_keys').select(['id', 'start_seq', 'start_hash', 'mac']).orderBy('start_seq').execute();
  for (const r of keyRows) {
    const key = state.keys.get(r.id);
    if (!key) return { checked: 0, broken: brokenLog(`the log is linked with audit key ${r.id} from event #${r.start_seq} on, and this server does not hold that key`) };
    if (!sameMac(r.mac, keyStartMac(key, Number(r.start_seq), r.start_hash))) {
      return { checked: 0, broken: brokenLog(`the record of where keyed linking starts (audit key ${r.id}, event #${r.start_seq}) was modified`) };
    }
    segments.push({ key, start: Number(r.start_seq), startHash: r.start_hash });
  }
  for (const id of state.keys.keys()) {
    if (!keyRows.some((r) => r.id === id)) return { checked: 0, broken: brokenLog(`the record of audit key ${id}, which says from which event on the log is keyed, was removed`) };
  }
  const keyedFrom = segments[0]?.start;
  const done = (v: Omit<ChainVerification, 'keyedFrom'>): ChainVerification => ({ ...v, ...(keyedFrom !== undefined ? { keyedFrom } : {}) });

  let prev = GENESIS;
  let expect = 1;
  let afterId = '0';
  if (since) {
    const before = await store.db.selectFrom('audit_events').select(['id', 'hash', 'seq']).where('time', '<', since).orderBy('id', 'desc').limit(1).executeTakeFirst();
    if (before) {
      prev = before.hash ?? GENESIS;
      expect = Number(before.seq ?? 0) + 1;
      afterId = String(before.id);
    }
  }
  let checked = 0;
  let last: Row | undefined;
  let checkpoint: number | undefined;
  let checkedCheckpointsTo = expect - 1;
  for (;;) {
    const rows = (await sql<Row>`
      SELECT id, uid, event, code, (extract(epoch FROM time) * 1000000)::bigint AS time_us, cluster_name, username,
             kubernetes_cluster, namespace, seq, key_id, hash, prev_hash, data::text AS text
      FROM audit_events WHERE id > ${afterId} ORDER BY id LIMIT ${PAGE}`.execute(store.db)).rows;
    if (rows.length === 0) break;
    // The checkpoints this page reaches must name its links, under a valid signature; each
    // is checked right after the event it names, so the first problem is the one reported.
    const hi = Math.max(...rows.map((r) => Number(r.seq ?? 0)));
    const cps = new Map<number, Checkpoint[]>();
    for (const cp of await checkpointsIn(store, checkedCheckpointsTo, hi)) cps.set(Number(cp.seq), [...(cps.get(Number(cp.seq)) ?? []), cp]);
    for (const r of rows) {
      const wrong = (await checkRow(store, r, expect, prev, segments)) ?? checkpointsAt(r, cps.get(Number(r.seq)) ?? [], state.keys);
      if (wrong) return done({ checked, broken: wrong, ...(checkpoint !== undefined ? { checkpoint } : {}) });
      const seq = Number(r.seq);
      if (cps.has(seq)) checkpoint = seq;
      prev = r.hash ?? '';
      expect = seq + 1;
      afterId = String(r.id);
      last = r;
      checked++;
    }
    checkedCheckpointsTo = expect - 1;
  }
  const end = expect - 1;
  const result = (broken: Broken | undefined) => done({ checked, ...(broken ? { broken } : {}), ...(checkpoint !== undefined ? { checkpoint } : {}) });
  const atEnd = (why: string) => (last ? brokenAt(last, `is the last stored event, but ${why}`) : brokenLog(`${end === 0 ? 'the log has no events' : `the log ends at event #${end}`}, but ${why}`));
  // Anything recorded beyond the stored end proves that events after it were deleted.
  const beyond = await store.db.selectFrom('audit_checkpoints').selectAll().where('seq', '>', String(end)).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  if (beyond) {
    const bad = checkCheckpoint(beyond, state.keys);
    if (bad) return result(atEnd(`${bad} (it names event #${beyond.seq})`));
    return result(atEnd(`checkpoint ${beyond.id} of ${beyond.time} recorded event #${beyond.seq}: events ${range(end + 1, Number(beyond.seq))} were deleted (truncated after checkpoint ${beyond.id})`));
  }
  if (state.head && state.head.seq > end) {
    return result(atEnd(`this auth server stored up to event #${state.head.seq}: events ${range(end + 1, state.head.seq)} were deleted (truncated)`));
  }
  const lastStart = segments.at(-1)?.start;
  if (lastStart !== undefined && lastStart - 1 > end) {
    return result(atEnd(`keyed linking started after event #${lastStart - 1}: events ${range(end + 1, lastStart - 1)} were deleted (truncated)`));
  }
  return result(undefined);
}

async function checkRow(store: Store, r: Row, expect: number, prev: string, segments: Segment[]): Promise<Broken | undefined> {
  if (r.seq === null) return brokenAt(r, 'has no sequence number: it was written around the chain');
  const seq = Number(r.seq);
  if (seq < expect) return brokenAt(r, `is stored out of order: it is event #${seq}, after event #${expect - 1}`);
  if (seq > expect) {
    const moved = await store.db.selectFrom('audit_events').select(['id', 'uid']).where('seq', '=', String(expect)).executeTakeFirst();
    if (moved) return brokenAt(r, `is stored out of order: it is event #${seq}, but event #${expect} (id ${moved.id}, uid ${moved.uid}) comes after it`);
    return brokenAt(r, `follows a gap: event${seq - expect > 1 ? 's' : ''} ${range(expect, seq - 1)} before it ${seq - expect > 1 ? 'were' : 'was'} deleted`);
  }
  const segment = segmentOf(segments, seq);
  if (segment) {
    if (seq === segment.start && prev !== segment.startHash) {
      return brokenAt(r, `is where keyed linking started, and the chain before it no longer ends in the link recorded then: events before #${seq} were edited, deleted or recomputed`);
    }
    if (r.key_id === null) return brokenAt(r, `has an unkeyed link, but the log is keyed from event #${segments[0]?.start} on: it was rewritten without the key`);
    if (r.key_id !== segment.key.id) return brokenAt(r, `is linked with key ${r.key_id}, but event #${seq} belongs to audit key ${segment.key.id}: it was rewritten`);
  } else if (r.key_id !== null) {
    return brokenAt(r, `is linked with audit key ${r.key_id}, which has no record: the record of where keyed linking starts was removed`);
  }
  if (r.prev_hash !== prev) return brokenAt(r, 'does not link to the event before it: an event was removed, inserted or recomputed');
  const ok = segment
    ? sameMac(r.hash, keyedLink(segment.key.key, seq, prev, r.text))
    : chainHash(prev, r.text) === r.hash || chainHash(prev, canonicalJson(JSON.parse(r.text))) === r.hash;
  if (!ok) return brokenAt(r, `was edited: its content does not match its hash${segment ? ' (keyed)' : ''}`);
  return columnMismatch(r);
}

/** The stored search columns must be what the hashed JSON says. */
function columnMismatch(r: Row): Broken | undefined {
  const e = JSON.parse(r.text) as Record<string, unknown>;
  const want = searchColumns(e);
  for (const c of ['uid', 'event', 'code', 'cluster_name', 'username', 'kubernetes_cluster', 'namespace'] as const) {
    if (r[c] !== want[c]) return brokenAt(r, `has a search column that disagrees with its content: ${COLUMN_NAMES[c]} is ${show(r[c])} but the event says ${show(want[c])}`);
  }
  // Postgres rounds to the microsecond, JavaScript truncates to the millisecond.
  const ms = typeof want.time === 'string' ? Date.parse(want.time) : NaN;
  const skew = Number(r.time_us) - ms * 1000;
  if (!(skew >= 0 && skew <= 1000)) {
    return brokenAt(r, `has a search column that disagrees with its content: time is ${new Date(Number(r.time_us) / 1000).toISOString()} but the event says ${show(want.time)}`);
  }
  return undefined;
}

function segmentOf(segments: Segment[], seq: number): Segment | undefined {
  let found: Segment | undefined;
  for (const s of segments) if (s.start <= seq) found = s;
  return found;
}

function checkpointsAt(r: Row, cps: Checkpoint[], keys: Map<string, AuditKey>): Broken | undefined {
  for (const cp of cps) {
    const bad = checkCheckpoint(cp, keys);
    if (bad) return brokenAt(r, `is named by ${bad}`);
    if (r.hash !== cp.hash) return brokenAt(r, `does not match checkpoint ${cp.id} of ${cp.time}, which recorded another link for event #${cp.seq}: it was replaced`);
  }
  return undefined;
}

function checkCheckpoint(cp: Checkpoint, keys: Map<string, AuditKey>): string | undefined {
  const key = keys.get(cp.key_id);
  if (!key) return `checkpoint ${cp.id}, signed with audit key ${cp.key_id}, which this server does not hold`;
  if (!sameMac(cp.mac, checkpointMac(key, Number(cp.seq), cp.hash, cp.time))) return `checkpoint ${cp.id} of ${cp.time}, whose signature does not match: the checkpoint was forged or modified`;
  return undefined;
}

function checkpointsIn(store: Store, after: number, upTo: number): Promise<Checkpoint[]> {
  return store.db.selectFrom('audit_checkpoints').selectAll().where('seq', '>', String(after)).where('seq', '<=', String(upTo)).orderBy('seq').orderBy('id').execute();
}

function range(from: number, to: number): string {
  return from === to ? `#${from}` : `#${from}–#${to}`;
}

function show(v: unknown): string {
  return v === null || v === undefined ? 'empty' : JSON.stringify(v);
}
