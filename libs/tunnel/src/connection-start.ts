import type net from 'node:net';

export interface ConnectionStartOptions<T> {
  /** Looks at all bytes so far: a result once it can tell, undefined to wait for more. May throw. */
  decide(data: Buffer): T | undefined;
  /** What the connection may send before `decide` must have told (beyond it: destroyed). */
  maxBytes: number;
  /** How long the connection may take to send them (then: destroyed). */
  timeoutMs: number;
  /** Called once with the result and the bytes read; the socket is paused and holds nothing back. */
  decided(result: T, data: Buffer): void;
  /** `decide` threw: the socket is destroyed after this. */
  refused?(err: Error): void;
}

/**
 * Reads the start of a connection (a ClientHello, a relay header) until a parser can decide
 * what it is, bounded in bytes and time, so that a slow or endless client holds nothing.
 */
export function readConnectionStart<T>(socket: net.Socket, o: ConnectionStartOptions<T>): void {
  const chunks: Buffer[] = [];
  let length = 0;
  const timer = setTimeout(() => socket.destroy(), o.timeoutMs);
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    length += chunk.length;
    const data = chunks.length === 1 ? chunk : Buffer.concat(chunks, length);
    let result: T | undefined;
    try {
      result = o.decide(data);
    } catch (err) {
      finish();
      o.refused?.(err as Error);
      socket.destroy();
      return;
    }
    if (result === undefined) {
      if (length > o.maxBytes) {
        finish();
        socket.destroy();
      }
      return;
    }
    finish();
    socket.pause();
    o.decided(result, data);
  };
  // Listeners that outlive this read must not keep the bytes alive.
  const finish = () => {
    clearTimeout(timer);
    socket.off('data', onData);
    chunks.length = 0;
  };
  socket.once('close', () => clearTimeout(timer));
  socket.on('data', onData);
}
