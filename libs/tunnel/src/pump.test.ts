import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { pump, splice } from './pump.js';

describe('pump', () => {
  it('carries the bytes and the end', async () => {
    const src = new PassThrough();
    const dst = new PassThrough();
    pump(src, dst);
    src.end('hello');
    const chunks: Buffer[] = [];
    for await (const c of dst) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello');
  });

  it('fails the destination when the source fails', async () => {
    const src = new PassThrough();
    const dst = new PassThrough();
    pump(src, dst);
    src.destroy(new Error('upstream went away'));
    await expect(finished(dst)).rejects.toThrow(/upstream went away/);
  });

  it('fails the destination of a source that failed before it was piped', async () => {
    const src = new PassThrough();
    src.on('error', () => undefined);
    src.write('partial');
    src.destroy(new Error('reset before anyone listened'));
    await new Promise((r) => setImmediate(r)); // its error and close events are over
    const dst = new PassThrough();
    pump(src, dst);
    await expect(finished(dst)).rejects.toThrow(/reset before anyone listened/);
  });

  it('stops a source whose destination is already gone', async () => {
    const src = new PassThrough();
    const dst = new PassThrough();
    dst.destroy();
    pump(src, dst);
    expect(src.destroyed).toBe(true);
  });
});

describe('splice', () => {
  it('closes both sides when one was closed before', () => {
    const a = new PassThrough();
    const b = new PassThrough();
    a.destroy();
    splice(a, b);
    expect(b.destroyed).toBe(true);
  });
});
