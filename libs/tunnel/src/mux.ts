import { Duplex } from 'node:stream';

/**
 * A small stream multiplexer for agent tunnels (ALPN keyway-tunnel/2).
 *
 * Why not HTTP/2 (keyway-tunnel/1 was HTTP/2): the tunnel carries one stream per kubectl
 * request, and with Node's http2 each stream cost the proxy and the agent about as much CPU
 * as the whole rest of their request path (header lists converted back and forth, an
 * Http2Stream with its own timers and state machine per request, HPACK). `npm run bench --
 * proxy` measured it. This protocol keeps what the tunnel needs from HTTP/2 (many
 * concurrent streams on one connection, half-close, reset, per-stream flow control so one
 * slow reader cannot make the other side buffer without bound, ping) and nothing else.
 * Under load, frames written in one turn of the event loop leave in one socket write, so
 * many requests share a TLS record and a syscall; on a quiet tunnel they leave as soon as
 * the piece of work that wrote them is done, since waiting for the turn only adds latency.
 *
 * Frame: length (u32, payload bytes) | type (u8) | flags (u8) | stream id (u32) | payload.
 * The connecting side that opens streams (the proxy) is the "client"; only it opens streams.
 *
 * - HEADERS opens a stream (client) or answers it (server); the payload is JSON. Flag END:
 *   the sender sends nothing more on this stream (a request without a body).
 * - DATA carries body bytes, at most the window the receiver granted.
 * - END: the sender's half of the stream is done.
 * - RESET: the stream is abandoned in both directions (payload: a reason, UTF-8).
 * - WINDOW: the receiver consumed bytes; payload u32 is how many more the sender may send.
 * - PING / PONG on stream 0: liveness; PONG echoes PING's payload.
 * - ANNOUNCE on stream 0 (client to server): JSON news about the cluster, such as the live
 *   proxies (session.ts), so an agent learns of a new proxy over the tunnels it holds. A
 *   side that does not know it ignores it, as it ignores any other stream-0 frame.
 */

export const FRAME_HEADER_BYTES = 10;
export const FrameType = { headers: 1, data: 2, end: 3, reset: 4, window: 5, ping: 6, pong: 7, announce: 8 } as const;
export const FLAG_END = 1;
/** Largest DATA payload sent; bigger writes are split. */
export const MAX_DATA_PAYLOAD = 64 * 1024;
/** Largest frame accepted; anything bigger is a protocol error that closes the tunnel. */
export const MAX_FRAME_PAYLOAD = 4 * 1024 * 1024;
/** Bytes a sender may have in flight per stream before the receiver grants more. */
export const STREAM_WINDOW = 1024 * 1024;
/** The receiver grants credit back once this many bytes were consumed. */
const WINDOW_UPDATE_THRESHOLD = STREAM_WINDOW / 4;
/** A tunnel that wrote this recently counts as busy: its writes wait to be coalesced. */
const BUSY_FLUSH_INTERVAL_MS = 0.5;
/** Queued socket bytes above which stream writes wait for the socket to drain. */
const SOCKET_HIGH_WATER = 256 * 1024;

export interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

export class ProtocolError extends Error {}

/** Encodes one frame header followed by the payload (copied in) into a single buffer. */
export function encodeFrame(type: number, flags: number, id: number, payload?: Buffer | string): Buffer {
  const length = payload === undefined ? 0 : typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  out.writeUInt32BE(length, 0);
  out[4] = type;
  out[5] = flags;
  out.writeUInt32BE(id, 6);
  if (typeof payload === 'string') out.write(payload, FRAME_HEADER_BYTES, 'utf8');
  else if (payload) payload.copy(out, FRAME_HEADER_BYTES);
  return out;
}

function encodeHeader(type: number, flags: number, id: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  out.writeUInt32BE(length, 0);
  out[4] = type;
  out[5] = flags;
  out.writeUInt32BE(id, 6);
  return out;
}

