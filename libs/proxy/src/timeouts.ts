import type http from 'node:http';
import type { ServerHttp2Session } from 'node:http2';
import type tls from 'node:tls';

/** How long the proxy's listeners wait, at each stage, for a client. */
export interface ListenerTimeouts {
  /** TCP connection to a complete ClientHello (the router). */
  clientHelloMs: number;
  /** The TLS handshake, on every TLS route and the dedicated kube listener. */
  handshakeMs: number;
  /** Complete request headers on an authenticated kube connection (slowloris). */
  headersMs: number;
  /** A kube connection without a valid client certificate lives this long at most; also web API headers. */
  unauthenticatedMs: number;
  /** Keep-alive idle of an authenticated kube connection (HTTP/1.1), HTTP/2 session without open streams. */
  idleMs: number;
  /** A whole web API request, headers and body. */
  webRequestMs: number;
  /** Keep-alive idle of a web API connection. */
  webIdleMs: number;
  /** An agent's tunnel answering the proxy's first question (its info) after TLS. */
  tunnelHelloMs: number;
  /** The relay to auth: until the client sends application data (its TLS handshake is done). */
  relayFirstByteMs: number;
  /** The relay to auth: no bytes either way. */
  relayIdleMs: number;
  /** How old this proxy's view of locks may be before strict locking refuses (locking_mode: strict). */
  lockStalenessMs: number;
}

export const DEFAULT_LISTENER_TIMEOUTS: ListenerTimeouts = {
  clientHelloMs: 10_000,
  handshakeMs: 10_000,
  headersMs: 30_000,
  unauthenticatedMs: 10_000,
  // kubectl keeps its connections between commands; 90 s as before.
  idleMs: 90_000,
  webRequestMs: 30_000,
  webIdleMs: 5_000,
  tunnelHelloMs: 10_000,
  relayFirstByteMs: 10_000,
  // Well above auth's keepalive interval (1 m), so only a dead connection is idle this long.
  relayIdleMs: 600_000,
  // The change feed delivers within a second; three missed seconds mean it is not delivering.
  lockStalenessMs: 3_000,
};

/** The config file's `proxy_service.timeouts` (durations in ms), as ListenerTimeouts. */
export function listenerTimeoutsFromConfig(c: Partial<Record<string, number | undefined>> | undefined): Partial<ListenerTimeouts> {
  const names: Record<string, keyof ListenerTimeouts> = {
    client_hello: 'clientHelloMs',
    handshake: 'handshakeMs',
    headers: 'headersMs',
    unauthenticated: 'unauthenticatedMs',
    idle: 'idleMs',
    web_request: 'webRequestMs',
    web_idle: 'webIdleMs',
    tunnel_hello: 'tunnelHelloMs',
    relay_first_byte: 'relayFirstByteMs',
    relay_idle: 'relayIdleMs',
    lock_staleness: 'lockStalenessMs',
  };
  const out: Partial<ListenerTimeouts> = {};
  for (const [name, key] of Object.entries(names)) {
    const value = c?.[name];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * Node checks header and request deadlines on a timer, not per connection: check often
 * enough that a deadline is kept to within a quarter of itself (Node's default is 30 s).
 */
export function checkingInterval(...deadlinesMs: number[]): number {
  return Math.max(50, Math.min(5_000, ...deadlinesMs.map((d) => d / 4)));
}

/** Header, request and keep-alive deadlines for an HTTP/1.1 server (requestMs 0: bodies may take as long as they need). */
export function applyHttp1Timeouts(server: http.Server, o: { headersMs: number; requestMs: number; idleMs: number }): void {
  server.headersTimeout = o.headersMs;
  server.requestTimeout = o.requestMs;
  server.keepAliveTimeout = o.idleMs;
  enforceDeadlines(server);
}

/**
 * Node enforces headersTimeout and requestTimeout from a timer it starts when the server
 * begins listening. The proxy's HTTP servers never listen (the router hands them
 * connections), so without this they would never drop a slowloris. Stop it with close().
 */
export function enforceDeadlines(server: http.Server): void {
  if (!server.listening) server.emit('listening');
}

/**
 * Closes an HTTP/2 session that has had no open stream for `idleMs` (a session's own
 * timeout counts frames, so a quiet watch would trip it; this counts streams).
 */
export function closeIdleHttp2(session: ServerHttp2Session, idleMs: number): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(() => {
      if (open === 0 && !session.destroyed) {
        session.close();
        // A client that ignores GOAWAY and holds the socket: gone a moment later.
        setTimeout(() => session.destroy(), 1_000).unref();
      }
    }, idleMs);
    timer.unref();
  };
  arm();
  session.on('stream', (stream: { once(e: 'close', f: () => void): void }) => {
    open++;
    if (timer) clearTimeout(timer);
    timer = undefined;
    stream.once('close', () => {
      open--;
      if (open === 0 && !session.destroyed) arm();
    });
  });
  session.once('close', () => timer && clearTimeout(timer));
}

/**
 * A kube connection whose client certificate is not valid can only be answered 401: it
 * gets `lifetimeMs`, however it trickles, so anonymous clients cannot hold descriptors.
 */
export function limitUnauthenticated(socket: tls.TLSSocket, lifetimeMs: number): void {
  if (socket.authorized) return;
  const timer = setTimeout(() => socket.destroy(), lifetimeMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * Node's header deadline starts with the first byte of a request: a connection that sends
 * nothing at all after its handshake would be held forever. Drop it after `ms` of silence.
 */
export function dropIfSilent(socket: tls.TLSSocket, ms: number): void {
  const before = socket.bytesRead;
  const timer = setTimeout(() => {
    if (socket.bytesRead === before) socket.destroy();
  }, ms);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
