/**
 * A minimal SPDY/3.1 framing layer, enough for Kubernetes' streaming protocols (exec,
 * attach and port-forward as kubectl speaks them through moby/spdystream).
 *
 * Frames (draft-mbelshe-httpbis-spdy-00, version 3):
 *   control: |1|version(15)|type(16)|flags(8)|length(24)|payload
 *   data:    |0|stream-id(31)|flags(8)|length(24)|payload
 * Header blocks are zlib streams primed with the SPDY/3 dictionary, one compression context
 * per direction for the whole session. We decompress the peer's blocks with node's inflate
 * and compress ours as zlib *stored* blocks, each block followed by an empty stored block as
 * a sync flush would end it: valid zlib, synchronous, and ordered with the frame writes, which
 * is all that matters for a handful of small header blocks.
 *
 * Flow control: spdystream never sends WINDOW_UPDATE and ignores ours, so windows are not
 * enforced in either direction; TCP backpressure (pausing the socket while a stream's reader
 * is full) is the flow control, as it is for kubelet and kube-apiserver.
 */
import { EventEmitter } from 'node:events';
import { SPDY3_DICTIONARY } from '@keyway/kube';
import { Duplex } from 'node:stream';
import { constants as zc, createInflate, type Inflate } from 'node:zlib';

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes. */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
} as const;

/** Header names are lowercase (SPDY requires it); repeated values are NUL-joined on the wire. */
export type SpdyHeaders = Record<string, string>;

const DEBUG = Boolean(process.env['KEYWAY_SPDY_DEBUG']);

/** The largest DATA payload we write in one frame. */
const MAX_DATA_FRAME = 32 * 1024;

// ---------------------------------------------------------------------------------------
// Header blocks

/** The SPDY/3 header compression dictionary (spec section 2.6.10.1). */
export function spdyDictionary(): Buffer {
  return SPDY3_DICTIONARY;
}

function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < buf.length; i++) {
    a = (a + (buf[i] as number)) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** Name/value block: count(32) then len(32) name len(32) value, all lowercase names. */
export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [u32(entries.length)];
  for (const [name, value] of entries) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(value, 'utf8');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

/** Parses one complete name/value block from the front of buf; undefined if incomplete. */
export function decodeHeaderBlock(buf: Buffer): { headers: SpdyHeaders; used: number } | undefined {
  if (buf.length < 4) return undefined;
  const count = buf.readUInt32BE(0);
  let off = 4;
  const headers: SpdyHeaders = {};
  for (let i = 0; i < count; i++) {
    if (buf.length < off + 4) return undefined;
    const nl = buf.readUInt32BE(off);
    off += 4;
    if (buf.length < off + nl + 4) return undefined;
    const name = buf.toString('utf8', off, off + nl).toLowerCase();
    off += nl;
    const vl = buf.readUInt32BE(off);
    off += 4;
    if (buf.length < off + vl) return undefined;
    headers[name] = buf.toString('utf8', off, off + vl);
    off += vl;
  }
  return { headers, used: off };
}

/** Compresses header blocks for one direction of a session as zlib stored blocks. */
export class HeaderDeflater {
  private started = false;

  compress(raw: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      // CMF 0x78 (deflate, 32K window); FLG 0xBB: FDICT set, FCHECK makes CMF*256+FLG divisible by 31.
      parts.push(Buffer.from([0x78, 0xbb]), u32(adler32(spdyDictionary())));
    }
    let off = 0;
    do {
      const chunk = raw.subarray(off, off + 0xffff);
      const head = Buffer.alloc(5);
      head[0] = 0x00; // BFINAL=0, BTYPE=00 (stored), padded to the byte boundary
      head.writeUInt16LE(chunk.length, 1);
      head.writeUInt16LE(~chunk.length & 0xffff, 3);
      parts.push(head, chunk);
      off += 0xffff;
    } while (off < raw.length);
    // An empty stored block, as a zlib sync flush ends: Go's inflater hands out the data only
    // when it reaches a block boundary inside the frame; without this it reads past the frame.
    parts.push(Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]));
    return Buffer.concat(parts);
  }
}

/** Decompresses the peer's header blocks (one zlib stream per direction, sync-flushed per frame). */
export class HeaderInflater {
  private readonly inflate: Inflate;
  private out: Buffer = Buffer.alloc(0);
  private waiting: Array<{ resolve: (h: SpdyHeaders) => void; reject: (e: Error) => void }> = [];
  private failed: Error | undefined;

  constructor() {
    this.inflate = createInflate({ dictionary: spdyDictionary() });
    this.inflate.on('data', (chunk: Buffer) => {
      this.out = this.out.length === 0 ? chunk : Buffer.concat([this.out, chunk]);
      this.drain();
    });
    this.inflate.on('error', (err: Error) => {
      this.failed = err;
      for (const w of this.waiting.splice(0)) w.reject(err);
    });
  }

