/**
 * Turns a session's events into numbered chunks of JSON lines and hands them to a sink (the
 * auth service) in order: a chunk leaves when it reaches 64 KiB or a second after its first
 * event, and the last one when the session ends. What waits for the sink is bounded; past
 * the bound events are dropped and the recording says so.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '@keyway/log';
import type { SessionRecordingRecord } from '@keyway/store';
import { SessionObserver, type ExecOutcome, type SessionEvent } from './observer.js';

/** What the auth service stores about a session, as known when it starts. */
export type SessionMeta = Omit<SessionRecordingRecord, 'ended'>;

export interface SessionChunk {
  meta: SessionMeta;
  seq: number;
  /** JSON lines, one SessionEvent each. */
  events: string;
  /** Set on the last chunk. */
  ended?: Date;
}

/** Where chunks go; an upload that rejects is retried. */
export type RecordingSink = (chunk: SessionChunk) => Promise<void>;

export interface RecorderOptions {
  maxChunkBytes?: number;
  flushMs?: number;
  /** Bytes waiting for the sink beyond which events are dropped. */
  maxPendingBytes?: number;
  retryDelaysMs?: number[];
}

export class SessionRecorder {
  private lines: string[] = [];
  private bytes = 0;
  private seq = 0;
  private pending = 0;
  private dropped = 0;
  private droppedLarge = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly o: Required<RecorderOptions>;

  constructor(
    private readonly meta: SessionMeta,
    private readonly sink: RecordingSink,
    private readonly logger: Logger,
    options: RecorderOptions = {},
  ) {
    this.o = { maxChunkBytes: 64 * 1024, flushMs: 1000, maxPendingBytes: 8 * 1024 * 1024, retryDelaysMs: [200, 1000, 3000], ...options };
  }

  record(event: SessionEvent): void {
    if (this.closed) return;
    const line = JSON.stringify(event);
    const size = Buffer.byteLength(line) + 1;
    // One event larger than a chunk would make a chunk the auth service refuses.
    if (size > this.o.maxChunkBytes) {
      this.droppedLarge++;
      return;
    }
    if (this.pending + this.bytes + size > this.o.maxPendingBytes) {
      this.dropped++;
      return;
    }
    this.noteDropped(event.t);
    this.append(line, size);
  }

  /** A chunk never grows past maxChunkBytes: it leaves before the line that would overfill it. */
  private append(line: string, size: number): void {
    if (this.bytes + size > this.o.maxChunkBytes) this.flush();
    this.lines.push(line);
    this.bytes += size;
    if (this.bytes >= this.o.maxChunkBytes) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.o.flushMs).unref();
  }

  /** Sends the last chunk; resolves when every chunk has been handed over (or given up on). */
  close(ended: Date): Promise<void> {
    if (!this.closed) {
      this.noteDropped(ended.getTime() - this.meta.started.getTime());
      this.flush(ended);
      this.closed = true;
    }
    return this.chain;
  }

  private noteDropped(t: number): void {
    const notes: string[] = [];
    if (this.dropped > 0) notes.push(`${this.dropped} event(s) dropped: the recording store is behind`);
    if (this.droppedLarge > 0) notes.push(`${this.droppedLarge} event(s) dropped: each larger than a chunk (${this.o.maxChunkBytes} bytes)`);
    this.dropped = 0;
    this.droppedLarge = 0;
    for (const message of notes) {
      const note = JSON.stringify({ t, type: 'observer', message });
      this.append(note, Buffer.byteLength(note) + 1);
    }
  }

  private flush(ended?: Date): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.lines.length === 0 && !ended) return;
    const chunk: SessionChunk = { meta: this.meta, seq: this.seq++, events: this.lines.join('\n'), ...(ended ? { ended } : {}) };
    const size = this.bytes;
    this.lines = [];
    this.bytes = 0;
    this.pending += size;
    this.chain = this.chain.then(async () => {
      try {
        await this.send(chunk);
      } finally {
        this.pending -= size;
      }
    });
  }

  private async send(chunk: SessionChunk): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.sink(chunk);
        return;
      } catch (err) {
        const delay = this.o.retryDelaysMs[attempt];
        if (delay === undefined) {
          this.logger.error({ err: (err as Error).message, sid: this.meta.id, seq: chunk.seq }, 'session recording chunk lost');
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}

export interface TapOptions {
  meta: SessionMeta;
  upgrade: string;
  /** Response headers of the 101 (the negotiated subprotocol is among them). */
  responseHeaders: Record<string, string | string[] | undefined>;
  sink: RecordingSink;
  logger: Logger;
}

/**
 * Records an upgraded exec/attach connection: `clientHead` (bytes the client sent with the
 * upgrade request), then whatever `client` sends and `server` answers. Listening to 'data'
 * on streams that are piped changes nothing about the pipe.
 */
export function tapSession(o: TapOptions, client: Duplex, server: Duplex, clientHead: Buffer): { outcome(): ExecOutcome; done(): Promise<void> } {
  const recorder = new SessionRecorder(o.meta, o.sink, o.logger);
  const header = (name: string) => {
    const key = Object.keys(o.responseHeaders).find((k) => k.toLowerCase() === name);
    const v = key === undefined ? undefined : o.responseHeaders[key];
    return String(Array.isArray(v) ? v[0] : (v ?? ''));
  };
  const observer = new SessionObserver({
    upgrade: o.upgrade,
    subprotocol: header('sec-websocket-protocol') || header('x-stream-protocol-version'),
    record: (e) => recorder.record(e),
  });
  if (clientHead.length > 0) observer.fromClient(clientHead);
  client.on('data', (b: Buffer) => observer.fromClient(b));
  server.on('data', (b: Buffer) => observer.fromServer(b));
  let done: Promise<void> | undefined;
  return {
    outcome: () => observer.outcome(),
    done: () => {
      if (!done) {
        observer.close();
        done = recorder.close(new Date());
      }
      return done;
    },
  };
}