/**
 * Splits a byte stream into frames, whatever the chunk boundaries. A payload is copied
 * only when it spans chunks; otherwise it is a view of the chunk it arrived in.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(
    private readonly onFrame: (type: number, flags: number, id: number, payload: Buffer) => void,
    private readonly maxPayload = MAX_FRAME_PAYLOAD,
  ) {}

  push(chunk: Buffer): void {
    let buf: Buffer;
    if (this.buffered === 0) {
      buf = chunk;
    } else {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      // Wait for the whole frame before copying anything together.
      if (this.buffered < this.needed()) return;
      buf = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [];
      this.buffered = 0;
    }
    let off = 0;
    while (buf.length - off >= FRAME_HEADER_BYTES) {
      const length = buf.readUInt32BE(off);
      if (length > this.maxPayload) throw new ProtocolError(`frame of ${length} bytes is larger than ${this.maxPayload}`);
      const end = off + FRAME_HEADER_BYTES + length;
      if (end > buf.length) break;
      this.onFrame(buf[off + 4] as number, buf[off + 5] as number, buf.readUInt32BE(off + 6), buf.subarray(off + FRAME_HEADER_BYTES, end));
      off = end;
    }
    if (off < buf.length) {
      const rest = buf.subarray(off);
      this.chunks.push(rest);
      this.buffered = rest.length;
    }
  }

  /** Bytes needed before the first buffered frame is complete. */
  private needed(): number {
    if (this.buffered < FRAME_HEADER_BYTES) return FRAME_HEADER_BYTES;
    const head = this.chunks.length === 1 || (this.chunks[0] as Buffer).length >= 4 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const length = head.readUInt32BE(0);
    if (length > this.maxPayload) throw new ProtocolError(`frame of ${length} bytes is larger than ${this.maxPayload}`);
    return FRAME_HEADER_BYTES + length;
  }
}

export interface MuxOptions {
  /** Server side: a stream the peer opened, with its decoded HEADERS and whether it has no body. */
  onStream?: (stream: MuxStream, head: unknown, ended: boolean) => void;
  /** Client side: ping the peer this often and close the tunnel when it does not answer in time. */
  pingIntervalMs?: number;
  onError?: (err: Error) => void;
  /** Server side: an ANNOUNCE frame's payload (not parsed: the receiver bounds and checks it). */
  onAnnounce?: (payload: Buffer) => void;
  /** How recently the tunnel must have written to count as busy (default 0.5 ms). */
  busyIntervalMs?: number;
}

interface PendingWrite {
  chunk: Buffer;
  cb: (err?: Error | null) => void;
}

/** One connection carrying many streams. */
export class Mux {
  private readonly streams = new Map<number, MuxStream>();
  private nextId = 1;
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private lastFlush = -Infinity;
  private drainWaiters: (() => void)[] = [];
  private closing = false;
  private dead = false;
  private closedResolve!: () => void;
  readonly closed: Promise<void> = new Promise((r) => (this.closedResolve = r));
  private readonly reader: FrameReader;
  private pingTimer: NodeJS.Timeout | undefined;
  private pingDeadline: NodeJS.Timeout | undefined;
  private readonly flush = () => this.flushNow();

