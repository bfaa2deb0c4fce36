import net from 'node:net';
import { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { peekClientHello, type ClientHelloInfo } from '@keyway/tunnel';

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
}

/**
 * One TCP listener for everything: reads the ClientHello (without answering it), then
 * either relays the bytes untouched to the auth server, or terminates TLS with the
 * settings of the route (which CA a client certificate must come from, which ALPN).
 */
export function createRouter(o: RouterOptions): net.Server {
  const server = net.createServer({ pauseOnConnect: false, noDelay: true }, (socket) => {
    socket.on('error', (err) => o.onError?.(err));
    const chunks: Buffer[] = [];
    let length = 0;
    const timer = setTimeout(() => socket.destroy(), o.helloTimeoutMs ?? 10_000);
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      const data = chunks.length === 1 ? chunk : Buffer.concat(chunks, length);
      const peek = peekClientHello(data);
      if (!peek.done) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      if (!peek.hello) {
        socket.destroy();
        return;
      }
      const route = o.classify(peek.hello);
      if (route === 'auth') return relay(socket, data, o);
      // A TLSSocket over a net.Socket reads the native handle and would miss the bytes
      // already read; over a JS stream it reads what the stream gives, prefix first.
      o.servers[route].emit('connection', replaying(socket, data));
    };
    socket.on('data', onData);
  });
  return server;
}

/** The socket as a stream that first yields `prefix` again. */
function replaying(socket: net.Socket, prefix: Buffer): Duplex {
  let pending: Buffer | null = prefix;
  const stream = new Duplex({
    read() {
      if (pending) {
        const first = pending;
        pending = null;
        this.push(first);
      }
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('close', () => stream.destroy());
  socket.on('error', (err) => stream.destroy(err));
  Object.assign(stream, { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort });
  return stream;
}

function relay(client: net.Socket, first: Buffer, o: RouterOptions): void {
  const target = o.authAddr();
  const upstream = net.connect({ host: target.host, port: target.port, noDelay: true });
  upstream.on('error', (err) => {
    o.onError?.(err, 'auth');
    client.destroy();
  });
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
  upstream.write(first);
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
}
