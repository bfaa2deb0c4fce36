import { appendAuditEvents, type AuditEventRecord, type Store } from '@keyway/store';
import type { AuditSink } from './spooled-log.js';

/** Straight into the store (auth without Redis, and its in-process proxy): stored once the transaction commits. */
export class StoreSink implements AuditSink {
  readonly batch = 1000;
  readonly maxBatchBytes = 16 * 1024 * 1024;

  constructor(private readonly store: Store) {}

  async send(events: AuditEventRecord[]): Promise<void> {
    await appendAuditEvents(this.store, events);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * To the auth server over gRPC (a proxy with no Redis): its emitAuditEvents answers once
 * the events are in the store, so a successful call is the confirmation.
 */
export class RemoteSink implements AuditSink {
  readonly batch = 500;
  /** Well inside gRPC's 4 MB message limit. */
  readonly maxBatchBytes = 2 * 1024 * 1024;
  private closed = false;

  constructor(private readonly call: (lines: string[]) => Promise<void>) {}

  async send(_events: AuditEventRecord[], lines: string[]): Promise<void> {
    if (this.closed) throw new Error('audit sink closed');
    await this.call(lines);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