  constructor(
    private readonly socket: Duplex,
    private readonly o: MuxOptions = {},
  ) {
    this.reader = new FrameReader((type, flags, id, payload) => this.onFrame(type, flags, id, payload));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(chunk);
      } catch (err) {
        this.destroy(err as Error);
      }
    });
    socket.on('drain', () => this.releaseDrainWaiters());
    socket.on('error', (err: Error) => this.destroy(err));
    socket.on('end', () => this.destroy());
    socket.on('close', () => this.destroy());
    if (o.pingIntervalMs) {
      const interval = o.pingIntervalMs;
      this.pingTimer = setInterval(() => {
        if (this.pingDeadline) return;
        this.pingDeadline = setTimeout(() => this.destroy(new Error('tunnel ping timed out')), interval);
        this.pingDeadline.unref();
        this.send(encodeFrame(FrameType.ping, 0, 0, Buffer.alloc(8)));
      }, interval);
      this.pingTimer.unref();
    }
  }

  /** Wrote recently: writes wait for the end of the event-loop turn to be coalesced. */
  private get busy(): boolean {
    return performance.now() - this.lastFlush < (this.o.busyIntervalMs ?? BUSY_FLUSH_INTERVAL_MS);
  }

  get isOpen(): boolean {
    return !this.dead && !this.closing;
  }

  /** Streams currently open, for tests and diagnostics. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Client side: opens a stream with `head` (JSON-encoded); `ended` when no body follows. */
  open(head: unknown, ended: boolean): MuxStream {
    if (!this.isOpen) throw new Error('tunnel is closed');
    let id = this.nextId;
    while (this.streams.has(id)) id = id >= 0xffff_fffe ? 1 : id + 1;
    this.nextId = id >= 0xffff_fffe ? 1 : id + 1;
    const stream = new MuxStream(this, id);
    stream.openedHere = true;
    this.streams.set(id, stream);
    this.send(encodeFrame(FrameType.headers, ended ? FLAG_END : 0, id, JSON.stringify(head)));
    if (ended) {
      stream.localEnded = true;
      // The whole request is in that frame: on a quiet tunnel nothing is gained by waiting.
      if (!this.busy) this.flushNow();
    }
    return stream;
  }

  /** Sends an ANNOUNCE frame (JSON) on stream 0. */
  announce(message: unknown): void {
    if (!this.isOpen) return;
    this.send(encodeFrame(FrameType.announce, 0, 0, JSON.stringify(message)));
  }

  /** Stops opening streams and closes the connection once the open ones are done. */
  close(): void {
    this.closing = true;
    if (this.streams.size === 0) this.end();
  }

  destroy(err?: Error): void {
    if (this.dead) return;
    this.dead = true;
    if (err) this.o.onError?.(err);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.pingDeadline) clearTimeout(this.pingDeadline);
    const gone = err ?? new Error('tunnel closed');
    for (const s of this.streams.values()) {
      s.resetByPeer = true; // nothing can be sent any more
      if (!s.destroyed) s.destroy(s.localEnded && s.remoteEnded ? undefined : gone);
    }
    this.streams.clear();
    this.out = [];
    this.outBytes = 0;
    this.releaseDrainWaiters();
    this.socket.destroy();
    this.closedResolve();
  }

  // --- used by MuxStream ---

  /** @internal Queues a frame (see the class comment for when queued frames leave). */
  send(frame: Buffer): void {
    if (this.dead) return;
    this.out.push(frame);
    this.outBytes += frame.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      if (this.busy) setImmediate(this.flush);
      else queueMicrotask(this.flush);
    }
  }

  /** @internal Sends body bytes within the stream's window; calls back when more may be written. */
  sendData(stream: MuxStream, chunk: Buffer, cb: (err?: Error | null) => void): void {
    if (stream.discardWrites) return cb();
    if (this.dead || stream.resetByPeer) return cb(new Error('tunnel stream closed'));
    let off = 0;
    while (off < chunk.length && stream.sendWindow > 0) {
      const n = Math.min(chunk.length - off, stream.sendWindow, MAX_DATA_PAYLOAD);
      this.send(encodeHeader(FrameType.data, 0, stream.id, n));
      this.send(off === 0 && n === chunk.length ? chunk : chunk.subarray(off, off + n));
      stream.sendWindow -= n;
      off += n;
    }
    if (off < chunk.length) {
      stream.pendingWrite = { chunk: off === 0 ? chunk : chunk.subarray(off), cb };
      return;
    }
    if (this.outBytes + this.socket.writableLength > SOCKET_HIGH_WATER) this.drainWaiters.push(() => cb());
    else cb();
  }

  /** @internal */
  sendEnd(stream: MuxStream): void {
    this.send(encodeHeader(FrameType.end, 0, stream.id, 0));
    this.settle(stream);
  }

  /** @internal Grants the peer more window once enough of what it sent was consumed. */
  credit(stream: MuxStream): void {
    if (stream.remoteEnded || stream.resetByPeer) return;
    const consumed = stream.uncredited - stream.readableLength;
    if (consumed < WINDOW_UPDATE_THRESHOLD) return;
    stream.uncredited -= consumed;
    const frame = encodeHeader(FrameType.window, 0, stream.id, 4);
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(consumed, 0);
    this.send(frame);
    this.send(payload);
  }

  /** @internal A stream destroyed locally before both halves finished tells the peer. */
  streamDestroyed(stream: MuxStream, err: Error | null): void {
    const pending = stream.pendingWrite;
    stream.pendingWrite = undefined;
    pending?.cb(err ?? new Error('tunnel stream closed'));
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    if (!stream.resetByPeer && !(stream.localEnded && stream.remoteEnded)) {
      this.send(encodeFrame(FrameType.reset, 0, stream.id, err?.message ?? 'cancelled'));
    }
    this.afterStreamGone();
  }

  /** @internal Sends the answer to a stream the peer opened. */
  respond(stream: MuxStream, head: unknown, ended: boolean): void {
    this.send(encodeFrame(FrameType.headers, ended ? FLAG_END : 0, stream.id, JSON.stringify(head)));
    if (ended) {
      stream.localEnded = true;
      this.settle(stream);
    }
  }

  // --- internals ---

  /** Forgets a stream once both halves are done: late frames for it are ignored. */
  private settle(stream: MuxStream): void {
    if (stream.localEnded && stream.remoteEnded && this.streams.get(stream.id) === stream) {
      this.streams.delete(stream.id);
      this.afterStreamGone();
    }
  }

  private afterStreamGone(): void {
    if (this.closing && this.streams.size === 0) this.end();
  }

  private end(): void {
    if (this.dead) return;
    this.flushNow();
    this.socket.end();
  }

  private flushNow(): void {
    this.flushScheduled = false;
    if (this.dead || this.out.length === 0) return;
    this.lastFlush = performance.now();
    const data = this.out.length === 1 ? (this.out[0] as Buffer) : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    if (this.socket.write(data) && this.drainWaiters.length > 0 && this.socket.writableLength <= SOCKET_HIGH_WATER) {
      this.releaseDrainWaiters();
    }
  }

  private releaseDrainWaiters(): void {
    if (this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (id === 0) {
      if (type === FrameType.ping) this.send(encodeFrame(FrameType.pong, 0, 0, payload));
      else if (type === FrameType.pong && this.pingDeadline) {
        clearTimeout(this.pingDeadline);
        this.pingDeadline = undefined;
      } else if (type === FrameType.announce) this.o.onAnnounce?.(payload);
      return;
    }
    const stream = this.streams.get(id);
    switch (type) {
      case FrameType.headers: {
        let head: unknown;
        try {
          head = JSON.parse(payload.toString('utf8'));
        } catch {
          throw new ProtocolError('HEADERS payload is not JSON');
        }
        const ended = (flags & FLAG_END) !== 0;
        if (stream) {
          // The answer to a stream this side opened.
          stream.emit('head', head);
          if (ended) this.remoteEnd(stream);
          return;
        }
        if (!this.o.onStream) throw new ProtocolError('the peer may not open streams');
        if (this.closing) {
          this.send(encodeFrame(FrameType.reset, 0, id, 'tunnel is closing'));
          return;
        }
        const s = new MuxStream(this, id);
        this.streams.set(id, s);
        if (ended) this.remoteEnd(s);
        this.o.onStream(s, head, ended);
        return;
      }
      case FrameType.data:
        if (!stream || stream.remoteEnded) return;
        stream.uncredited += payload.length;
        if (stream.uncredited > STREAM_WINDOW) throw new ProtocolError(`stream ${id}: the peer sent more than the window allows`);
        stream.push(payload);
        return;
      case FrameType.end:
        if (stream && !stream.remoteEnded) this.remoteEnd(stream);
        return;
      case FrameType.window: {
        if (!stream || payload.length !== 4) return;
        stream.sendWindow += payload.readUInt32BE(0);
        const pending = stream.pendingWrite;
        if (pending && stream.sendWindow > 0) {
          stream.pendingWrite = undefined;
          this.sendData(stream, pending.chunk, pending.cb);
        }
        return;
      }
      case FrameType.reset:
        if (!stream) return;
        this.streams.delete(id);
        stream.resetByPeer = true;
        if (stream.openedHere && stream.remoteEnded && !stream.destroyed) {
          // The peer's whole answer arrived before the reset: it only reads no more of what
          // this side sends (HTTP/2's RST_STREAM NO_ERROR after a response). The answer stays
          // readable; the rest of this side's body is dropped. On the answering side a reset
          // after the whole request is the asker going away (a closed watch): it ends the stream.
          stream.discardWrites = true;
          const pending = stream.pendingWrite;
          stream.pendingWrite = undefined;
          pending?.cb();
        } else if (!stream.destroyed) {
          stream.destroy(stream.localEnded && stream.remoteEnded ? undefined : new Error(`tunnel stream reset by the other end: ${payload.toString('utf8')}`));
        }
        this.afterStreamGone();
        return;
      default:
        throw new ProtocolError(`unknown frame type ${type}`);
    }
  }

  private remoteEnd(stream: MuxStream): void {
    stream.remoteEnded = true;
    stream.push(null);
    this.settle(stream);
  }
}

