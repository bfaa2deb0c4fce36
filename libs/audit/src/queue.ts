import { dirname, join } from 'node:path';
import { Queue, QueueEvents, Worker, type ConnectionOptions } from 'bullmq';
import type { Logger } from '@keyway/log';
import { isBadParameter } from '@keyway/errors';
import { appendAuditEvents, auditEventProblem, type AuditEventRecord, type Store } from '@keyway/store';
import type { AuditMode } from './events.js';
import { SpooledAuditLog, type AuditSink } from './spooled-log.js';

export const AUDIT_QUEUE = 'keyway-audit';
const BATCH = 2000;
/** A stored job stays this long for a sender that restarted to find; its sender removes it sooner. */
const KEEP_DONE_S = 3600;

export type { AuditMode } from './events.js';

export function redisConnection(url: string): ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 6379),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    // Fail fast instead of queueing commands in memory while Redis is away: the spool holds them.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(times * 200, 2_000),
  };
}

export interface QueueAuditLogOptions {
  redisUrl: string;
  /** The spool's directory (in the service's data dir): every event waits there until it is stored. */
  spoolPath: string;
  spoolMaxBytes?: number;
  mode?: AuditMode;
  logger: Logger;
  /** Key prefix, so tests (and several clusters on one Redis) keep apart. */
  prefix?: string;
  /** How long events gather before they are sent as one job. */
  lingerMs?: number;
}

/**
 * Sends batches as BullMQ jobs whose id is the batch's, and confirms a batch once its job is
 * completed (the worker completes a job after the store committed it). A job Redis lost (a
 * restart without persistence) or failed is added again; one still queued is waited for.
 */
export class QueueSink implements AuditSink {
  readonly batch = BATCH;
  readonly maxBatchBytes = 32 * 1024 * 1024;
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly done = new Map<string, () => void>();
  private closed = false;

  constructor(o: { redisUrl: string; prefix?: string }) {
    const prefix = o.prefix ? { prefix: o.prefix } : {};
    this.queue = new Queue(AUDIT_QUEUE, { connection: redisConnection(o.redisUrl), ...prefix });
    this.queue.on('error', () => undefined); // connection errors surface as failed calls
    // Completion notices, so a confirmation does not wait for the next poll.
    const blocking = { ...redisConnection(o.redisUrl), enableOfflineQueue: true, maxRetriesPerRequest: null };
    this.events = new QueueEvents(AUDIT_QUEUE, { connection: blocking, ...prefix });
    this.events.on('error', () => undefined);
    this.events.on('completed', ({ jobId }) => this.done.get(jobId)?.());
  }

  async send(events: AuditEventRecord[], _lines: string[], id: string): Promise<void> {
    let completed = false;
    let notify: () => void = () => undefined;
    let notice = new Promise<void>((r) => (notify = r));
    this.done.set(id, () => {
      completed = true;
      notify();
    });
    try {
      // A job with this id already there (the same batch sent before a restart) is not added twice.
      await this.add(id, events);
      let poll = 20;
      for (;;) {
        await Promise.race([notice, new Promise((r) => setTimeout(r, poll).unref())]);
        if (this.closed) throw new Error('audit queue closed');
        poll = Math.min(poll * 2, 1_000);
        const state = completed ? 'completed' : await this.queue.getJobState(id);
        if (state === 'completed') break;
        if (state === 'failed') await this.queue.remove(id);
        if (state === 'unknown' || state === 'failed') {
          await this.add(id, events);
          notice = new Promise<void>((r) => (notify = r));
        }
      }
    } finally {
      this.done.delete(id);
    }
    // Stored: the job has done its work and need not hold its events in Redis.
    await this.queue.remove(id).catch(() => undefined);
  }

  private add(id: string, events: AuditEventRecord[]) {
    return this.queue.add('events', { events }, { jobId: id, removeOnComplete: { age: KEEP_DONE_S }, removeOnFail: { age: 24 * KEEP_DONE_S } });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const d of this.done.values()) d();
    await Promise.all([this.queue.close().catch(() => undefined), this.events.close().catch(() => undefined)]);
  }
}

/**
 * Events through the BullMQ queue, each first kept in the local spool until the worker
 * confirms it stored. While Redis is away they wait there and go, in order, when it returns;
 * a full spool drops the oldest events (best-effort) or makes `accepting` false (strict).
 */
export class QueueAuditLog extends SpooledAuditLog {
  constructor(o: QueueAuditLogOptions) {
    super({
      spoolDir: o.spoolPath,
      ...(o.spoolMaxBytes !== undefined ? { maxBytes: o.spoolMaxBytes } : {}),
      ...(o.mode ? { mode: o.mode } : {}),
      ...(o.lingerMs !== undefined ? { lingerMs: o.lingerMs } : {}),
      sink: new QueueSink({ redisUrl: o.redisUrl, ...(o.prefix ? { prefix: o.prefix } : {}) }),
      // Where earlier versions spooled while Redis was away, beside the new spool.
      legacyFile: join(dirname(o.spoolPath), 'audit-spool.jsonl'),
      logger: o.logger,
    });
  }
}

/**
 * The auth service's consumer: writes each batch in order (one job at a time) and, while
 * Postgres is away, retries the same batch with backoff rather than failing it, so order
 * holds and nothing is lost. Writes are idempotent on uid, so a batch retried after a
 * crash does not duplicate.
 */
export class AuditWorker {
  private readonly worker: Worker;

  constructor(o: { redisUrl: string; store: Store; logger: Logger; prefix?: string; lockDurationMs?: number; stalledIntervalMs?: number }) {
    const connection = { ...redisConnection(o.redisUrl), enableOfflineQueue: true, maxRetriesPerRequest: null };
    this.worker = new Worker(
      AUDIT_QUEUE,
      async (job) => {
        let events = (job.data as { events: AuditEventRecord[] }).events;
        let delay = 200;
        for (;;) {
          try {
            await appendAuditEvents(o.store, events);
            return;
          } catch (err) {
            if (isBadParameter(err)) {
              // Retrying a malformed event cannot help and would hold every later event: it
              // is left out, loudly, and the rest of its batch is stored.
              const invalid = events.filter((e) => auditEventProblem(e) !== undefined);
              o.logger.error({ invalid: invalid.map((e) => ({ uid: String(e.uid).slice(0, 64), problem: auditEventProblem(e) })) }, 'audit events that cannot be stored were left out of their batch');
              events = events.filter((e) => auditEventProblem(e) === undefined);
              continue;
            }
            o.logger.warn({ err: (err as Error).message, events: events.length }, 'storing audit events failed; retrying');
            await new Promise((r) => setTimeout(r, delay));
            delay = Math.min(delay * 2, 5_000);
          }
        }
      },
      {
        connection,
        concurrency: 1,
        // A job held by a worker that died is taken up again within seconds: its lock lapses
        // after lockDuration and the next stalled check (every stalledInterval) re-queues it.
        // A live worker renews its lock every lockDuration / 2, also while Postgres is away.
        lockDuration: o.lockDurationMs ?? 5_000,
        stalledInterval: o.stalledIntervalMs ?? 1_000,
        // A job is never failed for having stalled: it is stored, or it waits.
        maxStalledCount: Number.MAX_SAFE_INTEGER,
        ...(o.prefix ? { prefix: o.prefix } : {}),
      },
    );
    this.worker.on('error', (err) => o.logger.debug({ err: err.message }, 'audit worker connection error'));
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}
