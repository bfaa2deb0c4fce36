import pg from 'pg';
import type { Outcome } from './load.js';

export interface AuditCount {
  /** Requests that got an HTTP answer: each must have exactly one kube.request event. */
  answered: number;
  stored: number;
  lost: string[];
  /** Request names stored more than once (answered or not). */
  duplicated: string[];
}

/** Reads the stored kube.request events of this run and matches them against the answers. */
export async function countAudit(databaseUrl: string, run: string, outcomes: Outcome[]): Promise<AuditCount> {
  const c = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 });
  await c.connect();
  try {
    const r = await c.query<{ name: string; n: string }>(
      `SELECT data::jsonb->>'resource_name' AS name, count(*) AS n FROM audit_events
        WHERE event = 'kube.request' AND data::jsonb->>'resource_name' LIKE $1 GROUP BY 1`,
      [`chaos-${run}-%`],
    );
    const stored = new Map(r.rows.map((row) => [row.name, Number(row.n)]));
    const answered = outcomes.filter((o) => o.status !== 0);
    return {
      answered: answered.length,
      stored: [...stored.values()].reduce((a, b) => a + b, 0),
      lost: answered.filter((o) => !stored.has(o.name)).map((o) => o.name),
      duplicated: [...stored].filter(([, n]) => n > 1).map(([name]) => name),
    };
  } finally {
    await c.end();
  }
}

/**
 * Waits until every answered request so far is stored; returns how long it took, or undefined
 * when the deadline passed or nothing more was stored for 10 s (what is missing then is lost).
 */
export async function waitForAudit(databaseUrl: string, run: string, outcomes: Outcome[], timeoutMs: number): Promise<{ ms: number | undefined; count: AuditCount | undefined }> {
  const began = Date.now();
  const snapshot = outcomes.slice();
  let count: AuditCount | undefined;
  let progressAt = began;
  while (Date.now() - began < timeoutMs && Date.now() - progressAt < 10_000) {
    try {
      const before = count?.stored;
      count = await countAudit(databaseUrl, run, snapshot);
      if (count.lost.length === 0) return { ms: Date.now() - began, count };
      if (count.stored !== before) progressAt = Date.now();
    } catch {
      // Postgres may still be coming back.
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { ms: undefined, count };
}
