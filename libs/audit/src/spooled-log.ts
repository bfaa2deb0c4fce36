import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { Logger } from '@keyway/log';
import type { AuditEventRecord } from '@keyway/store';
import { AUDIT_LINGER_MS, type AuditLog } from './audit-log.js';
import type { AuditMode } from './events.js';
import { AuditSpool, type SpooledEvent } from './spool.js';

/**
 * Where a spool's events go. `send` resolves only once the batch is stored (in Postgres):
 * that is the confirmation that lets the events leave the spool. It rejects to be retried;
 * a batch keeps its id across retries and restarts of the sink, and the store is idempotent
 * on uid, so a re-send never duplicates.
 */
export interface AuditSink {
  /** Most events, and bytes of JSON, in one batch. */
  readonly batch: number;
  readonly maxBatchBytes: number;
  send(events: AuditEventRecord[], lines: string[], id: string): Promise<void>;
  /** Ends the sink; a send in progress rejects. */
  close(): Promise<void>;
}

export interface SpooledAuditLogOptions {
  /** The spool's directory, in the service's data dir. */
  spoolDir: string;
  maxBytes?: number;
  mode?: AuditMode;
  sink: AuditSink;
  logger: Logger;
  /** How long events gather before a batch is sent (delivery only: durability does not wait for it). */
  lingerMs?: number;
  /** How long flush() waits for confirmation before it settles for durable. */
  flushTimeoutMs?: number;
  /** Longest wait between retries of a failing send (it doubles from 100 ms). */
  maxRetryDelayMs?: number;
  /** A spool file of the previous format (one JSON array of events a line) to take over. */
  legacyFile?: string;
}

const WARN_EVERY_MS = 30_000;

/**
 * The audit log of a service that must lose nothing: each event is appended to a local
 * spool (fsync'd, group commit) before `record` resolves, and sent from there, in order, one
 * batch at a time, until the sink confirms it stored. One batch in flight keeps a service's
 * events in order even when a worker dies holding one. After a restart the spool's
 * unconfirmed events are sent first.
 */
export class SpooledAuditLog implements AuditLog {
  private readonly spool: AuditSpool;
  private unsent: SpooledEvent[];
  private head = 0;
  private lastSeq = 0;
  private confirmedSeq = 0;
  private failures = 0;
  private closed = false;
  private wake: (() => void) | undefined;
  private cut: (() => void) | undefined;
  private flushWaiters: (() => void)[] = [];
  private readonly pump: Promise<void>;
  private lastWarn = 0;
  /** Confirmed-stored events since start (a gauge for tests and metrics). */
  stored = 0;

  constructor(private readonly o: SpooledAuditLogOptions) {
    const { spool, replay } = AuditSpool.open(
      { dir: o.spoolDir, maxBytes: o.maxBytes ?? 256 * 1024 * 1024, mode: o.mode ?? 'best-effort', logger: o.logger },
      (upTo) => this.forget(upTo),
    );
    this.spool = spool;
    this.unsent = replay;
    this.lastSeq = replay[replay.length - 1]?.seq ?? 0;
    if (o.legacyFile) this.takeOver(o.legacyFile);
    this.pump = this.run();
  }

  /** Events left in an older version's spool move into this one, then the old files go. */
  private takeOver(file: string): void {
    const files = [`${file}.sending`, file].filter((f) => existsSync(f));
    if (files.length === 0) return;
    const durable: Promise<boolean>[] = [];
    for (const f of files) {
      for (const l of readFileSync(f, 'utf8').split('\n')) {
        try {
          for (const e of JSON.parse(l) as AuditEventRecord[]) durable.push(this.record(e));
        } catch {
          // an empty or torn line
        }
      }
    }
    this.o.logger.info({ events: durable.length, from: file }, 'audit spool: taking over the events of the previous spool format');
    void Promise.all(durable).then((ok) => {
      if (ok.every(Boolean)) for (const f of files) rmSync(f, { force: true });
    });
  }

  /** False while a strict-mode log cannot keep events: requests are refused. */
  get accepting(): boolean {
    return this.spool.accepting;
  }

  /** Events lost to a full best-effort spool since start. */
  get dropped(): number {
    return this.spool.dropped;
  }

