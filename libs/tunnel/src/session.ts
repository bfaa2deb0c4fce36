import type { Duplex, Readable } from 'node:stream';
import { Mux, type MuxStream } from './mux.js';
import { isInternalPath } from '@keyway/kube';
import { pump, splice } from './pump.js';
import type { KubeBackend, KubeRequestHead, KubeResponse, KubeResponseHead } from './backend.js';
import { H, INFO_PATH, endToEndHeaders, type TunnelInfo } from './protocol.js';

/**
 * The proxy's end of a tunnel: the side that opens streams over the socket the agent
 * dialled (see mux.ts for the framing and why it is not HTTP/2). Each Kubernetes request is
 * one stream; an upgraded connection is one stream carrying raw bytes both ways.
 */
export class TunnelSession implements KubeBackend {
  private readonly mux: Mux;
  readonly closed: Promise<void>;

  constructor(socket: Duplex, opts: { pingIntervalMs?: number } = {}) {
    // A dead peer that never closed its socket is found by ping.
    this.mux = new Mux(socket, { pingIntervalMs: opts.pingIntervalMs ?? 15_000 });
    this.closed = this.mux.closed;
  }

  get isOpen(): boolean {
    return this.mux.isOpen;
  }

  /** Lets the open streams finish, then closes. */
  close(): void {
    this.mux.close();
  }

  destroy(): void {
    this.mux.destroy();
  }

  /**
   * Tells the agent which proxies are live (ids, this one included), so it dials one it
   * lacks at once instead of at its next heartbeat answer.
   */
  announceProxies(proxyIds: string[]): void {
    this.mux.announce({ proxies: proxyIds });
  }

  async info(timeoutMs = 10_000): Promise<TunnelInfo> {
    const stream = this.open({ method: 'GET', path: INFO_PATH }, true);
    const timer = setTimeout(() => stream.destroy(new Error('tunnel info timed out')), timeoutMs);
    try {
      const head = await responseOf(stream);
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.once('end', resolve);
        stream.once('close', () => reject(stream.errored ?? new Error('tunnel stream closed before the end of the info')));
      });
      if (head.status !== 200) throw new Error(`tunnel info answered ${head.status}`);
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as TunnelInfo;
    } finally {
      clearTimeout(timer);
    }
  }

  async request(head: KubeRequestHead, body: Readable | null): Promise<KubeResponse> {
    const stream = this.open(head, body === null);
    if (body) pump(body, stream);
    const res = await responseOf(stream);
    return { head: res, body: stream, takeWhole: () => takeWhole(stream) };
  }

  async upgrade(head: KubeRequestHead, clientHead: Buffer): Promise<{ head: KubeResponseHead; stream: Duplex }> {
    const stream = this.open(head, false);
    if (clientHead.length > 0) stream.write(clientHead);
    const res = await responseOf(stream);
    // Not upgraded: what follows is a response body, and nothing more goes the other way.
    if (res.status !== 101) stream.end();
    return { head: res, stream };
  }

  private open(head: object, ended: boolean): MuxStream {
    if (!this.mux.isOpen) throw new TunnelClosedError();
    const stream = this.mux.open(head, ended);
    if (ended) stream.end();
    return stream;
  }
}

export class TunnelClosedError extends Error {
  constructor() {
    super('tunnel is closed');
  }
}

/**
 * The agent sends a small response's head, body and end in one write, so by the time the
 * head is handled they have all arrived: the body can be handed over whole.
 */
