import net from 'node:net';
import type tls from 'node:tls';
import { peekClientHello, readConnectionStart, type ClientHelloInfo } from '@keyway/tunnel';

export type Route = 'auth' | 'tunnel' | 'kube' | 'web';

export interface RouterOptions {
  /** Decides the route from SNI and ALPN. */
  classify(hello: ClientHelloInfo): Route;
  /** Raw relay target for the auth route (the auth server terminates its own TLS). */
  authAddr: () => { host: string; port: number };
  /**
   * The (not listening) TLS server of each route the proxy terminates: it gets the
   * connection, does the handshake with that route's settings and emits secureConnection.
   */
  servers: Record<Exclude<Route, 'auth'>, tls.Server>;
  onError?(err: Error, route?: Route): void;
  /** How long a client may take to send its ClientHello. */
  helloTimeoutMs?: number;
  /** Auth relay: how long until the client sends application data (its TLS handshake with auth is done). */
  relayFirstByteMs?: number;
  /** Auth relay: no bytes either way for this long ends it. */
  relayIdleMs?: number;
  /**
   * Auth relay: the bytes sent ahead of the client's, saying who the client is (a PROXY v2
   * header signed by this proxy, see @keyway/tunnel relay-header). Without it auth sees
   * every relayed client as this proxy's address.
   */
  relayHeader?(client: net.Socket): Buffer;
}

/**
 * One TCP listener for everything: reads the ClientHello (without answering it), then
 * either relays the bytes untouched to the auth server, or terminates TLS with the
 * settings of the route (which CA a client certificate must come from, which ALPN).
 */
export function createRouter(o: RouterOptions): net.Server {
  const server = net.createServer({ pauseOnConnect: false, noDelay: true }, (socket) => {
    socket.on('error', (err) => o.onError?.(err));
    readConnectionStart(socket, {
      // peekClientHello bounds the ClientHello itself (64 KiB) and says when it is not TLS.
      decide: (data) => {
        const peek = peekClientHello(data);
        return peek.done ? peek : undefined;
      },
      maxBytes: 64 * 1024,
      timeoutMs: o.helloTimeoutMs ?? 10_000,
      decided: (peek, data) => {
        if (!peek.hello) {
          socket.destroy();
          return;
        }
        const route = o.classify(peek.hello);
        if (route === 'auth') return relay(socket, data, o);
        // Put the ClientHello back: the TLS socket that takes the native handle over feeds
        // what is buffered to the TLS engine first, so the handshake stays native.
        socket.unshift(data);
        o.servers[route].emit('connection', socket);
      },
    });
  });
  return server;
}

function relay(client: net.Socket, first: Buffer, o: RouterOptions): void {
  let header: Buffer | undefined;
  try {
    header = o.relayHeader?.(client);
  } catch (err) {
    o.onError?.(err as Error, 'auth');
    client.destroy();
    return;
  }
  const target = o.authAddr();
  const upstream = net.connect({ host: target.host, port: target.port, noDelay: true });
  upstream.on('error', (err) => {
    o.onError?.(err, 'auth');
    client.destroy();
  });
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
  // The relay cannot see inside the TLS it carries, but it can see record types: a client
  // that has sent no encrypted record in time never finished its handshake, and is dropped
  // here, whatever auth's own TLS settings are (auth closes connections that then stay idle).
  const firstByte = setTimeout(() => {
    o.onError?.(new Error('auth relay: no application data from the client in time'), 'auth');
    client.destroy();
  }, o.relayFirstByteMs ?? 10_000);
  firstByte.unref();
  client.once('close', () => clearTimeout(firstByte));
  const scanner = applicationDataScanner(() => clearTimeout(firstByte));
  scanner(first);
  const onData = (chunk: Buffer) => {
    if (scanner(chunk)) client.off('data', onData);
  };
  client.on('data', onData);
  client.setTimeout(o.relayIdleMs ?? 600_000, () => client.destroy());
  if (header) upstream.write(header);
  upstream.write(first);
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
}

/**
 * Walks TLS record headers in the bytes a client sends; calls `found` at the first
 * application_data record (type 23) and returns true from then on. In TLS 1.3 the client's
 * encrypted handshake messages travel in such records, in TLS 1.2 its first data does:
 * either way the client has finished its handshake.
 */
export function applicationDataScanner(found: () => void, records = 1): (chunk: Buffer) => boolean {
  let skip = 0; // bytes of the current record's body still to pass
  const header: number[] = [];
  let seen = 0;
  let done = false;
  return (chunk) => {
    let p = 0;
    while (!done && p < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - p);
        skip -= n;
        p += n;
        continue;
      }
      header.push(chunk[p] as number);
      p++;
      if (header.length < 5) continue;
      if (header[0] === 23 && ++seen >= records) {
        done = true;
        found();
        break;
      }
      skip = ((header[3] as number) << 8) | (header[4] as number);
      header.length = 0;
    }
    return done;
  };
}
