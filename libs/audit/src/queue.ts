import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { Logger } from '@keyway/log';
import { appendAuditEvents, type AuditEventRecord, type Store } from '@keyway/store';
import { AUDIT_LINGER_MS, Batcher, type AuditLog } from './audit-log.js';

export const AUDIT_QUEUE = 'keyway-audit';
const BATCH = 2000;

export type AuditMode = 'best-effort' | 'strict';

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
  /** Bounded local file for events while Redis is unreachable. */
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
 * Puts events on the BullMQ queue in order, in batches. While Redis is unreachable they go
 * to a bounded spool file, and are replayed in order, before anything newer, when Redis
 * returns. A full spool drops the oldest events (best-effort) or, in strict mode, makes
 * `accepting` false so the proxy refuses new requests until events can be recorded.
 */
export class QueueAuditLog implements AuditLog {
  private readonly queue: Queue;
  private pending: AuditEventRecord[] = [];
  private running: Promise<void> | undefined;
  private readonly maxBytes: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly batcher: Batcher;
  dropped = 0;

  constructor(private readonly o: QueueAuditLogOptions) {
    this.queue = new Queue(AUDIT_QUEUE, { connection: redisConnection(o.redisUrl), ...(o.prefix ? { prefix: o.prefix } : {}) });
    this.queue.on('error', () => undefined); // connection errors surface as failed adds
    this.maxBytes = o.spoolMaxBytes ?? 256 * 1024 * 1024;
    this.batcher = new Batcher(() => this.kick(), o.lingerMs ?? AUDIT_LINGER_MS, BATCH);
    mkdirSync(dirname(o.spoolPath), { recursive: true, mode: 0o700 });
    if (this.spoolBytes() > 0) this.kick();
  }

  /** False in strict mode while events cannot be recorded (spool full). */
  get accepting(): boolean {
    return this.o.mode !== 'strict' || this.spoolBytes() < this.maxBytes;
  }

  emit(event: AuditEventRecord): void {
    this.pending.push(event);
    if (!this.running) this.batcher.schedule(this.pending.length);
  }

  /** Resolves once every event emitted so far is in Redis or, while Redis is away, in the spool. */
  async flush(): Promise<void> {
    while (this.running || this.pending.length > 0) {
      if (!this.running) this.batcher.now();
      if (!this.running) return;
      await this.running;
    }
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // Events still pending go to the spool, to be sent by the next start.
    if (this.pending.length > 0) this.spool(this.pending.splice(0));
    await this.queue.close().catch(() => undefined);
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.pending.length > 0) this.batcher.schedule(this.pending.length);
    });
  }

  private async drain(): Promise<void> {
    // Older events first: the spool, then what came since.
    if (!(await this.replaySpool())) {
      this.spool(this.pending.splice(0));
      this.scheduleRetry();
      return;
    }
    while (this.pending.length > 0) {
      const batch = this.pending.slice(0, BATCH);
      try {
        await this.add(batch);
        this.pending.splice(0, batch.length);
      } catch (err) {
        this.o.logger.warn({ err: (err as Error).message }, 'audit queue unreachable: spooling events locally');
        this.spool(this.pending.splice(0));
        this.scheduleRetry();
        return;
      }
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, 1_000);
    this.retryTimer.unref();
  }

  private add(batch: AuditEventRecord[]) {
    return this.queue.add('events', { events: batch }, { removeOnComplete: true, removeOnFail: false });
  }

  /** Sends the spool in order; true when it is empty afterwards. */
  private async replaySpool(): Promise<boolean> {
    if (this.spoolBytes() === 0) return true;
    const sending = `${this.o.spoolPath}.sending`;
    if (!existsSync(sending)) renameSync(this.o.spoolPath, sending);
    const lines = readFileSync(sending, 'utf8').split('\n').filter(Boolean);
    for (let i = 0; i < lines.length; i++) {
      try {
        await this.add(JSON.parse(lines[i] as string) as AuditEventRecord[]);
      } catch {
        // Keep what is left, in order, ahead of anything spooled meanwhile.
        const rest = lines.slice(i).join('\n') + '\n';
        const later = existsSync(this.o.spoolPath) ? readFileSync(this.o.spoolPath, 'utf8') : '';
        appendFileSync(`${sending}.tmp`, rest + later, { mode: 0o600 });
        renameSync(`${sending}.tmp`, this.o.spoolPath);
        rmSync(sending, { force: true });
        return false;
      }
    }
    rmSync(sending, { force: true });
    if (this.spoolBytes() > 0) return this.replaySpool();
    this.o.logger.info({ batches: lines.length }, 'audit spool replayed');
    return true;
  }

  private spool(events: AuditEventRecord[]): void {
    for (let i = 0; i < events.length; i += BATCH) {
      const line = `${JSON.stringify(events.slice(i, i + BATCH))}\n`;
      if (this.spoolBytes() + line.length > this.maxBytes) {
        if (this.o.mode === 'strict') {
          this.o.logger.error('audit spool full: strict mode refuses new requests until events can be recorded');
          this.dropped += events.length - i;
          return;
        }
        this.dropOldest(line.length);
      }
      appendFileSync(this.o.spoolPath, line, { mode: 0o600 });
    }
  }

  private dropOldest(room: number): void {
    const lines = readFileSync(this.o.spoolPath, 'utf8').split('\n').filter(Boolean);
    let size = this.spoolBytes();
    let dropped = 0;
    while (lines.length > 0 && size + room > this.maxBytes) {
      const line = lines.shift() as string;
      size -= line.length + 1;
      dropped += (JSON.parse(line) as unknown[]).length;
    }
    this.dropped += dropped;
    this.o.logger.error({ dropped, total: this.dropped }, 'audit spool full: dropped the oldest events (audit.mode best-effort)');
    appendFileSync(`${this.o.spoolPath}.tmp`, lines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
    renameSync(`${this.o.spoolPath}.tmp`, this.o.spoolPath);
  }

  private spoolBytes(): number {
    try {
      return statSync(this.o.spoolPath).size;
    } catch {
      return 0;
    }
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

  constructor(o: { redisUrl: string; store: Store; logger: Logger; prefix?: string }) {
    const connection = { ...redisConnection(o.redisUrl), enableOfflineQueue: true, maxRetriesPerRequest: null };
    this.worker = new Worker(
      AUDIT_QUEUE,
      async (job) => {
        const events = (job.data as { events: AuditEventRecord[] }).events;
        let delay = 200;
        for (;;) {
          try {
            await appendAuditEvents(o.store, events);
            return;
          } catch (err) {
            o.logger.warn({ err: (err as Error).message, events: events.length }, 'storing audit events failed; retrying');
            await new Promise((r) => setTimeout(r, delay));
            delay = Math.min(delay * 2, 5_000);
          }
        }
      },
      { connection, concurrency: 1, lockDuration: 60_000, ...(o.prefix ? { prefix: o.prefix } : {}) },
    );
    this.worker.on('error', (err) => o.logger.debug({ err: err.message }, 'audit worker connection error'));
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}