  /** Events not yet confirmed stored. */
  get pending(): number {
    return this.unsent.length - this.head;
  }

  emit(event: AuditEventRecord): void {
    void this.record(event);
  }

  record(event: AuditEventRecord): Promise<boolean> {
    const line = JSON.stringify(event);
    const { seq, durable } = this.spool.append(line);
    if (seq === 0) return durable;
    this.unsent.push({ seq, line });
    this.lastSeq = seq;
    this.wake?.();
    return durable;
  }

  /**
   * Resolves once everything recorded so far is durable and, unless the sink is failing or
   * the wait passes flushTimeoutMs, confirmed stored (so a search that follows sees it).
   */
  async flush(): Promise<void> {
    await this.spool.settle();
    const target = this.lastSeq;
    const failures = this.failures;
    const deadline = Date.now() + (this.o.flushTimeoutMs ?? 5_000);
    while (!this.closed && this.confirmedSeq < target && this.head < this.unsent.length && this.failures === failures && Date.now() < deadline) {
      this.cut?.();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        t.unref();
        this.flushWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends what it can in a moment; the rest stays in the spool for the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    this.wake?.();
    this.cut?.();
    await this.o.sink.close().catch(() => undefined);
    await this.pump;
    await this.spool.close();
  }

  private async run(): Promise<void> {
    const minDelay = Math.min(100, this.o.maxRetryDelayMs ?? 100);
    let delay = minDelay;
    while (!this.closed) {
      if (this.head >= this.unsent.length) {
        this.compact();
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        // Gather a batch; the requests already have their events on disk.
        if (this.pending < this.o.sink.batch) await this.linger(this.o.lingerMs ?? AUDIT_LINGER_MS);
        continue;
      }
      const batch = this.take();
      const first = (batch[0] as SpooledEvent).seq;
      const last = (batch[batch.length - 1] as SpooledEvent).seq;
      try {
        const lines = batch.map((b) => b.line);
        await this.o.sink.send(
          lines.map((l) => JSON.parse(l) as AuditEventRecord),
          lines,
          `${this.spool.id}-${first}-${last}`,
        );
        while (this.head < this.unsent.length && (this.unsent[this.head] as SpooledEvent).seq <= last) this.head++;
        this.confirmedSeq = last;
        this.stored += batch.length;
        this.spool.confirm(last);
        if (this.head > 4096 && this.head * 2 > this.unsent.length) this.compact();
        delay = minDelay;
        if (this.lastWarn > 0) {
          this.o.logger.info({ pending: this.pending }, 'audit events are being stored again');
          this.lastWarn = 0;
        }
      } catch (err) {
        if (this.closed) break;
        this.failures++;
        if (Date.now() - this.lastWarn > WARN_EVERY_MS) {
          this.lastWarn = Date.now();
          this.o.logger.warn({ err: (err as Error).message, pending: this.pending, spoolBytes: this.spool.bytes }, 'audit events cannot be stored right now; they wait in the spool and are retried');
        }
        await this.linger(delay);
        delay = Math.min(delay * 2, this.o.maxRetryDelayMs ?? 5_000);
      }
      const waiters = this.flushWaiters;
      this.flushWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** The next batch: oldest first, bounded in count and bytes, at least one event. */
  private take(): SpooledEvent[] {
    const out: SpooledEvent[] = [];
    let bytes = 0;
    for (let i = this.head; i < this.unsent.length && out.length < this.o.sink.batch; i++) {
      const e = this.unsent[i] as SpooledEvent;
      if (out.length > 0 && bytes + e.line.length > this.o.sink.maxBatchBytes) break;
      bytes += e.line.length;
      out.push(e);
    }
    return out;
  }

  private linger(ms: number): Promise<void> {
    if (ms <= 0 || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.cut = () => {
        this.cut = undefined;
        done();
      };
    });
  }

  /** The spool dropped everything up to seq (full, best-effort): it is not sent either. */
  private forget(upTo: number): void {
    while (this.head < this.unsent.length && (this.unsent[this.head] as SpooledEvent).seq <= upTo) this.head++;
  }

  private compact(): void {
    if (this.head === 0) return;
    this.unsent = this.unsent.slice(this.head);
    this.head = 0;
  }
}
