import { randomUUID } from 'node:crypto';
import { closeSync, fdatasync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, write, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadParameterError } from '@keyway/errors';
import { acquirePidLock, type Logger } from '@keyway/log';
import type { AuditMode } from './events.js';

/** One event as the spool holds it: its place in the spool and its JSON line. */
export interface SpooledEvent {
  seq: number;
  line: string;
}

export interface AuditSpoolOptions {
  /** The spool's directory (created 0700). One process at a time. */
  dir: string;
  maxBytes: number;
  mode: AuditMode;
  logger: Logger;
  /** Size at which a new segment file starts; at most an eighth of maxBytes. */
  segmentBytes?: number;
}

interface Segment {
  path: string;
  first: number;
  last: number;
  bytes: number;
}

const SEGMENT_BYTES = 1024 * 1024;
const SLOW_WRITE_MS = 2_000;
const RETRY_DISK_MS = 1_000;

/**
 * An append-only, fsync'd file log of audit events, so an event survives a process kill from
 * the moment its append resolves. Appends made while a write is in flight share the next
 * write and fdatasync (group commit): one disk flush per group, not per request. Events
 * leave only when confirmed (a watermark: sending is in order), whole segment files at a time.
 */
export class AuditSpool {
  /** Events lost to a full spool (best-effort) since start. */
  dropped = 0;
  /** Events that could not be written to disk (held in memory only) since start. */
  notDurable = 0;
  /** Disk flushes since start: one per group of appends. */
  syncs = 0;
  readonly id: string;
  private readonly segmentBytes: number;
  private segments: Segment[] = [];
  private fd: number | undefined;
  private nextSeq = 1;
  private confirmed = 0;
  private group: { line: string; seq: number }[] = [];
  private waiters: ((accepted: boolean) => void)[] = [];
  private writing = false;
  private writingSince = 0;
  private broken = false;
  private failedAt = 0;
  private lastLoud = 0;
  private readonly watchdog: NodeJS.Timeout;
  private closed = false;
  /** Strict mode refused an event for want of room; until the next confirmation. */
  private full = false;

  private constructor(
    private readonly o: AuditSpoolOptions,
    private readonly onDrop: (upTo: number) => void,
    private readonly releaseLock: () => void,
  ) {
    this.segmentBytes = Math.max(4096, Math.min(o.segmentBytes ?? SEGMENT_BYTES, Math.floor(o.maxBytes / 8)));
    this.id = loadId(o.dir);
    // A write that does not come back (a hung or full disk) is said out loud, not waited on silently.
    this.watchdog = setInterval(() => {
      if (this.writing && Date.now() - this.writingSince > SLOW_WRITE_MS) {
        o.logger.error({ dir: o.dir, waitingMs: Date.now() - this.writingSince }, 'audit spool write is not completing: requests wait for it (disk full or hung?)');
      }
    }, SLOW_WRITE_MS);
    this.watchdog.unref();
  }