  /** Feeds one frame's compressed block and resolves with its headers. */
  decompress(block: Buffer): Promise<SpdyHeaders> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.inflate.write(block);
      this.inflate.flush(zc.Z_SYNC_FLUSH, () => this.drain());
    });
  }

  private drain(): void {
    while (this.waiting.length > 0) {
      const parsed = decodeHeaderBlock(this.out);
      if (!parsed) return;
      this.out = this.out.subarray(parsed.used);
      this.waiting.shift()?.resolve(parsed.headers);
    }
  }

  close(): void {
    this.inflate.destroy();
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(((flags & 0xff) << 24) | payload.length, 4);
  return Buffer.concat([head, payload]);
}

export function dataFrameHeader(streamId: number, flags: number, length: number): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId & 0x7fffffff, 0);
  head.writeUInt32BE(((flags & 0xff) << 24) | length, 4);
  return head;
}

// ---------------------------------------------------------------------------------------
// Session and streams

interface ParsedFrame {
  control: boolean;
  type: number; // control frame type, or 0 for data
  flags: number;
  streamId: number; // data frames
  payload: Buffer;
}

export interface SpdySessionOptions {
  /** Server sessions accept odd (client-initiated) stream ids and create even ones. */
  server: boolean;
}

/**
 * One SPDY session over a byte stream (a TLS socket after `101 Switching Protocols`, or a
 * WebSocket carrying SPDY). Emits 'stream' for each stream the peer opens, 'close' once.
 */
export class SpdySession extends EventEmitter {
  readonly streams = new Map<number, SpdyStream>();
  private readonly deflater = new HeaderDeflater();
  private readonly inflater = new HeaderInflater();
  private pending: Buffer = Buffer.alloc(0);
  private readonly queue: ParsedFrame[] = [];
  private processing = false;
  private nextStreamId: number;
  private nextPingId: number;
  private readonly pings = new Map<number, () => void>();
  private readonly fullStreams = new Set<SpdyStream>();
  private goneAway = false;
  closed = false;

