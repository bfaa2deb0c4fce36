import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Duplex, Readable } from 'node:stream';
import { pump, splice } from './pump.js';
import type { KubeBackend, KubeRequestHead, KubeResponseHead } from './backend.js';
import { H, INFO_PATH, endToEndHeaders, type TunnelInfo } from './protocol.js';

/** Flow-control windows large enough that one stream can fill a fast link. */
const STREAM_WINDOW = 8 * 1024 * 1024;
const SESSION_WINDOW = 32 * 1024 * 1024;
const SETTINGS = { initialWindowSize: STREAM_WINDOW, maxConcurrentStreams: 10_000, enablePush: false };

/**
 * The proxy's end of a tunnel: an HTTP/2 client session over the socket the agent dialled.
 * Each Kubernetes request is one stream; an upgraded connection is one stream carrying raw
 * bytes both ways.
 */
export class TunnelSession implements KubeBackend {
  private readonly session: ClientHttp2Session;
  private closedResolve!: () => void;
  readonly closed: Promise<void> = new Promise((r) => (this.closedResolve = r));

  constructor(socket: Duplex, opts: { pingIntervalMs?: number } = {}) {
    this.session = http2.connect('http://tunnel', { createConnection: () => socket, settings: SETTINGS });
    this.session.on('connect', () => this.session.setLocalWindowSize(SESSION_WINDOW));
    this.session.on('error', () => undefined); // surfaced through 'close' and failed streams
    this.session.on('close', () => this.closedResolve());
    socket.on('close', () => this.session.destroy());
    // A dead peer that never closed its socket is found by ping.
    const interval = opts.pingIntervalMs ?? 15_000;
    const timer = setInterval(() => {
      if (this.session.closed || this.session.destroyed) return clearInterval(timer);
      const deadline = setTimeout(() => this.session.destroy(new Error('tunnel ping timed out')), interval);
      this.session.ping((err) => {
        clearTimeout(deadline);
        if (err) this.session.destroy(err);
      });
    }, interval).unref();
    void this.closed.then(() => clearInterval(timer));
  }

  get isOpen(): boolean {
    return !this.session.closed && !this.session.destroyed;
  }

  close(): void {
    this.session.close();
  }

  destroy(): void {
    this.session.destroy();
  }

  async info(timeoutMs = 10_000): Promise<TunnelInfo> {
    const { head, body } = await this.send({ ':method': 'GET', ':path': INFO_PATH }, null, timeoutMs);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    if (head.status !== 200) throw new Error(`tunnel info answered ${head.status}`);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as TunnelInfo;
  }

  request(head: KubeRequestHead, body: Readable | null) {
    return this.send(requestHeaders(head), body);
  }

  async upgrade(head: KubeRequestHead, clientHead: Buffer) {
    const stream = this.open(requestHeaders(head), false);
    if (clientHead.length > 0) stream.write(clientHead);
    const res = await responseOf(stream);
    const upgraded = res[H.upgradeStatus] === '101';
    return { head: { status: upgraded ? 101 : Number(res[':status']), headers: responseHeaders(res) }, stream: stream as Duplex };
  }

