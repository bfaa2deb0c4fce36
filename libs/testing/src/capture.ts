import { PassThrough } from 'node:stream';

/** A writable stream that remembers what was written, for checking CLI output. */
export function captureStream(): PassThrough & { text(): string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return Object.assign(stream, { text: () => Buffer.concat(chunks).toString('utf8') });
}