const noop = () => undefined;

/**
 * One stream of a Mux: readable side is what the peer sends, writable side what this side
 * sends. Emits 'head' with the peer's HEADERS when this side opened the stream.
 */
export class MuxStream extends Duplex {
  /** @internal */ sendWindow = STREAM_WINDOW;
  /** @internal Bytes received and not yet credited back to the peer. */ uncredited = 0;
  /** @internal */ pendingWrite: PendingWrite | undefined;
  /** @internal */ localEnded = false;
  /** @internal */ remoteEnded = false;
  /** @internal */ resetByPeer = false;
  /** @internal The peer reset the stream after its whole answer: writes succeed and go nowhere. */ discardWrites = false;
  /** @internal This side opened the stream: it sent the request and reads the answer. */ openedHere = false;
  private responded = false;

  constructor(
    private readonly mux: Mux,
    readonly id: number,
  ) {
    super();
    // Errors reach whoever pipes the stream; an unobserved one must not crash the process.
    this.on('error', noop);
  }

  /** Whether `respond` was called. */
  get headSent(): boolean {
    return this.responded;
  }

  /** Answers a stream the peer opened; `ended` when no body follows. */
  respond(head: unknown, ended = false): void {
    if (this.responded) throw new Error('already responded');
    this.responded = true;
    this.mux.respond(this, head, ended);
    if (ended) this.end();
  }

  override _read(): void {
    this.mux.credit(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.mux.sendData(this, chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.localEnded) {
      this.localEnded = true;
      if (!this.resetByPeer) this.mux.sendEnd(this);
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.mux.streamDestroyed(this, err);
    cb(err);
  }
}