  constructor(
    readonly socket: Duplex,
    readonly options: SpdySessionOptions,
  ) {
    super();
    this.nextStreamId = options.server ? 2 : 1;
    this.nextPingId = options.server ? 2 : 1;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.destroy());
    socket.on('close', () => this.destroy());
    socket.on('error', (err: Error) => {
      this.emit('socketError', err);
      this.destroy();
    });
  }

  /** Opens a stream (the client side of the protocol; used by tests). Resolves on SYN_REPLY. */
  openStream(headers: SpdyHeaders, opts: { fin?: boolean } = {}): Promise<SpdyStream> {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new SpdyStream(this, id, headers, false);
    this.streams.set(id, stream);
    const payload = Buffer.alloc(10);
    payload.writeUInt32BE(id, 0);
    payload.writeUInt32BE(0, 4);
    payload.writeUInt16BE(0, 8); // priority 0, slot 0
    this.writeRaw(
      controlFrame(FrameType.SYN_STREAM, opts.fin ? FLAG_FIN : 0, Buffer.concat([payload, this.deflater.compress(encodeHeaderBlock(headers))])),
    );
    if (opts.fin) stream.markLocalFinished();
    return new Promise((resolve, reject) => {
      stream.once('reply', () => resolve(stream));
      stream.once('close', () => reject(new Error(`stream ${id} closed before its reply`)));
    });
  }

  ping(): Promise<void> {
    const id = this.nextPingId;
    this.nextPingId += 2;
    return new Promise((resolve) => {
      this.pings.set(id, resolve);
      this.writeRaw(controlFrame(FrameType.PING, 0, u32(id)));
    });
  }

  /** Sends GOAWAY; existing streams finish, the peer opens no new ones. */
  goAway(status = 0): void {
    if (this.goneAway || this.closed) return;
    this.goneAway = true;
    const payload = Buffer.alloc(8);
    let last = 0;
    for (const id of this.streams.keys()) if (id % 2 === (this.options.server ? 1 : 0) && id > last) last = id;
    payload.writeUInt32BE(last, 0);
    payload.writeUInt32BE(status, 4);
    this.writeRaw(controlFrame(FrameType.GOAWAY, 0, payload));
  }

  /** GOAWAY then end the byte stream once written. */
  close(): void {
    if (this.closed) return;
    this.goAway();
    this.socket.end();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    for (const stream of [...this.streams.values()]) stream.onSessionClosed();
    this.streams.clear();
    this.inflater.close();
    this.socket.destroy();
    this.emit('close');
  }

  // -- writing --

  writeRaw(buf: Buffer): boolean {
    if (this.closed || this.socket.destroyed || this.socket.writableEnded) return false;
    return this.socket.write(buf);
  }

  /** Writes data (split into frames); cb runs once the socket can take more. */
  writeData(streamId: number, data: Buffer, fin: boolean, cb: (err?: Error | null) => void): void {
    if (this.closed || this.socket.destroyed || this.socket.writableEnded) {
      cb(new Error('SPDY session closed'));
      return;
    }
    let ok = true;
    if (data.length === 0) {
      ok = this.socket.write(dataFrameHeader(streamId, fin ? FLAG_FIN : 0, 0));
    } else {
      for (let off = 0; off < data.length; off += MAX_DATA_FRAME) {
        const chunk = data.subarray(off, off + MAX_DATA_FRAME);
        const last = off + MAX_DATA_FRAME >= data.length;
        this.socket.write(dataFrameHeader(streamId, last && fin ? FLAG_FIN : 0, chunk.length));
        ok = this.socket.write(chunk);
      }
    }
    if (ok) {
      cb();
      return;
    }
    const done = () => {
      this.socket.off('drain', done);
      this.socket.off('close', done);
      cb();
    };
    this.socket.on('drain', done);
    this.socket.on('close', done);
  }

  sendReply(streamId: number, headers: SpdyHeaders, fin: boolean): void {
    this.writeRaw(
      controlFrame(FrameType.SYN_REPLY, fin ? FLAG_FIN : 0, Buffer.concat([u32(streamId), this.deflater.compress(encodeHeaderBlock(headers))])),
    );
  }

  sendReset(streamId: number, status: number): void {
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(streamId & 0x7fffffff, 0);
    payload.writeUInt32BE(status, 4);
    this.writeRaw(controlFrame(FrameType.RST_STREAM, 0, payload));
  }

  removeStream(stream: SpdyStream): void {
    this.streams.delete(stream.id);
    this.readerHasRoom(stream);
  }

  // -- reading --

  /** Called when a stream's reader is full: stop reading the socket until it drains. */
  readerFull(stream: SpdyStream): void {
    this.fullStreams.add(stream);
    this.socket.pause();
  }

  readerHasRoom(stream: SpdyStream): void {
    if (this.fullStreams.delete(stream) && this.fullStreams.size === 0 && !this.closed) this.socket.resume();
  }

  private onData(chunk: Buffer): void {
    if (DEBUG) console.error(`spdy socket data ${chunk.length}`);
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 8) {
      const word = this.pending.readUInt32BE(0);
      const flagsLen = this.pending.readUInt32BE(4);
      const length = flagsLen & 0xffffff;
      if (this.pending.length < 8 + length) break;
      const control = (word & 0x80000000) !== 0;
      const frame: ParsedFrame = {
        control,
        type: control ? word & 0xffff : 0,
        flags: flagsLen >>> 24,
        streamId: control ? 0 : word & 0x7fffffff,
        payload: this.pending.subarray(8, 8 + length),
      };
      if (control && ((word >>> 16) & 0x7fff) !== SPDY_VERSION) {
        this.emit('protocolError', new Error(`unsupported SPDY version ${(word >>> 16) & 0x7fff}`));
        this.destroy();
        return;
      }
      this.pending = this.pending.subarray(8 + length);
      this.queue.push(frame);
    }
    if (this.pending.length === 0) this.pending = Buffer.alloc(0);
    void this.process();
  }

  /** Frames are handled strictly in order; header blocks are the only asynchronous step. */
  private async process(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const frame = this.queue.shift() as ParsedFrame;
        await this.handle(frame);
      }
    } catch (err) {
      this.emit('protocolError', err);
      this.destroy();
    } finally {
      this.processing = false;
    }
  }

  private async handle(f: ParsedFrame): Promise<void> {
    if (DEBUG) console.error(`spdy <- ${f.control ? `control type=${f.type}` : `data stream=${f.streamId}`} flags=${f.flags} len=${f.payload.length}`);
    if (!f.control) {
      const stream = this.streams.get(f.streamId);
      if (!stream) {
        this.sendReset(f.streamId, RstStatus.INVALID_STREAM);
        return;
      }
      stream.onData(f.payload, (f.flags & FLAG_FIN) !== 0);
      return;
    }
    const p = f.payload;
    switch (f.type) {
      case FrameType.SYN_STREAM: {
        const id = p.readUInt32BE(0) & 0x7fffffff;
        const headers = await this.inflater.decompress(p.subarray(10));
        const remoteParity = this.options.server ? 1 : 0;
        if (id === 0 || id % 2 !== remoteParity || this.streams.has(id)) {
          this.sendReset(id, RstStatus.PROTOCOL_ERROR);
          return;
        }
        if (this.goneAway) {
          this.sendReset(id, RstStatus.REFUSED_STREAM);
          return;
        }
        const stream = new SpdyStream(this, id, headers, true);
        this.streams.set(id, stream);
        if (f.flags & FLAG_UNIDIRECTIONAL) stream.markLocalFinished();
        if (f.flags & FLAG_FIN) stream.onData(Buffer.alloc(0), true);
        this.emit('stream', stream);
        return;
      }
      case FrameType.SYN_REPLY: {
        const id = p.readUInt32BE(0) & 0x7fffffff;
        const headers = await this.inflater.decompress(p.subarray(4));
        const stream = this.streams.get(id);
        if (!stream) return;
        stream.replyHeaders = headers;
        stream.emit('reply', headers);
        if (f.flags & FLAG_FIN) stream.onData(Buffer.alloc(0), true);
        return;
      }
      case FrameType.HEADERS: {
        const id = p.readUInt32BE(0) & 0x7fffffff;
        const headers = await this.inflater.decompress(p.subarray(4));
        const stream = this.streams.get(id);
        if (!stream) return;
        stream.emit('headers', headers);
        if (f.flags & FLAG_FIN) stream.onData(Buffer.alloc(0), true);
        return;
      }
      case FrameType.RST_STREAM: {
        const id = p.readUInt32BE(0) & 0x7fffffff;
        this.streams.get(id)?.onReset(p.readUInt32BE(4));
        return;
      }
      case FrameType.PING: {
        const id = p.readUInt32BE(0);
        const ours = id % 2 === (this.options.server ? 0 : 1);
        if (ours) {
          this.pings.get(id)?.();
          this.pings.delete(id);
        } else {
          this.writeRaw(controlFrame(FrameType.PING, 0, p));
        }
        return;
      }
      case FrameType.GOAWAY:
        this.goneAway = true;
        this.emit('goaway');
        return;
      case FrameType.SETTINGS:
      case FrameType.WINDOW_UPDATE:
      default:
        return;
    }
  }
}

