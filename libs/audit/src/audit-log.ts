import { appendAuditEvents, type AuditEventRecord, type Store } from '@keyway/store';
import type { Logger } from '@keyway/log';

/** Where services hand their events. emit() never blocks the request that caused the event. */
export interface AuditLog {
  emit(event: AuditEventRecord): void;
  /** Resolves once everything emitted so far is durable (written, or queued in Redis or the spool). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Writes straight to the store, in order and in batches: the embedded default, with no
 * Redis. While the store is away, events wait in memory and are retried with backoff.
 */
export class DirectAuditLog implements AuditLog {
  private pending: AuditEventRecord[] = [];
  private writing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {}

  emit(event: AuditEventRecord): void {
    this.pending.push(event);
    this.kick();
  }

  async flush(): Promise<void> {
    for (;;) {
      if (!this.writing && this.pending.length > 0) this.kick();
      if (!this.writing) return;
      await this.writing;
    }
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  private kick(): void {
    if (this.writing || this.closed) return;
    this.writing = this.drain().finally(() => {
      this.writing = undefined;
      if (this.pending.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    let delay = 100;
    while (this.pending.length > 0) {
      const batch = this.pending.slice(0, 500);
      try {
        await appendAuditEvents(this.store, batch);
        this.pending.splice(0, batch.length);
        delay = 100;
      } catch (err) {
        this.logger.error({ err: (err as Error).message, waiting: this.pending.length }, 'writing audit events failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }
}

/**
 * A separate proxy with no queue configured hands its events to the auth server, which
 * writes them through its own log. In order, in batches, retried while auth is away.
 */
export class RemoteAuditLog implements AuditLog {
  private pending: AuditEventRecord[] = [];
  private sending: Promise<void> | undefined;

  constructor(
    private readonly send: (events: string[]) => Promise<void>,
    private readonly logger: Logger,
    private readonly maxPending = 100_000,
  ) {}

  emit(event: AuditEventRecord): void {
    if (this.pending.length >= this.maxPending) {
      this.pending.shift();
      this.logger.error({ max: this.maxPending }, 'audit buffer full: dropped the oldest event');
    }
    this.pending.push(event);
    this.sending ??= this.drain().finally(() => (this.sending = undefined));
  }

  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }

  close(): Promise<void> {
    return this.flush();
  }

  private async drain(): Promise<void> {
    let delay = 100;
    while (this.pending.length > 0) {
      const batch = this.pending.slice(0, 500);
      try {
        await this.send(batch.map((e) => JSON.stringify(e)));
        this.pending.splice(0, batch.length);
        delay = 100;
      } catch (err) {
        this.logger.warn({ err: (err as Error).message, waiting: this.pending.length }, 'sending audit events to the auth server failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }
}
