/**
 * The server side of `pods/portforward`, connecting each forwarded connection to a TCP
 * address the test chose for (pod, port).
 *
 * SPDY (`portforward.k8s.io`): per forwarded connection the client opens an error stream and
 * a data stream, both with `port` and the same `requestID` header. Bytes flow on the data
 * stream both ways (FIN = half-close); when the target connection is done we FIN the data
 * stream and then the error stream (kubectl waits for the error stream's EOF, and reads any
 * text on it as the failure). The same SPDY session can be tunnelled through a WebSocket
 * (`SPDY/3.1+portforward.k8s.io`, kubectl >= 1.31's default): each binary message carries
 * a slice of the SPDY byte stream.
 *
 * Legacy WebSocket (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io`, or no subprotocol), as
 * browser clients use it: `?ports=A,B`; channel 2i is port i's data, 2i+1 its error; the
 * server's first message on each channel is the port as uint16 little endian; one TCP
 * connection per port for the life of the WebSocket.
 */
import { connect, type Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { channelCodec } from './remotecommand.js';
import type { SpdySession, SpdyStream } from './spdy.js';

export interface TcpTarget {
  host?: string;
  port: number;
}

/** Where (pod port) goes, or undefined when nothing listens there. */
export type TargetResolver = (port: number) => TcpTarget | undefined;

export const PORT_FORWARD_SPDY_PROTOCOL = 'portforward.k8s.io';
export const PORT_FORWARD_TUNNEL_PROTOCOLS = ['SPDY/3.1+portforward.k8s.io', 'v2.portforward.k8s.io'] as const;
export const PORT_FORWARD_WS_PROTOCOLS = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'portforward.k8s.io'] as const;

export interface PortForwardContext {
  namespace: string;
  pod: string;
  uid: string;
  resolve: TargetResolver;
  /** Called for every forwarded connection (for tests that count them). */
  onConnection?: (port: number) => void;
}

function dial(ctx: PortForwardContext, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const target = ctx.resolve(port);
    if (!target) {
      reject(new Error(`failed to connect to localhost:${port} inside namespace "${ctx.namespace}", IPv4: dial tcp4 127.0.0.1:${port}: connect: connection refused IPv6 dial tcp6: address localhost: no suitable address`));
      return;
    }
    const sock = connect({ host: target.host ?? '127.0.0.1', port: target.port, allowHalfOpen: true });
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

function forwardError(ctx: PortForwardContext, port: number, err: Error): string {
  return `error forwarding port ${port} to pod ${ctx.pod}, uid ${ctx.uid}: ${err.message}`;
}

/** Serves port-forward streams on a SPDY session (plain, or tunnelled through a WebSocket). */
export function serveSpdyPortForward(session: SpdySession, ctx: PortForwardContext): void {
  const pairs = new Map<string, { error?: SpdyStream; data?: SpdyStream }>();
  session.on('stream', (stream: SpdyStream) => {
    stream.reply();
    const requestId = stream.header('requestid') ?? '';
    const type = stream.header('streamtype');
    const pair = pairs.get(requestId) ?? {};
    pairs.set(requestId, pair);
    if (type === 'error') {
      pair.error = stream;
      stream.resume(); // the client writes nothing here (it half-closes at once)
    } else if (type === 'data') pair.data = stream;
    else {
      stream.reset();
      return;
    }
    if (pair.error && pair.data) {
      pairs.delete(requestId);
      void forward(ctx, Number(stream.header('port')), pair.data, pair.error);
    }
  });
}

async function forward(ctx: PortForwardContext, port: number, data: SpdyStream, error: SpdyStream): Promise<void> {
  ctx.onConnection?.(port);
  let sock: Socket;
  try {
    sock = await dial(ctx, port);
  } catch (err) {
    if (!error.destroyed) error.end(forwardError(ctx, port, err as Error));
    if (!data.destroyed) data.end();
    return;
  }
  // client -> target (FIN becomes a half-close)
  data.pipe(sock);
  // target -> client
  sock.pipe(data);
  sock.on('error', () => undefined);
  data.on('close', () => {
    // Reset by the client (kubectl resets both streams when it is done), or the session went:
    // drop the target. After a clean close both directions have already ended.
    if (data.remoteReset || data.session.closed) sock.destroy();
  });
  sock.on('error', (err) => {
    if (!error.destroyed && !error.writableEnded) error.end(forwardError(ctx, port, err));
  });
  sock.on('close', () => {
    if (!data.destroyed && !data.writableEnded) data.end();
    if (!error.destroyed && !error.writableEnded) error.end();
  });
}

/** Legacy channel-based WebSocket port-forward, one target connection per requested port. */
export function serveWebSocketPortForward(ws: WebSocket, protocol: string, ports: number[], ctx: PortForwardContext): void {
  const codec = channelCodec(protocol);
  const binary = !codec.base64;
  const send = (channel: number, data: Buffer) => {
    if (ws.readyState === ws.OPEN && data.length > 0) ws.send(codec.encode(channel, data), { binary });
  };
  const socks = new Map<number, Socket>();
  const pendingWrites = new Map<number, Buffer[]>();
  let open = ports.length;
  const done = () => {
    if (--open === 0 && ws.readyState === ws.OPEN) ws.close(1000);
  };
  ports.forEach((port, i) => {
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16LE(port);
    send(2 * i, prefix);
    send(2 * i + 1, prefix);
    pendingWrites.set(i, []);
    ctx.onConnection?.(port);
    dial(ctx, port).then(
      (sock) => {
        socks.set(i, sock);
        for (const b of pendingWrites.get(i) ?? []) sock.write(b);
        pendingWrites.delete(i);
        sock.on('data', (d: Buffer) => send(2 * i, d));
        sock.on('end', () => sock.end());
        sock.on('error', (err) => send(2 * i + 1, Buffer.from(forwardError(ctx, port, err))));
        sock.on('close', done);
      },
      (err: Error) => {
        send(2 * i + 1, Buffer.from(forwardError(ctx, port, err)));
        done();
      },
    );
  });
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    const msg = codec.decode(raw, isBinary);
    if (!msg || msg.channel % 2 !== 0 || msg.data.length === 0) return;
    const i = msg.channel / 2;
    const sock = socks.get(i);
    if (sock) sock.write(msg.data);
    else pendingWrites.get(i)?.push(Buffer.from(msg.data));
  });
  ws.on('close', () => {
    for (const s of socks.values()) s.destroy();
  });
}
