/**
 * The frames a proxy writes into an exec/attach session it ends: a line on the session's
 * stderr (stdout for a terminal, which has no stderr), a Failure Status on the error channel
 * (so kubectl exits non-zero), and the protocol's close. Written only at a
 * frame boundary of the server→client direction, which FrameCursor finds.
 */
import { FrameError, SPDY_SYN_STREAM, SpdyHeaderInflater, SpdyParser } from '../recording/frames.js';

type Framing = 'websocket' | 'spdy';

/**
 * Follows the frame boundaries of one direction (WebSocket or SPDY/3.1) without keeping
 * payloads: a header is buffered until complete (at most 14 bytes), payloads are skipped.
 */
export class FrameCursor {
  private head = Buffer.alloc(0);
  private remaining = 0;

  constructor(private readonly framing: Framing) {}

  /** Between two frames. */
  get atBoundary(): boolean {
    return this.head.length === 0 && this.remaining === 0;
  }

  /**
   * Advances over `chunk`; with `stopAtBoundary`, stops at the first boundary after the
   * start (or at the start when already there). Returns the bytes passed over.
   */
  advance(chunk: Buffer, stopAtBoundary = false): number {
    let off = 0;
    while (off < chunk.length) {
      if (stopAtBoundary && this.atBoundary) return off;
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - off);
        this.remaining -= take;
        off += take;
        continue;
      }
      const need = this.headerLength();
      const take = Math.min(need - this.head.length, chunk.length - off);
      this.head = Buffer.concat([this.head, chunk.subarray(off, off + take)]);
      off += take;
      if (this.head.length === this.headerLength()) {
        this.remaining = this.payloadLength();
        this.head = Buffer.alloc(0);
      }
    }
    return off;
  }

  private headerLength(): number {
    if (this.framing === 'spdy') return 8;
    const h = this.head;
    if (h.length < 2) return 2;
    const len = (h[1] as number) & 0x7f;
    return 2 + (len === 126 ? 2 : len === 127 ? 8 : 0) + (((h[1] as number) & 0x80) !== 0 ? 4 : 0);
  }

  private payloadLength(): number {
    const h = this.head;
    if (this.framing === 'spdy') return h.readUIntBE(5, 3);
    const len = (h[1] as number) & 0x7f;
    if (len === 126) return h.readUInt16BE(2);
    if (len === 127) {
      const big = h.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrameError('WebSocket frame length out of range');
      return Number(big);
    }
    return len;
  }
}

export interface SessionProtocol {
  /** The request's Upgrade header. */
  upgrade: string;
  /** Sec-WebSocket-Protocol or X-Stream-Protocol-Version of the response. */
  subprotocol: string;
  /** exec/attach (a channel to write on) rather than port-forward. */
  command: boolean;
  tty: boolean;
}

/** The session's protocol from its request (Upgrade, path) and the upstream's 101 headers. */
export function sessionProtocol(upgrade: string, path: string, headers: Record<string, string | string[] | undefined>, subresource: string): SessionProtocol {
  const header = (name: string) => {
    const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
    const v = key === undefined ? undefined : headers[key];
    return String(Array.isArray(v) ? v[0] : (v ?? ''));
  };
  const tty = new URLSearchParams(path.split('?')[1] ?? '').get('tty');
  return {
    upgrade,
    subprotocol: header('sec-websocket-protocol') || header('x-stream-protocol-version'),
    command: subresource === 'exec' || subresource === 'attach',
    tty: tty === 'true' || tty === '1',
  };
}

/** What the ending of one session writes, learning SPDY stream ids from the client's frames. */
export class LastWords {
  readonly framing: Framing | undefined;
  private readonly base64: boolean;
  private readonly streams = new Map<string, number>();
  private readonly clientParser: SpdyParser | undefined;
  private broken = false;

  constructor(private readonly p: SessionProtocol) {
    const upgrade = p.upgrade.toLowerCase();
    const sub = p.subprotocol.toLowerCase();
    this.base64 = sub.includes('base64');
    if (upgrade === 'websocket') {
      // Port-forward over WebSocket carries raw SPDY or port channels: only a close is written.
      this.framing = 'websocket';
    } else if (upgrade.startsWith('spdy/3')) {
      this.framing = 'spdy';
      if (p.command) {
        const inflater = new SpdyHeaderInflater();
        this.clientParser = new SpdyParser({
          control: (type, _flags, payload) => {
            if (type !== SPDY_SYN_STREAM || payload.length < 10) return;
            const id = payload.readUInt32BE(0) & 0x7fffffff;
            const kind = inflater.headers(payload.subarray(10))['streamtype'];
            if (kind) this.streams.set(kind, id);
          },
          data: () => undefined,
        });
      }
    }
  }

  /** Bytes from the client, for the SPDY stream ids. */
  fromClient(chunk: Buffer): void {
    if (!this.clientParser || this.broken) return;
    try {
      this.clientParser.push(chunk);
    } catch {
      this.broken = true; // no last words then, only the close
    }
  }

  /**
   * The bytes to send the client before closing: `message` as the session's last line, and
   * `summary` in the error channel's Status (kubectl prints it as "error: …" and exits 1; kept
   * short so the reason is not printed twice).
   */
  frames(message: string, summary = 'keyway: session closed'): Buffer {
    const line = Buffer.from(this.p.tty ? `\r\n${message}\r\n` : `${message}\n`);
    const status = Buffer.from(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: summary, reason: 'Forbidden', code: 403 }));
    if (this.framing === 'websocket') {
      const close = Buffer.from([0x88, 0x02, 0x03, 0xe8]); // close, 1000
      if (!this.p.command || !/channel\.k8s\.io$/.test(this.p.subprotocol)) return close;
      return Buffer.concat([this.wsChannel(this.p.tty ? 1 : 2, line), this.wsChannel(3, status), close]);
    }
    if (this.framing === 'spdy') {
      const out: Buffer[] = [];
      const text = this.streams.get(this.p.tty ? 'stdout' : 'stderr') ?? this.streams.get('stdout');
      if (text !== undefined) out.push(spdyData(text, line, false));
      const error = this.streams.get('error');
      if (error !== undefined) out.push(spdyData(error, status, true));
      return Buffer.concat(out);
    }
    return Buffer.alloc(0);
  }

  private wsChannel(channel: number, data: Buffer): Buffer {
    const payload = this.base64 ? Buffer.from(String(channel) + data.toString('base64')) : Buffer.concat([Buffer.from([channel]), data]);
    const opcode = this.base64 ? 0x81 : 0x82;
    const head = payload.length < 126 ? Buffer.from([opcode, payload.length]) : Buffer.from([opcode, 126, payload.length >> 8, payload.length & 0xff]);
    return Buffer.concat([head, payload]);
  }
}

function spdyData(streamId: number, data: Buffer, fin: boolean): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId & 0x7fffffff, 0);
  head.writeUInt8(fin ? 1 : 0, 4);
  head.writeUIntBE(data.length, 5, 3);
  return Buffer.concat([head, data]);
}