  private async send(headers: http2.OutgoingHttpHeaders, body: Readable | null, timeoutMs?: number) {
    const stream = this.open(headers, body === null);
    if (body) pump(body, stream);
    if (timeoutMs) stream.setTimeout(timeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    const res = await responseOf(stream);
    return { head: { status: Number(res[':status']), headers: responseHeaders(res) } as KubeResponseHead, body: stream as Readable };
  }

  private open(headers: http2.OutgoingHttpHeaders, endStream: boolean): ClientHttp2Stream {
    if (!this.isOpen) throw new TunnelClosedError();
    return this.session.request(headers, { endStream });
  }
}

export class TunnelClosedError extends Error {
  constructor() {
    super('tunnel is closed');
  }
}

function requestHeaders(head: KubeRequestHead): http2.OutgoingHttpHeaders {
  const headers: http2.OutgoingHttpHeaders = { ...head.headers };
  // An upgraded stream carries the raw connection, not a body the client declared: a
  // content-length (SPDY's POST sends 0) would make HTTP/2 refuse the stream's data.
  if (head.upgrade) delete headers['content-length'];
  return {
    ...headers,
    ':method': head.method,
    ':path': head.path,
    [H.cluster]: head.cluster,
    [H.user]: head.user,
    [H.groups]: JSON.stringify(head.groups),
    ...(head.upgrade ? { [H.upgrade]: head.upgrade } : {}),
  };
}

function responseOf(stream: ClientHttp2Stream): Promise<IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    const onClose = () => reject(new Error(`tunnel stream closed before a response (code ${stream.rstCode ?? 'none'})`));
    stream.once('error', onError);
    stream.once('close', onClose);
    stream.once('response', (headers) => {
      stream.off('error', onError);
      stream.off('close', onClose);
      stream.on('error', () => undefined); // later errors end the body stream for its reader
      resolve(headers);
    });
  });
}

function responseHeaders(res: IncomingHttpHeaders) {
  return endToEndHeaders(res as Record<string, string | string[] | undefined>);
}

/**
 * The agent's end: serves HTTP/2 on the socket it dialled to a proxy. Requests are handed
 * to `backend` (the forwarder to the API server) with the identity the proxy computed.
 */
export function serveTunnel(socket: Duplex, opts: { backend: KubeBackend; info: () => TunnelInfo; onError?: (err: Error) => void }): {
  closed: Promise<void>;
  close(): void;
} {
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const server = http2.createServer({ settings: SETTINGS });
  server.on('session', (session) => {
    session.on('connect', () => session.setLocalWindowSize(SESSION_WINDOW));
    session.on('error', (err) => opts.onError?.(err));
    session.on('close', () => resolveClosed());
  });
  server.on('stream', (stream, headers) => {
    handleTunnelStream(stream, headers, opts).catch((err: unknown) => {
      opts.onError?.(err as Error);
      if (!stream.headersSent && !stream.destroyed) {
        stream.respond({ ':status': 502, 'content-type': 'application/json', [H.error]: '1' });
        stream.end(JSON.stringify({ message: (err as Error).message }));
      } else {
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
  });
  socket.on('close', () => resolveClosed());
  server.emit('connection', socket);
  return {
    closed,
    close: () => socket.destroy(),
  };
}

async function handleTunnelStream(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  opts: { backend: KubeBackend; info: () => TunnelInfo },
): Promise<void> {
  const path = String(headers[':path'] ?? '/');
  if (path === INFO_PATH) {
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    stream.end(JSON.stringify(opts.info()));
    return;
  }
  const head: KubeRequestHead = {
    method: String(headers[':method'] ?? 'GET'),
    path,
    headers: endToEndHeaders(headers as Record<string, string | string[] | undefined>),
    cluster: String(headers[H.cluster] ?? ''),
    user: String(headers[H.user] ?? ''),
    groups: JSON.parse(String(headers[H.groups] ?? '[]')) as string[],
    ...(headers[H.upgrade] ? { upgrade: String(headers[H.upgrade]) } : {}),
  };
  if (head.upgrade) {
    const { head: res, stream: upstream } = await opts.backend.upgrade(head, Buffer.alloc(0));
    if (res.status === 101) {
      stream.respond({ ...res.headers, ':status': 200, [H.upgradeStatus]: '101' });
      splice(stream, upstream);
    } else {
      stream.respond({ ...res.headers, ':status': res.status });
      pump(upstream, stream);
    }
    return;
  }
  const hasBody = !(stream.readableEnded || (stream.endAfterHeaders ?? false));
  const { head: res, body } = await opts.backend.request(head, hasBody ? stream : null);
  if (stream.destroyed) {
    body.destroy();
    return;
  }
  stream.respond({ ...res.headers, ':status': res.status });
  pump(body, stream);
}
