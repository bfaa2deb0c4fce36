/**
 * Incremental, read-only parsers for the two framings Kubernetes' streaming protocols use
 * (exec, attach): WebSocket (RFC 6455, with the channel.k8s.io subprotocols) and SPDY/3.1.
 * They see a copy of the bytes that cross the proxy and never change them. A frame header
 * is buffered until complete; payloads are handed out as they arrive, so memory per
 * direction is bounded by the largest control frame, never by a session or a data frame.
 * Anything they cannot parse throws a FrameError: the caller stops observing.
 */
import { SPDY3_DICTIONARY } from '@keyway/kube';
import { constants as zc, inflateSync } from 'node:zlib';

export class FrameError extends Error {}

/** Largest control-frame payload kept while it arrives (SPDY SYN_STREAM and friends). */
const MAX_CONTROL_PAYLOAD = 64 * 1024;
/** Largest total of compressed SPDY header blocks in one direction (a handful of streams). */
const MAX_HEADER_BYTES = 256 * 1024;

// ---- WebSocket ----------------------------------------------------------------------------

/**
 * One direction of a WebSocket connection. `masked` is whether frames in this direction
 * must be masked (client→server) or must not be (server→client). Data messages are
 * reported per piece with the channel (the first payload byte of the message).
 */
export class WebSocketParser {
  private head = Buffer.alloc(0);
  private remaining = 0;
  private inPayload = false;
  private mask: Buffer | undefined;
  private maskOffset = 0;
  private opcode = 0;
  private fin = false;
  /** A data message is in progress (fragmented: more frames follow). */
  private inMessage = false;
  private channel: number | undefined;

  constructor(
    private readonly masked: boolean,
    private readonly onData: (channel: number, bytes: Buffer) => void,
    private readonly onClose: () => void = () => undefined,
  ) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (!this.inPayload) {
        const need = wsHeaderLength(this.head);
        const take = Math.min(need - this.head.length, chunk.length - off);
        this.head = Buffer.concat([this.head, chunk.subarray(off, off + take)]);
        off += take;
        if (this.head.length === wsHeaderLength(this.head)) this.startFrame();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - off);
      this.payload(chunk.subarray(off, off + take));
      off += take;
      this.remaining -= take;
      if (this.remaining === 0) this.endFrame();
    }
  }

  private startFrame(): void {
    const h = this.head;
    this.head = Buffer.alloc(0);
    const b0 = h[0] as number;
    const b1 = h[1] as number;
    if (b0 & 0x70) throw new FrameError('WebSocket frame with RSV bits set (an extension this observer does not know)');
    this.fin = (b0 & 0x80) !== 0;
    this.opcode = b0 & 0x0f;
    const isMasked = (b1 & 0x80) !== 0;
    if (isMasked !== this.masked) throw new FrameError(`WebSocket frame ${isMasked ? 'masked' : 'unmasked'} in the wrong direction`);
    let len = b1 & 0x7f;
    let p = 2;
    if (len === 126) {
      len = h.readUInt16BE(2);
      p = 4;
    } else if (len === 127) {
      const big = h.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrameError('WebSocket frame length out of range');
      len = Number(big);
      p = 10;
    }
    this.mask = isMasked ? h.subarray(p, p + 4) : undefined;
    this.maskOffset = 0;
    this.remaining = len;
    if (this.opcode >= 0x8) {
      if (this.opcode > 0xa) throw new FrameError(`unknown WebSocket control opcode ${this.opcode}`);
      if (!this.fin || len > 125) throw new FrameError('malformed WebSocket control frame');
      if (this.opcode === 0x8) this.onClose();
    } else if (this.opcode === 0x0) {
      if (!this.inMessage) throw new FrameError('WebSocket continuation frame outside a message');
    } else if (this.opcode === 0x1 || this.opcode === 0x2) {
      if (this.inMessage) throw new FrameError('WebSocket data frame inside a fragmented message');
      this.inMessage = true;
      this.channel = undefined;
    } else {
      throw new FrameError(`unknown WebSocket opcode ${this.opcode}`);
    }
    this.inPayload = true;
    if (len === 0) this.endFrame();
  }

  private payload(piece: Buffer): void {
    if (this.opcode >= 0x8) return; // ping, pong, close: nothing recorded
    let bytes = piece;
    if (this.mask) {
      bytes = Buffer.allocUnsafe(piece.length);
      for (let i = 0; i < piece.length; i++) bytes[i] = (piece[i] as number) ^ (this.mask[(this.maskOffset + i) & 3] as number);
      this.maskOffset = (this.maskOffset + piece.length) & 3;
    }
    if (this.channel === undefined) {
      this.channel = bytes[0] as number;
      bytes = bytes.subarray(1);
    }
    if (bytes.length > 0) this.onData(this.channel, bytes);
  }

  private endFrame(): void {
    this.inPayload = false;
    if (this.opcode < 0x8 && this.fin) {
      this.inMessage = false;
      this.channel = undefined;
    }
  }
}