/**
 * A SPDY stream as a Duplex: readable = the peer's DATA, writable = ours. end() sends a
 * FIN; destroy() before both sides finished sends RST_STREAM(CANCEL).
 */
export class SpdyStream extends Duplex {
  replyHeaders: SpdyHeaders | undefined;
  private replied = false;
  private localFinished = false;
  private remoteFinished = false;
  /** The peer reset the stream (kubectl resets port-forward streams when it is done with them). */
  remoteReset = false;

  constructor(
    readonly session: SpdySession,
    readonly id: number,
    readonly headers: SpdyHeaders,
    readonly remote: boolean,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024 });
    // Writes racing a closed session fail; the owner sees 'close', the process must not crash.
    this.on('error', () => undefined);
  }

  /** The value of a request header (first of repeated values). */
  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()]?.split('\0')[0];
  }

  /** SYN_REPLY for a stream the peer opened. */
  reply(headers: SpdyHeaders = {}): void {
    if (this.replied || !this.remote) return;
    this.replied = true;
    this.session.sendReply(this.id, headers, false);
  }

  /** RST_STREAM and tear down locally. */
  reset(status: number = RstStatus.CANCEL): void {
    if (!this.destroyed) {
      this.session.sendReset(this.id, status);
      this.localFinished = this.remoteFinished = true;
      this.destroy();
    }
  }

  markLocalFinished(): void {
    this.localFinished = true;
  }

  onData(data: Buffer, fin: boolean): void {
    if (this.remoteFinished) return;
    if (data.length > 0 && !this.push(data)) this.session.readerFull(this);
    if (fin) {
      this.remoteFinished = true;
      this.push(null);
      this.maybeDone();
    }
  }

  onReset(_status: number): void {
    this.remoteReset = true;
    this.localFinished = this.remoteFinished = true;
    if (!this.readableEnded) this.push(null);
    this.destroy();
  }

  onSessionClosed(): void {
    this.localFinished = this.remoteFinished = true;
    if (!this.readableEnded) this.push(null);
    this.destroy();
  }

  override _read(): void {
    this.session.readerHasRoom(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.localFinished) {
      cb(new Error(`write after FIN on SPDY stream ${this.id}`));
      return;
    }
    this.session.writeData(this.id, chunk, false, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.localFinished) {
      cb();
      return;
    }
    this.localFinished = true;
    this.session.writeData(this.id, Buffer.alloc(0), true, (err) => {
      cb(err);
      this.maybeDone();
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!(this.localFinished && this.remoteFinished) && !this.session.closed) {
      this.session.sendReset(this.id, RstStatus.CANCEL);
    }
    this.localFinished = this.remoteFinished = true;
    this.session.removeStream(this);
    cb(err);
  }

  private maybeDone(): void {
    if (this.localFinished && this.remoteFinished) this.session.removeStream(this);
  }
}
