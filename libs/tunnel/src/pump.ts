import type { Readable, Writable } from 'node:stream';

/**
 * Pipes src into dst and tears both down if either fails. stream.pipeline would do the
 * same but allocates an AbortController (and an AbortError) per call, which on the
 * per-request path costs more than the forwarding itself.
 */
export function pump(src: Readable, dst: Writable): void {
  const fail = (err?: Error | null) => {
    if (!src.destroyed) src.destroy(err ?? undefined);
    if (!dst.destroyed) dst.destroy(err ?? undefined);
  };
  src.once('error', fail);
  dst.once('error', fail);
  // A destination that goes away early (client disconnected) stops the source.
  const stopSource = () => {
    if (!src.readableEnded) src.destroy();
  };
  dst.once('close', stopSource);
  // Either may be gone already (a tunnel stream reset in the same read as its head): its
  // error and close were emitted before anyone here listened. The errors raised here are
  // emitted later, to the listeners above.
  if (src.destroyed) return fail(src.errored ?? new Error('the source closed before it could be piped'));
  if (dst.destroyed) return stopSource();
  src.pipe(dst);
}

/** Two-way pump for upgraded connections: each side's end reaches the other. */
export function splice(a: Readable & Writable, b: Readable & Writable): void {
  const fail = () => {
    a.destroy();
    b.destroy();
  };
  if (a.destroyed || b.destroyed) return fail();
  a.once('error', fail);
  b.once('error', fail);
  a.once('close', () => b.destroy());
  b.once('close', () => a.destroy());
  a.pipe(b);
  b.pipe(a);
}

/**
 * Pipes a request body into a consumer that may be done with it before it ends: an HTTP
 * client that has its whole answer (the server replied once it had Content-Length bytes)
 * destroys the body it was given. The rest of `src` is then read and dropped instead of
 * destroying `src`, whose other side (a tunnel stream) still carries that answer: tearing it
 * down there turned writes the API server had applied into 503s. A failing source still
 * fails the consumer.
 */
export function pumpBody(src: Readable, dst: Writable): void {
  const onError = (err: Error) => {
    if (!dst.destroyed) dst.destroy(err);
  };
  src.once('error', onError);
  const detach = () => {
    if (src.readableEnded || src.destroyed) return;
    src.unpipe(dst);
    src.resume();
  };
  dst.once('close', detach);
  if (src.destroyed) return onError(src.errored ?? new Error('the source closed before it could be piped'));
  if (dst.destroyed) return detach();
  src.pipe(dst);
}
