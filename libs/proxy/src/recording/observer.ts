/**
 * Watches both directions of an upgraded exec/attach connection and turns what crosses it
 * into session events: stdin, stdout, stderr, resizes, and the error channel's Status (the
 * exit code). It only reads copies of the bytes; when it meets something it cannot parse it
 * stops, records why, and the session goes on untouched.
 */
import { isUtf8 } from 'node:buffer';
import { FrameError, SPDY_SYN_STREAM, SpdyHeaderInflater, SpdyParser, WebSocketParser } from './frames.js';

export type StreamChannel = 'stdin' | 'stdout' | 'stderr' | 'error' | 'resize';

/** One recorded event, as stored (JSON): `t` is milliseconds since the session started. */
export interface SessionEvent {
  t: number;
  type: StreamChannel | 'close' | 'observer';
  /** The bytes as text when they are UTF-8, else `b64`. */
  data?: string;
  b64?: string;
  width?: number;
  height?: number;
  message?: string;
}

export interface ExecOutcome {
  exitCode?: number;
  error?: string;
}

const WS_CHANNELS: Record<number, StreamChannel> = { 0: 'stdin', 1: 'stdout', 2: 'stderr', 3: 'error', 4: 'resize' };
const SPDY_TYPES = new Set<string>(['stdin', 'stdout', 'stderr', 'error', 'resize']);
/** Error-channel and resize bytes kept to parse them (each is a small JSON document). */
const MAX_SMALL_CHANNEL = 64 * 1024;
/** Longest data event; larger pieces are split. */
const MAX_EVENT_BYTES = 32 * 1024;

export interface ObserverOptions {
  /** The Upgrade header of the request: "websocket" or "SPDY/3.1". */
  upgrade: string;
  /** The negotiated subprotocol (Sec-WebSocket-Protocol or X-Stream-Protocol-Version). */
  subprotocol: string;
  record: (event: SessionEvent) => void;
  now?: () => number;
}

export class SessionObserver {
  private readonly fromClientParser: { push(b: Buffer): void } | undefined;
  private readonly fromServerParser: { push(b: Buffer): void } | undefined;
  private stopped = false;
  private readonly started: number;
  private readonly now: () => number;
  private errorText = '';
  private resizeText = '';

  constructor(private readonly o: ObserverOptions) {
    this.now = o.now ?? Date.now;
    this.started = this.now();
    const upgrade = o.upgrade.toLowerCase();
    if (upgrade === 'websocket') {
      if (!/^v[45]\.channel\.k8s\.io$/.test(o.subprotocol)) {
        this.stop(`WebSocket subprotocol "${o.subprotocol}" is not recorded (v4.channel.k8s.io and v5.channel.k8s.io are)`);
        return;
      }
      this.fromClientParser = new WebSocketParser(true, (c, b) => this.onChannel(c, b));
      this.fromServerParser = new WebSocketParser(false, (c, b) => this.onChannel(c, b));
    } else if (upgrade.startsWith('spdy/3')) {
      const streams = new Map<number, StreamChannel>();
      const inflater = new SpdyHeaderInflater();
      this.fromClientParser = new SpdyParser({
        control: (type, _flags, payload) => {
          if (type !== SPDY_SYN_STREAM) return;
          if (payload.length < 10) throw new FrameError('short SPDY SYN_STREAM');
          const id = payload.readUInt32BE(0) & 0x7fffffff;
          const kind = inflater.headers(payload.subarray(10))['streamtype'] ?? '';
          if (SPDY_TYPES.has(kind)) streams.set(id, kind as StreamChannel);
        },
        data: (id, bytes) => this.onStream(streams.get(id), bytes),
      });
      this.fromServerParser = new SpdyParser({ control: () => undefined, data: (id, bytes) => this.onStream(streams.get(id), bytes) });
    } else {
      this.stop(`upgrade "${o.upgrade}" is not recorded`);
    }
  }

  fromClient(chunk: Buffer): void {
    this.feed(this.fromClientParser, chunk);
  }

  fromServer(chunk: Buffer): void {
    this.feed(this.fromServerParser, chunk);
  }

  /** What the error channel said, once the session is over. */
  outcome(): ExecOutcome {
    const text = this.errorText.trim();
    if (!text) return {};
    try {
      const status = JSON.parse(text) as { status?: string; message?: string; details?: { causes?: { reason?: string; message?: string }[] } };
      if (status.status === 'Success') return { exitCode: 0 };
      const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
      const code = cause?.message !== undefined ? Number(cause.message) : NaN;
      return { ...(Number.isInteger(code) ? { exitCode: code } : {}), error: status.message ?? text };
    } catch {
      return { error: text };
    }
  }

  /** Records the end of the session. */
  close(): void {
    this.o.record({ t: this.elapsed(), type: 'close' });
  }

  private feed(parser: { push(b: Buffer): void } | undefined, chunk: Buffer): void {
    if (this.stopped || !parser) return;
    try {
      parser.push(chunk);
    } catch (err) {
      this.stop(err instanceof FrameError ? err.message : `observer failed: ${(err as Error).message}`);
    }
  }

  private stop(message: string): void {
    this.stopped = true;
    this.o.record({ t: this.elapsed(), type: 'observer', message: `recording stopped: ${message}` });
  }

  private elapsed(): number {
    return this.now() - this.started;
  }

  private onChannel(channel: number, bytes: Buffer): void {
    if (channel === 255) return; // v5 close: the peer will send no more on a channel
    const kind = WS_CHANNELS[channel];
    if (!kind) throw new FrameError(`unknown channel ${channel}`);
    this.onStream(kind, bytes);
  }

  private onStream(kind: StreamChannel | undefined, bytes: Buffer): void {
    if (!kind || bytes.length === 0) return;
    const t = this.elapsed();
    if (kind === 'error') {
      if (this.errorText.length < MAX_SMALL_CHANNEL) this.errorText += bytes.toString('utf8');
      this.o.record({ t, type: 'error', data: bytes.toString('utf8') });
      return;
    }
    if (kind === 'resize') {
      this.resizeText = (this.resizeText + bytes.toString('utf8')).slice(-MAX_SMALL_CHANNEL);
      // kubectl sends {"Width":W,"Height":H} per message (WebSocket) or one per line (SPDY).
      let nl: number;
      while ((nl = this.resizeText.search(/}\s*/)) >= 0) {
        const doc = this.resizeText.slice(0, nl + 1);
        this.resizeText = this.resizeText.slice(nl + 1).trimStart();
        try {
          const size = JSON.parse(doc) as { Width?: number; Height?: number };
          this.o.record({ t, type: 'resize', width: Number(size.Width ?? 0), height: Number(size.Height ?? 0) });
        } catch {
          this.o.record({ t, type: 'resize', data: doc });
        }
      }
      return;
    }
    for (let off = 0; off < bytes.length; off += MAX_EVENT_BYTES) {
      const piece = bytes.subarray(off, off + MAX_EVENT_BYTES);
      this.o.record(isUtf8(piece) ? { t, type: kind, data: piece.toString('utf8') } : { t, type: kind, b64: piece.toString('base64') });
    }
  }
}
