import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import type { Store } from './store.js';
import type { AuditEventsTable } from './schema.js';

/**
 * The audit chain's link formats and the keys this process links with.
 *
 * Unkeyed (before migration 0006, and writers with no key): sha256(prev "\n" data). Anyone who
 * can write the table can recompute it, so it proves nothing once edited wholesale.
 * Keyed: HMAC-SHA256(audit key, seq "\n" prev "\n" data). The sequence number is inside the MAC,
 * so a missing or moved event shows as a gap even where bigserial ids have gaps of their own.
 * Where keyed linking starts is itself a MAC'd record (the key's row in audit_keys), so rows
 * after it cannot be rewritten in the unkeyed form.
 */

export const GENESIS = '0'.repeat(64);

/** One audit key: its id (stored with each link it made) and its 32 secret bytes. */
export interface AuditKey {
  id: string;
  key: Buffer;
}

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

/** The unkeyed link: the predecessor's hash and the event's stored JSON text, exactly. */
export function chainHash(prevHash: string, data: string): string {
  // One-shot: no Hash object per event.
  return hash('sha256', `${prevHash}\n${data}`, 'hex');
}

/** The keyed link of the event numbered seq. */
export function keyedLink(key: Buffer, seq: number, prevHash: string, data: string): string {
  return createHmac('sha256', key).update(`${seq}\n${prevHash}\n${data}`).digest('hex');
}

/** The MAC of the record saying that key `id` links every event from startSeq on. */
export function keyStartMac(k: AuditKey, startSeq: number, startHash: string): string {
  return createHmac('sha256', k.key).update(`keyway-audit-key-start\n${k.id}\n${startSeq}\n${startHash}`).digest('hex');
}

/** The MAC of a checkpoint: the chain had reached event seq, whose link was hash, at time. */
export function checkpointMac(k: AuditKey, seq: number, linkHash: string, time: string): string {
  return createHmac('sha256', k.key).update(`keyway-audit-checkpoint\n${k.id}\n${seq}\n${linkHash}\n${time}`).digest('hex');
}

export function sameMac(a: string | null, b: string): boolean {
  if (a === null || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** What this process knows about the chain: its keys and the last link it wrote or signed. */
export interface ChainState {
  /** The key new links are made with: the newest one. */
  current: AuditKey | undefined;
  keys: Map<string, AuditKey>;
  /** The last event this process stored: the stored chain must not end before it. */
  head: { seq: number; hash: string } | undefined;
  /** The head as of this process's last checkpoint. */
  checkpointed: number;
}

const states = new WeakMap<Store, ChainState>();

/**
 * Registers the audit keys this process links and verifies with (newest last), as a fresh
 * start: what it remembered of the head is forgotten. Only the auth service holds them.
 */
export function useAuditKeys(store: Store, keys: AuditKey[]): void {
  states.set(store, { current: keys.at(-1), keys: new Map(keys.map((k) => [k.id, k])), head: undefined, checkpointed: 0 });
}

export function chainState(store: Store): ChainState {
  let s = states.get(store);
  if (!s) {
    s = { current: undefined, keys: new Map(), head: undefined, checkpointed: 0 };
    states.set(store, s);
  }
  return s;
}

/** The columns an event is searched under, derived from its JSON: the writer's and verify's one rule. */
export type SearchColumns = Pick<AuditEventsTable, 'uid' | 'event' | 'code' | 'cluster_name' | 'username' | 'kubernetes_cluster' | 'namespace'> & { time: string };

export function searchColumns(e: Record<string, unknown>): SearchColumns {
  return {
    uid: e['uid'] as string,
    time: e['time'] as string,
    event: e['event'] as string,
    code: e['code'] as string,
    cluster_name: str(e['cluster_name']),
    username: str(e['user']),
    kubernetes_cluster: str(e['kubernetes_cluster']),
    namespace: str(e['resource_namespace'] ?? e['kubernetes_pod_namespace']),
  };
}

/**
 * The longest value a search column keeps. A search needs no more, and Postgres refuses an
 * index entry over about 2.7 KiB: one event with a longer user or namespace would fail its
 * batch for ever and stop the audit log behind it.
 */
export const SEARCH_COLUMN_MAX = 256;

function str(v: unknown): string | null {
  if (typeof v !== 'string' || v === '') return null;
  // A text column cannot hold NUL; the hashed JSON keeps the value as it was.
  const clean = v.includes('\u0000') ? v.replaceAll('\u0000', '') : v;
  return clean.slice(0, SEARCH_COLUMN_MAX) || null;
}
