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

/** Removes expired requests and seen ids (the auth service's sweep). */
export async function sweepSso(store: Store, now = new Date()): Promise<number> {
  const a = await store.db.deleteFrom('sso_requests').where('expires', '<=', now).executeTakeFirst();
  const b = await store.db.deleteFrom('sso_seen').where('expires', '<=', now).executeTakeFirst();
  return Number(a.numDeletedRows) + Number(b.numDeletedRows);
}
