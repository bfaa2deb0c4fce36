import type { Duplex } from 'node:stream';
import { FrameCursor, LastWords, type SessionProtocol } from './last-words.js';

/** How long an ending session may take to reach a frame boundary and flush its last words. */
const END_GRACE_MS = 500;

/**
 * Two-way pump for an upgraded session (exec, attach, port-forward) that can be ended by the
 * proxy: `end(message)` stops forwarding the server's bytes at the next frame boundary, writes
 * the session's last words (see LastWords), closes the client's side and drops the upstream.
 * Either side's close or error ends both, as `splice` does.
 */
export function revocableSplice(client: Duplex, upstream: Duplex, protocol: SessionProtocol, clientHead: Buffer): { end(message: string): void } {
  const words = new LastWords(protocol);
  const cursor = words.framing ? new FrameCursor(words.framing) : undefined;
  let ending: string | undefined;
  let finished = false;
  const destroyBoth = () => {
    client.destroy();
    upstream.destroy();
  };
  if (client.destroyed || upstream.destroyed) {
    destroyBoth();
    return { end: () => undefined };
  }
  client.once('error', destroyBoth);
  upstream.once('error', destroyBoth);
  client.once('close', () => upstream.destroy());
  upstream.once('close', () => {
    if (ending === undefined) client.destroy();
  });
  // The server's end reaches the client as pipe would pass it on.
  upstream.once('end', () => {
    if (ending === undefined && !finished) client.end();
  });
  if (clientHead.length > 0) words.fromClient(clientHead);
  client.on('data', (b: Buffer) => words.fromClient(b));
  client.pipe(upstream);

  const finish = () => {
    if (finished) return;
    finished = true;
    upstream.pause();
    client.unpipe(upstream);
    try {
      const last = words.frames(ending ?? '');
      client.end(last.length > 0 ? last : undefined);
    } catch {
      client.destroy();
    }
    upstream.destroy();
    // A client that does not close after its last words is dropped.
    setTimeout(() => client.destroy(), END_GRACE_MS).unref();
  };

  upstream.on('data', (chunk: Buffer) => {
    if (finished) return;
    let part = chunk;
    try {
      if (ending !== undefined && cursor) {
        const upTo = cursor.advance(chunk, true);
        part = chunk.subarray(0, upTo);
        if (part.length > 0) client.write(part);
        if (cursor.atBoundary) finish();
        return;
      }
      cursor?.advance(chunk);
    } catch {
      return destroyBoth();
    }
    if (!client.write(part)) {
      upstream.pause();
      client.once('drain', () => {
        if (!finished) upstream.resume();
      });
    }
  });

  return {
    end(message: string) {
      if (ending !== undefined || finished) return;
      ending = message;
      if (!cursor || cursor.atBoundary) return finish();
      // Mid-frame: let the rest of the frame through first, within a bound.
      upstream.resume();
      setTimeout(() => {
        if (!finished) destroyBoth();
      }, END_GRACE_MS).unref();
    },
  };
}
