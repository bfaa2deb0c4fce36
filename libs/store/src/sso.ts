import { sql } from 'kysely';
import type { Store } from './store.js';

/**
 * SSO login requests, kept between `begin` (the browser leaves for the provider) and the
 * provider's callback. Taking one deletes it in the same statement, so of two callbacks for
 * one request (a replay, a double submit) on any auth replica only the first finds it.
 */
export async function putSsoRequest(store: Store, id: string, kind: string, data: Record<string, unknown>, expires: Date): Promise<void> {
  await store.db.insertInto('sso_requests').values({ id, kind, data: JSON.stringify(data), expires }).execute();
}

/** The request, if it exists, is of `kind` and has not expired; it is gone afterwards either way. */
export async function takeSsoRequest(store: Store, id: string, kind: string, now = new Date()): Promise<Record<string, unknown> | undefined> {
  const row = await store.db.deleteFrom('sso_requests').where('id', '=', id).returning(['kind', 'data', 'expires']).executeTakeFirst();
  if (!row || row.kind !== kind || row.expires.getTime() <= now.getTime()) return undefined;
  return row.data;
}

/**
 * Records that an assertion (or any single-use id) was used; true when it already was.
 * Kept until `expires`, after which the assertion itself is refused as expired.
 */
export async function markSsoSeen(store: Store, id: string, expires: Date): Promise<boolean> {
  const r = await store.db
    .insertInto('sso_seen')
    .values({ id, expires })
    .onConflict((oc) => oc.column('id').doUpdateSet({ expires: (eb) => eb.ref('excluded.expires') }).where('sso_seen.expires', '<=', sql<Date>`now()`))
    .returning('id')
    .executeTakeFirst();
  return r === undefined;
}

export interface SsoSession {
  username: string;
  kind: string;
  connector: string;
  subject: string;
  /** The renewal secret, sealed by the auth service; the store never sees it in the clear. */
  sealed: string;
  checkedAt: Date;
  expires: Date;
}

/** Records (or replaces) what the user's latest SSO login left for renewals. */
export async function putSsoSession(store: Store, s: SsoSession): Promise<void> {
  const row = { username: s.username, kind: s.kind, connector: s.connector, subject: s.subject, sealed: s.sealed, checked_at: s.checkedAt, expires: s.expires };
  await store.db
    .insertInto('sso_sessions')
    .values(row)
    .onConflict((oc) => oc.column('username').doUpdateSet(row))
    .execute();
}

export async function getSsoSession(store: Store, username: string, now = new Date()): Promise<SsoSession | undefined> {
  const r = await store.db.selectFrom('sso_sessions').selectAll().where('username', '=', username).where('expires', '>', now).executeTakeFirst();
  return r && { username: r.username, kind: r.kind, connector: r.connector, subject: r.subject, sealed: r.sealed, checkedAt: r.checked_at, expires: r.expires };
}

export async function deleteSsoSession(store: Store, username: string): Promise<void> {
  await store.db.deleteFrom('sso_sessions').where('username', '=', username).execute();
}

/** Removes expired requests, seen ids and sessions (the auth service's sweep). */
export async function sweepSso(store: Store, now = new Date()): Promise<number> {
  const a = await store.db.deleteFrom('sso_requests').where('expires', '<=', now).executeTakeFirst();
  const b = await store.db.deleteFrom('sso_seen').where('expires', '<=', now).executeTakeFirst();
  const c = await store.db.deleteFrom('sso_sessions').where('expires', '<=', now).executeTakeFirst();
  return Number(a.numDeletedRows) + Number(b.numDeletedRows) + Number(c.numDeletedRows);
}
