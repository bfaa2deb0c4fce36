import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { pumpBody } from './pump.js';

describe('pumpBody', () => {
  it('carries the bytes and the end', async () => {
    const src = new PassThrough();
    const dst = new PassThrough();
    pumpBody(src, dst);
    src.end('hello');
    const chunks: Buffer[] = [];
    for await (const c of dst) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello');
  });

  it('keeps the source alive and drains it when the consumer is done early', async () => {
    const src = new PassThrough();
    const dst = new PassThrough();
    pumpBody(src, dst);
    src.write('all the consumer needed');
    await new Promise((r) => setImmediate(r));
    dst.destroy(); // an HTTP client that has its whole answer drops the body
    await new Promise((r) => setImmediate(r));
    expect(src.destroyed).toBe(false);
    // What still comes is read and dropped, and the source ends normally.
    const ended = new Promise<void>((resolve) => src.once('end', resolve));
    src.write(Buffer.alloc(1024 * 1024));
    src.end('late end');
    await ended;
    expect(src.errored).toBeNull();
  });

  it('fails the consumer when the source fails', async () => {
    const src = new PassThrough();
    const dst = new PassThrough();
    dst.on('error', () => undefined);
    pumpBody(src, dst);
    src.destroy(new Error('client went away'));
    await new Promise((r) => setImmediate(r));
    expect(dst.destroyed).toBe(true);
    expect(dst.errored?.message).toBe('client went away');
  });

  it('fails the consumer of a source that failed before it was piped', async () => {
    const src = new PassThrough();
    src.on('error', () => undefined);
    src.destroy(new Error('reset before anyone listened'));
    await new Promise((r) => setImmediate(r));
    const dst = new PassThrough();
    dst.on('error', () => undefined);
    pumpBody(src, dst);
    expect(dst.errored?.message).toBe('reset before anyone listened');
  });
});
