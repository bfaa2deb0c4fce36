import { once } from 'node:events';
import { Duplex, type Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { socketPair } from '@keyway/testing';
import { FRAME_HEADER_BYTES, FrameReader, FrameType, Mux, ProtocolError, STREAM_WINDOW, encodeFrame, type MuxStream } from './mux.js';


const open: { destroy(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.destroy();
});

/** A client mux and a server mux whose streams are answered by `onStream`. */
async function pair(onStream: (s: MuxStream, head: unknown, ended: boolean) => void) {
  const [a, b] = await socketPair();
  const client = new Mux(a);
  const server = new Mux(b, { onStream });
  open.push(client, server);
  return { client, server, a, b };
}

/** Everything the stream yields; rejects with its error, also one it had before this was called. */
function collect(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Frames that arrive in one read (head, data, reset) are handled before the caller's
    // next await resumes: the stream may have failed already.
    if (stream.destroyed && !stream.readableEnded) return reject(stream.errored ?? new Error('stream closed'));
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/** Resolves once `cond` holds, checking after each turn of the event loop. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

describe('FrameReader', () => {
  const frames = [
    encodeFrame(FrameType.headers, 1, 7, JSON.stringify({ a: 'é'.repeat(50) })),
    encodeFrame(FrameType.data, 0, 7, Buffer.alloc(3000, 9)),
    encodeFrame(FrameType.end, 0, 7),
    encodeFrame(FrameType.window, 0, 0xffff_fffe, Buffer.from([0, 1, 0, 0])),
  ];
  const wire = Buffer.concat(frames);

  it('decodes frames whatever the chunk boundaries', () => {
    for (const size of [1, 2, 9, 10, 11, 100, 1000, wire.length]) {
      const got: [number, number, number, string][] = [];
      const reader = new FrameReader((type, flags, id, payload) => got.push([type, flags, id, payload.toString('hex')]));
      for (let off = 0; off < wire.length; off += size) reader.push(wire.subarray(off, off + size));
      expect(got).toEqual(
        frames.map((f) => [f[4], f[5], f.readUInt32BE(6), f.subarray(FRAME_HEADER_BYTES).toString('hex')]),
      );
    }
  });

  it('refuses a frame larger than the limit before buffering it', () => {
    const reader = new FrameReader(() => undefined, 1024);
    const header = encodeFrame(FrameType.data, 0, 1, Buffer.alloc(2048)).subarray(0, FRAME_HEADER_BYTES);
    expect(() => reader.push(header)).toThrow(ProtocolError);
    const split = new FrameReader(() => undefined, 1024);
    split.push(header.subarray(0, 3));
    expect(() => split.push(header.subarray(3))).toThrow(ProtocolError);
  });
});

describe('Mux', () => {
  it('carries a request and its response, with bodies both ways', async () => {
    const { client, server } = await pair((stream, head) => {
      void collect(stream).then((body) => {
        stream.respond({ echo: head, got: body.toString() });
        stream.end(`reply to ${body.toString()}`);
      });
    });
    const stream = client.open({ path: '/x' }, false);
    const head = once(stream, 'head');
    stream.end('hello');
    expect((await head)[0]).toEqual({ echo: { path: '/x' }, got: 'hello' });
    expect((await collect(stream)).toString()).toBe('reply to hello');
    await until(() => client.streamCount === 0 && server.streamCount === 0);
  });

  it('sends a bodyless request at once on a quiet tunnel, and coalesces writes on a busy one', async () => {
    const writes: Buffer[] = [];
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        writes.push(chunk);
        cb();
      },
    });
    const mux = new Mux(socket, { busyIntervalMs: 60_000 });
    mux.open({ path: '/first' }, true);
    expect(writes).toHaveLength(1); // before open() returned
    // Just written: the tunnel counts as busy, so the next requests wait for the end of the turn and share a write.
    mux.open({ path: '/second' }, true);
    mux.open({ path: '/third' }, true);
    expect(writes).toHaveLength(1);
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(2);
    const frames: string[] = [];
    new FrameReader((_t, _f, _id, payload) => frames.push((JSON.parse(payload.toString()) as { path: string }).path)).push(Buffer.concat(writes));
    expect(frames).toEqual(['/first', '/second', '/third']);
    mux.destroy();
  });

  it('tells the server a stream has no body', async () => {
    const seen: boolean[] = [];
    const { client } = await pair((stream, _head, ended) => {
      seen.push(ended);
      stream.resume();
      stream.respond({}, true);
    });
    const stream = client.open({}, true);
    stream.end();
    await once(stream, 'head');
    await collect(stream);
    expect(seen).toEqual([true]);
  });

  it('keeps many concurrent streams apart', async () => {
    const { client, server } = await pair((stream) => {
      void collect(stream).then((body) => {
        stream.respond({});
        // Answer in pieces, interleaved with the other streams' answers.
        const text = body.toString();
        stream.write(text.slice(0, 3));
        setImmediate(() => stream.end(text.slice(3)));
      });
    });
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const stream = client.open({ i }, false);
        stream.end(`stream-${i}`.repeat(i + 1));
        await once(stream, 'head');
        return (await collect(stream)).toString();
      }),
    );
    expect(results).toEqual(Array.from({ length: 200 }, (_, i) => `stream-${i}`.repeat(i + 1)));
    await until(() => client.streamCount === 0 && server.streamCount === 0);
  });

  it('stops a sender at the window while the receiver does not read, then delivers everything', async () => {
    let serverStream: MuxStream | undefined;
    const { client } = await pair((stream) => {
      serverStream = stream;
      stream.pause();
      stream.respond({});
    });
    const stream = client.open({}, false);
    const total = 4 * STREAM_WINDOW;
    const payload = Buffer.alloc(total);
    for (let i = 0; i < total; i++) payload[i] = i % 251;
    let written = 0;
    const writing = (async () => {
      for (let off = 0; off < total; off += 64 * 1024) {
        if (!stream.write(payload.subarray(off, off + 64 * 1024))) await once(stream, 'drain');
        written = off + 64 * 1024;
      }
      stream.end();
    })();
    await until(() => (serverStream?.readableLength ?? 0) >= STREAM_WINDOW);
    // Several turns later the receiver still holds one window and the sender is held back.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(serverStream?.readableLength).toBe(STREAM_WINDOW);
    expect(written).toBeLessThan(total);
    const received = collect(serverStream as MuxStream);
    serverStream?.resume();
    await writing;
    expect((await received).equals(payload)).toBe(true);
  });

  it('resets a stream the receiver gives up on, and the sender sees it', async () => {
    const { client, server } = await pair((stream) => {
      stream.respond({});
      stream.write('partial');
      stream.on('data', () => undefined);
    });
    const stream = client.open({}, false);
    await once(stream, 'head');
    await once(stream, 'data');
    stream.destroy();
    await until(() => client.streamCount === 0 && server.streamCount === 0);
  });

  it('fails the receiver of a stream the sender resets', async () => {
    const { client } = await pair((stream) => {
      stream.respond({});
      stream.write('partial');
      setImmediate(() => stream.destroy(new Error('upstream went away')));
    });
    const stream = client.open({}, true);
    stream.end();
    await once(stream, 'head');
    await expect(collect(stream)).rejects.toThrow(/reset by the other end: upstream went away/);
  });

  it('fails open streams when the connection drops', async () => {
    const { client, b } = await pair(() => undefined);
    const stream = client.open({}, false);
    const failed = new Promise((r) => stream.once('close', r));
    b.destroy();
    await failed;
    expect(stream.errored?.message).toMatch(/tunnel closed/);
    await client.closed;
    expect(client.isOpen).toBe(false);
    expect(() => client.open({}, true)).toThrow(/closed/);
  });

  it('closes gracefully once open streams are done', async () => {
    const { client, server } = await pair((stream) => {
      stream.resume();
      stream.respond({}, true);
    });
    const stream = client.open({}, true);
    stream.end();
    client.close();
    expect(client.isOpen).toBe(false);
    await once(stream, 'head');
    await collect(stream);
    await Promise.all([client.closed, server.closed]);
  });

  it('closes the tunnel on a frame it does not understand', async () => {
    const { server, a } = await pair(() => undefined);
    a.write(encodeFrame(99, 0, 1));
    await server.closed;
    expect(server.isOpen).toBe(false);
  });

  it('closes the tunnel when the peer sends beyond the window', async () => {
    const { server, a } = await pair((stream) => stream.pause());
    a.write(encodeFrame(FrameType.headers, 0, 1, '{}'));
    for (let sent = 0; sent <= STREAM_WINDOW; sent += 64 * 1024) a.write(encodeFrame(FrameType.data, 0, 1, Buffer.alloc(64 * 1024)));
    await server.closed;
  });

  it('answers pings, and gives up on a peer that does not', async () => {
    const [a, b] = await socketPair();
    const client = new Mux(a, { pingIntervalMs: 20 });
    open.push(client, b);
    const pings: number[] = [];
    b.on('data', (d: Buffer) => pings.push(d[4] as number));
    await client.closed;
    expect(pings[0]).toBe(FrameType.ping);

    const { a: raw, server } = await pair(() => undefined);
    const pong = once(raw, 'data');
    raw.write(encodeFrame(FrameType.ping, 0, 0, Buffer.from('12345678')));
    const [reply] = (await pong) as [Buffer];
    expect(reply[4]).toBe(FrameType.pong);
    expect(reply.subarray(FRAME_HEADER_BYTES).toString()).toBe('12345678');
    expect(server.isOpen).toBe(true);
  });
});
