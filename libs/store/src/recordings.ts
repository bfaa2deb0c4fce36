import type { Store } from './store.js';

/** One exec/attach session recording (its events are in chunks). */
export interface SessionRecordingRecord {
  id: string;
  user: string;
  cluster: string;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  started: Date;
  ended: Date | null;
}

export interface SessionChunkRecord {
  seq: number;
  /** JSON lines, one event each. */
  data: string;
}

/**
 * Stores one chunk of a session: the session row is created by the first chunk that
 * arrives and gets its end from the last. Idempotent on (session id, seq): a retried
 * upload changes nothing.
 */
export async function putSessionChunk(store: Store, session: SessionRecordingRecord, seq: number, data: string): Promise<void> {
  await store.transaction(async (trx) => {
    await trx
      .insertInto('session_recordings')
      .values({
        id: session.id,
        username: session.user,
        cluster: session.cluster,
        namespace: session.namespace,
        pod: session.pod,
        container: session.container,
        command: JSON.stringify(session.command),
        started: session.started,
        ended: session.ended,
      })
      .onConflict((oc) => (session.ended ? oc.column('id').doUpdateSet({ ended: session.ended }) : oc.column('id').doNothing()))
      .execute();
    await trx.insertInto('session_chunks').values({ session_id: session.id, seq, data }).onConflict((oc) => oc.columns(['session_id', 'seq']).doNothing()).execute();
  });
}

/** Sessions, newest first; only `user`'s when given. */
export async function listSessionRecordings(store: Store, limit = 100, user?: string): Promise<SessionRecordingRecord[]> {
  let query = store.db.selectFrom('session_recordings').selectAll();
  if (user !== undefined) query = query.where('username', '=', user);
  const rows = await query.orderBy('started', 'desc').limit(limit).execute();
  return rows.map(fromRow);
}

export async function findSessionRecording(store: Store, id: string): Promise<SessionRecordingRecord | undefined> {
  const row = await store.db.selectFrom('session_recordings').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

/** Chunks after `afterSeq`, in order. */
export async function getSessionChunks(store: Store, id: string, afterSeq: number, limit: number): Promise<SessionChunkRecord[]> {
  return store.db
    .selectFrom('session_chunks')
    .select(['seq', 'data'])
    .where('session_id', '=', id)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
}

function fromRow(r: {
  id: string;
  username: string;
  cluster: string;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  started: Date;
  ended: Date | null;
}): SessionRecordingRecord {
  return { id: r.id, user: r.username, cluster: r.cluster, namespace: r.namespace, pod: r.pod, container: r.container, command: r.command, started: r.started, ended: r.ended };
}