  /**
   * Opens the spool and returns it with the events left unconfirmed by the previous process,
   * in order (a torn last line, from a crash mid-write, was never acknowledged and is skipped).
   */
  static open(o: AuditSpoolOptions, onDrop: (upTo: number) => void): { spool: AuditSpool; replay: SpooledEvent[] } {
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    // One process per spool: a second one would interleave files and double-send. The same
    // process may take over a spool it abandoned (tests act out a killed proxy that way).
    const release = acquirePidLock(join(o.dir, 'lock'), {
      inUse: (pid) => new BadParameterError(`the audit spool ${o.dir} is in use by process ${pid}; give each proxy its own data dir`),
      sameProcess: 'take-over',
    });
    try {
      const spool = new AuditSpool(o, onDrop, release);
      const replay = spool.load();
      return { spool, replay };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Bytes held on disk, confirmed or not, in live segments. */
  get bytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.bytes;
    return n;
  }

  /** False when a strict-mode spool cannot take more events. */
  get accepting(): boolean {
    // After a failed write, refuse for a moment, then let a request try the disk again.
    return this.o.mode !== 'strict' || (Date.now() - this.failedAt > RETRY_DISK_MS && !this.full && this.bytes < this.o.maxBytes);
  }

  /**
   * Appends one event: its seq now (0: refused), and a promise that resolves true once it is
   * on disk, false when strict mode cannot keep it (spool full, write failed). In best-effort
   * mode a failed write resolves true after saying so: the event is then in memory only.
   */
  append(line: string): { seq: number; durable: Promise<boolean> } {
    if (this.bytes + line.length + 1 > this.o.maxBytes) {
      if (this.o.mode === 'strict') {
        this.loud({ maxBytes: this.o.maxBytes }, 'audit spool full: strict mode refuses requests until events are confirmed stored');
        this.full = true;
        // No seq: a segment's lines are numbered from its first, without gaps.
        return { seq: 0, durable: Promise.resolve(false) };
      }
      this.dropOldest(line.length + 1);
    }
    const seq = this.nextSeq++;
    this.group.push({ line, seq });
    const durable = new Promise<boolean>((resolve) => this.waiters.push(resolve));
    if (!this.writing) this.writeGroup();
    return { seq, durable };
  }

  /** Everything up to seq is stored: segments wholly below it go. */
  confirm(upTo: number): void {
    if (upTo <= this.confirmed) return;
    this.confirmed = upTo;
    this.full = false;
    // Every segment but the one open for writing goes once wholly confirmed.
    const keep = this.fd !== undefined ? 1 : 0;
    while (this.segments.length > keep && (this.segments[0] as Segment).last <= upTo) {
      rmSync((this.segments.shift() as Segment).path, { force: true });
    }
    const active = this.segments[this.segments.length - 1];
    // The watermark lets a restart skip what is stored; losing it only costs a re-send.
    try {
      writeFileSync(join(this.o.dir, 'confirmed'), String(upTo));
    } catch {
      // best effort: see above
    }
    if (active && active.last <= upTo && active.bytes >= this.segmentBytes && !this.writing) this.rotate();
  }

  /** Resolves once every append so far is written (or failed). */
  async settle(): Promise<void> {
    while (this.writing || this.group.length > 0) await new Promise((r) => setTimeout(r, 1));
  }

  async close(): Promise<void> {
    await this.settle();
    this.closed = true;
    clearInterval(this.watchdog);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.releaseLock();
  }

  /** An error log at most once a second (a full disk fails every write). */
  private loud(fields: Record<string, unknown>, msg: string): void {
    if (Date.now() - this.lastLoud < 1_000) return;
    this.lastLoud = Date.now();
    this.o.logger.error(fields, msg);
  }

  private writeGroup(): void {
    const group = this.group;
    const waiters = this.waiters;
    this.group = [];
    this.waiters = [];
    if (group.length === 0) return;
    this.writing = true;
    this.writingSince = Date.now();
    let text = '';
    for (const g of group) text += `${g.line}\n`;
    let seg: Segment | undefined;
    const done = (err: NodeJS.ErrnoException | null): void => {
      this.writing = false;
      if (err) {
        this.broken = true;
        this.failedAt = Date.now();
        // What reached the file, not what was meant to.
        if (seg) seg.bytes = sizeOf(seg.path, seg.bytes);
        this.notDurable += group.length;
        this.loud(
          { err: err.message, code: err.code, events: group.length, notDurable: this.notDurable, mode: this.o.mode },
          this.o.mode === 'strict' ? 'audit spool write failed: strict mode refuses these requests' : 'audit spool write failed: these events are held in memory only until stored',
        );
      } else {
        this.broken = false;
      }
      // Best-effort goes on without the disk (said above); strict refuses what it cannot keep.
      for (const w of waiters) w(!err || this.o.mode !== 'strict');
      if (this.group.length > 0) this.writeGroup();
    };
    try {
      seg = this.activeSegment(group[0]?.seq as number);
      const fd = this.fd as number;
      const buf = Buffer.from(text);
      seg.last = (group[group.length - 1] as { seq: number }).seq;
      seg.bytes += buf.length;
      writeAll(fd, buf, 0, (werr) => {
        if (werr) return done(werr);
        fdatasync(fd, (serr) => {
          this.syncs++;
          done(serr);
        });
      });
    } catch (err) {
      done(err as NodeJS.ErrnoException);
    }
  }

  /**
   * The segment being written: a new one once it is full (so confirmed files can go), and
   * after a failed write (garbage stays in the old one).
   */
  private activeSegment(firstSeq: number): Segment {
    const last = this.segments[this.segments.length - 1];
    if (this.fd !== undefined && last && !this.broken && last.bytes < this.segmentBytes) return last;
    if (this.fd !== undefined) this.rotate();
    const path = join(this.o.dir, `${String(firstSeq).padStart(16, '0')}.jsonl`);
    this.fd = openSync(path, 'a', 0o600);
    syncDir(this.o.dir);
    const seg = { path, first: firstSeq, last: firstSeq - 1, bytes: 0 };
    this.segments.push(seg);
    return seg;
  }

  /** The next write starts a new segment file; a wholly confirmed active one goes. */
  private rotate(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    const active = this.segments[this.segments.length - 1];
    if (active && active.last <= this.confirmed) {
      rmSync(active.path, { force: true });
      this.segments.pop();
    }
  }

  private dropOldest(room: number): void {
    let dropped = 0;
    let upTo = 0;
    // The segment being written stays; it is at most an eighth of the bound.
    while (this.segments.length > 1 && this.bytes + room > this.o.maxBytes) {
      const seg = this.segments.shift() as Segment;
      rmSync(seg.path, { force: true });
      dropped += Math.max(0, seg.last - Math.max(seg.first - 1, this.confirmed));
      upTo = seg.last;
    }
    if (upTo === 0) return;
    this.dropped += dropped;
    this.o.logger.error(
      { dropped, total: this.dropped, maxBytes: this.o.maxBytes },
      'AUDIT EVENTS LOST: audit spool full, dropped the oldest unconfirmed events (audit.mode best-effort); is the audit queue or store down?',
    );
    this.onDrop(upTo);
  }

  private load(): SpooledEvent[] {
    const files = readdirSync(this.o.dir)
      .filter((f) => /^\d{16}\.jsonl$/.test(f))
      .sort();
    let confirmed = 0;
    try {
      confirmed = Number(readFileSync(join(this.o.dir, 'confirmed'), 'utf8')) || 0;
    } catch {
      // none yet
    }
    this.confirmed = confirmed;
    const out: SpooledEvent[] = [];
    let torn = 0;
    for (const f of files) {
      const path = join(this.o.dir, f);
      const first = Number(f.slice(0, 16));
      const text = readFileSync(path, 'utf8');
      const lines = text.split('\n');
      lines.pop(); // after the last newline: empty, or a torn write never acknowledged
      let seq = first - 1;
      for (const line of lines) {
        seq++;
        if (seq <= confirmed) continue;
        try {
          JSON.parse(line);
          out.push({ seq, line });
        } catch {
          torn++;
        }
      }
      this.segments.push({ path, first, last: seq, bytes: statSync(path).size });
      this.nextSeq = Math.max(this.nextSeq, seq + 1);
    }
    this.nextSeq = Math.max(this.nextSeq, confirmed + 1);
    if (torn > 0) this.o.logger.warn({ torn }, 'audit spool: skipped unreadable lines (a write cut by a crash)');
    if (out.length > 0) this.o.logger.info({ events: out.length, dir: this.o.dir }, 'audit spool: re-sending events not yet confirmed stored');
    // Nothing is appended to the previous process's files: a torn tail stays behind it.
    this.broken = true;
    return out;
  }
}

function sizeOf(path: string, fallback: number): number {
  try {
    return statSync(path).size;
  } catch {
    return fallback;
  }
}

function writeAll(fd: number, buf: Buffer, offset: number, cb: (err: NodeJS.ErrnoException | null) => void): void {
  write(fd, buf, offset, buf.length - offset, null, (err, n) => {
    if (err) return cb(err);
    if (offset + n < buf.length) return writeAll(fd, buf, offset + n, cb);
    cb(null);
  });
}

function syncDir(dir: string): void {
  try {
    const d = openSync(dir, 'r');
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the file's own fsync still holds its data.
  }
}

/** A stable id for this spool, so batch ids from before a restart are recognised. */
function loadId(dir: string): string {
  const path = join(dir, 'id');
  try {
    const id = readFileSync(path, 'utf8').trim();
    if (/^[a-z0-9]{8,}$/.test(id)) return id;
  } catch {
    // first start
  }
  const id = randomUUID().replaceAll('-', '').slice(0, 16);
  writeFileSync(path, id, { mode: 0o600 });
  return id;
}