/** Bytes of the frame header given what of it is known (at least 2, at most 14). */
function wsHeaderLength(head: Buffer): number {
  if (head.length < 2) return 2;
  const len = (head[1] as number) & 0x7f;
  const masked = ((head[1] as number) & 0x80) !== 0;
  return 2 + (len === 126 ? 2 : len === 127 ? 8 : 0) + (masked ? 4 : 0);
}

// ---- SPDY/3.1 -----------------------------------------------------------------------------

export const SPDY_SYN_STREAM = 1;
export const SPDY_SYN_REPLY = 2;

export interface SpdyHandlers {
  control(type: number, flags: number, payload: Buffer): void;
  data(streamId: number, bytes: Buffer, fin: boolean): void;
}

/** One direction of a SPDY/3.1 connection: control frames whole, DATA payloads per piece. */
export class SpdyParser {
  private head = Buffer.alloc(0);
  private inPayload = false;
  private remaining = 0;
  private isControl = false;
  private type = 0;
  private flags = 0;
  private streamId = 0;
  private control: Buffer[] = [];

  constructor(private readonly h: SpdyHandlers) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (!this.inPayload) {
        const take = Math.min(8 - this.head.length, chunk.length - off);
        this.head = Buffer.concat([this.head, chunk.subarray(off, off + take)]);
        off += take;
        if (this.head.length === 8) this.startFrame();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - off);
      const piece = chunk.subarray(off, off + take);
      off += take;
      this.remaining -= take;
      if (this.isControl) this.control.push(piece);
      else if (piece.length > 0) this.h.data(this.streamId, piece, false);
      if (this.remaining === 0) this.endFrame();
    }
  }

  private startFrame(): void {
    const h = this.head;
    this.head = Buffer.alloc(0);
    this.isControl = ((h[0] as number) & 0x80) !== 0;
    this.flags = h[4] as number;
    this.remaining = h.readUIntBE(5, 3);
    if (this.isControl) {
      const version = h.readUInt16BE(0) & 0x7fff;
      if (version !== 3) throw new FrameError(`SPDY control frame of version ${version}, expected 3`);
      this.type = h.readUInt16BE(2);
      if (this.remaining > MAX_CONTROL_PAYLOAD) throw new FrameError(`SPDY control frame of ${this.remaining} bytes is larger than ${MAX_CONTROL_PAYLOAD}`);
      this.control = [];
    } else {
      this.streamId = h.readUInt32BE(0) & 0x7fffffff;
    }
    this.inPayload = true;
    if (this.remaining === 0) this.endFrame();
  }

  private endFrame(): void {
    this.inPayload = false;
    if (this.isControl) {
      const payload = Buffer.concat(this.control);
      this.control = [];
      this.h.control(this.type, this.flags, payload);
    } else if ((this.flags & 1) === 1) {
      this.h.data(this.streamId, Buffer.alloc(0), true);
    }
  }
}

/** The SPDY/3 header dictionary (spec section 2.6.10.1). */
export function spdyDictionary(): Buffer {
  return SPDY3_DICTIONARY;
}

/**
 * Decompresses one direction's header blocks: a single zlib stream primed with the SPDY
 * dictionary, sync-flushed at the end of each frame. The compressed blocks of a session
 * are few and small (one per stream), so they are kept (bounded) and inflated again as a
 * whole, synchronously, keeping the blocks in order with the frames.
 */
export class SpdyHeaderInflater {
  private compressed: Buffer[] = [];
  private size = 0;
  private consumed = 0;

  headers(block: Buffer): Record<string, string> {
    this.size += block.length;
    if (this.size > MAX_HEADER_BYTES) throw new FrameError('SPDY header blocks exceed the observer limit');
    this.compressed.push(block);
    let out: Buffer;
    try {
      out = inflateSync(Buffer.concat(this.compressed), { dictionary: spdyDictionary(), finishFlush: zc.Z_SYNC_FLUSH });
    } catch (err) {
      throw new FrameError(`SPDY header block does not decompress: ${(err as Error).message}`);
    }
    const mine = out.subarray(this.consumed);
    this.consumed = out.length;
    return decodeSpdyHeaderBlock(mine);
  }
}

/** count(32), then per entry len(32) name len(32) value. */
export function decodeSpdyHeaderBlock(buf: Buffer): Record<string, string> {
  const fail = () => new FrameError('malformed SPDY header block');
  if (buf.length < 4) throw fail();
  const count = buf.readUInt32BE(0);
  let off = 4;
  const headers: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    if (buf.length < off + 4) throw fail();
    const nl = buf.readUInt32BE(off);
    off += 4;
    if (buf.length < off + nl + 4) throw fail();
    const name = buf.toString('utf8', off, off + nl).toLowerCase();
    off += nl;
    const vl = buf.readUInt32BE(off);
    off += 4;
    if (buf.length < off + vl) throw fail();
    headers[name] = buf.toString('utf8', off, off + vl);
    off += vl;
  }
  return headers;
}