function takeWhole(stream: MuxStream): Buffer | undefined {
  if (!stream.remoteEnded || stream.destroyed || stream.readableFlowing) return undefined;
  const chunks: Buffer[] = [];
  for (let c = stream.read() as Buffer | null; c !== null; c = stream.read() as Buffer | null) chunks.push(c);
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/** The peer's answer: status and end-to-end headers (whatever else it sent is dropped). */
function responseOf(stream: MuxStream): Promise<KubeResponseHead> {
  return new Promise((resolve, reject) => {
    const onClose = () => reject(stream.errored ?? new Error('tunnel stream closed before a response'));
    stream.once('close', onClose);
    stream.once('head', (head: { status?: unknown; headers?: unknown }) => {
      stream.off('close', onClose);
      const headers = head.headers && typeof head.headers === 'object' ? endToEndHeaders(head.headers as Record<string, string | string[]>) : {};
      resolve({ status: typeof head.status === 'number' ? head.status : 502, headers });
    });
  });
}

/**
 * The agent's end: answers the streams the proxy opens on the socket the agent dialled.
 * Requests are handed to `backend` (the forwarder to the API server) with the identity the
 * proxy computed.
 */
export function serveTunnel(
  socket: Duplex,
  opts: {
    backend: KubeBackend;
    info: () => TunnelInfo;
    onError?: (err: Error) => void;
    onProxies?: (proxyIds: string[]) => void;
    /** Ping the proxy this often, so a proxy that vanished without closing is noticed (default 15 s; 0: never). */
    pingIntervalMs?: number;
  },
): {
  /** Resolves when the tunnel is gone, with why if it failed (undefined: the proxy closed it). */
  closed: Promise<Error | undefined>;
  close(): void;
} {
  let reason: Error | undefined;
  const mux = new Mux(socket, {
    pingIntervalMs: opts.pingIntervalMs ?? 15_000,
    onStream: (stream, head, ended) => {
      handleTunnelStream(stream, head, ended, opts).catch((err: unknown) => {
        opts.onError?.(err as Error);
        if (!stream.headSent && !stream.destroyed) {
          stream.respond({ status: 502, headers: { 'content-type': 'application/json', [H.error]: '1' } });
          stream.end(JSON.stringify({ message: (err as Error).message }));
        } else {
          stream.destroy(err as Error);
        }
      });
    },
    // The mux reports an error only when it dies of it: that is the reason the tunnel closed.
    onError: (err) => {
      reason = err;
      opts.onError?.(err);
    },
    onAnnounce: (payload) => {
      const ids = proxiesOf(payload);
      if (ids) opts.onProxies?.(ids);
    },
  });
  return {
    closed: mux.closed.then(() => reason),
    close: () => mux.destroy(),
  };
}

async function handleTunnelStream(stream: MuxStream, raw: unknown, ended: boolean, opts: { backend: KubeBackend; info: () => TunnelInfo }): Promise<void> {
  const head = requestHead(raw);
  // Internal paths are the proxy's own questions (no cluster, no user); a user's request never gets one.
  if (isInternalPath(head.path) && (head.user !== '' || head.cluster !== '' || head.path !== INFO_PATH)) {
    stream.resume();
    stream.respond({ status: 403, headers: { 'content-type': 'application/json', [H.error]: '1' } });
    stream.end(JSON.stringify({ message: 'keyway: internal paths cannot be requested' }));
    return;
  }
  if (head.path === INFO_PATH) {
    stream.resume();
    stream.respond({ status: 200, headers: { 'content-type': 'application/json' } });
    stream.end(JSON.stringify(opts.info()));
    return;
  }
  if (head.upgrade) {
    const { head: res, stream: upstream } = await opts.backend.upgrade(head, Buffer.alloc(0));
    if (res.status === 101) {
      stream.respond(res);
      splice(stream, upstream as Duplex & Readable);
    } else {
      stream.resume();
      stream.respond(res);
      pump(upstream, stream);
    }
    return;
  }
  if (ended) stream.resume(); // no body: let the readable half end
  const res = await opts.backend.request(head, ended ? null : stream);
  const whole = res.takeWhole?.();
  if (stream.destroyed) {
    if (!whole) res.body.destroy();
    return;
  }
  stream.respond(res.head);
  if (whole) {
    // Head, body and end leave in one write.
    stream.end(whole);
    return;
  }
  pump(res.body, stream);
}

/** Bounds on an announcement: far above any real pool, far below what could hurt. */
const MAX_ANNOUNCED_PROXIES = 1_024;
const MAX_PROXY_ID_LENGTH = 256;

/** The proxy ids of an ANNOUNCE payload; undefined for anything malformed (ignored, never fatal). */
export function proxiesOf(payload: Buffer): string[] | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  const ids = (msg as { proxies?: unknown } | null)?.proxies;
  if (!Array.isArray(ids) || ids.length > MAX_ANNOUNCED_PROXIES) return undefined;
  if (!ids.every((id): id is string => typeof id === 'string' && id.length > 0 && id.length <= MAX_PROXY_ID_LENGTH)) return undefined;
  return ids;
}

/** The request head the proxy sent, checked for shape (the proxy is trusted, not its bugs). */
function requestHead(raw: unknown): KubeRequestHead {
  const h = (raw ?? {}) as Partial<Record<keyof KubeRequestHead, unknown>>;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const head: KubeRequestHead = {
    method: str(h.method) || 'GET',
    path: str(h.path) || '/',
    headers: h.headers && typeof h.headers === 'object' ? (h.headers as KubeRequestHead['headers']) : {},
    cluster: str(h.cluster),
    user: str(h.user),
    groups: Array.isArray(h.groups) ? h.groups.filter((g): g is string => typeof g === 'string') : [],
  };
  if (typeof h.upgrade === 'string' && h.upgrade) head.upgrade = h.upgrade;
  if (typeof h.requester === 'string' && h.requester) head.requester = h.requester;
  return head;
}
