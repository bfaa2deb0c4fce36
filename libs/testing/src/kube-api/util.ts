import type { Writable } from 'node:stream';

/** Resolves when w can take more data, or is gone (or signal aborts); removes its listeners. */
export function drained(w: Writable, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      w.off('error', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
    w.on('error', done);
    signal?.addEventListener('abort', done, { once: true });
  });
}
