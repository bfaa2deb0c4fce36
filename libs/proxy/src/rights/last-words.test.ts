import net from 'node:net';
import { constants as zc, createDeflate } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SpdyParser, WebSocketParser, spdyDictionary } from '../recording/frames.js';
import { FrameCursor, LastWords } from './last-words.js';
import { revocableSplice } from './revocable-splice.js';

function wsFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? [0x80 | opcode, len] : len < 65536 ? [0x80 | opcode, 126, len >> 8, len & 0xff] : [0x80 | opcode, 127, 0, 0, 0, 0, (len >>> 24) & 0xff, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff];
  return Buffer.concat([Buffer.from(head), payload]);
}

function spdyData(id: number, payload: Buffer, fin = false): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(id & 0x7fffffff, 0);
  h.writeUInt32BE(((fin ? 1 : 0) << 24) | payload.length, 4);
  return Buffer.concat([h, payload]);
}

/** Client SYN_STREAMs opening the given stream types, header blocks in one zlib stream. */
async function synStreams(types: [number, string][]): Promise<Buffer> {
  const deflate = createDeflate({ dictionary: spdyDictionary() });
  const frames: Buffer[] = [];
  for (const [id, type] of types) {
    const entries: [string, string][] = [['streamtype', type]];
    const parts: Buffer[] = [u32(entries.length)];
    for (const [k, v] of entries) parts.push(u32(k.length), Buffer.from(k), u32(v.length), Buffer.from(v));
    deflate.write(Buffer.concat(parts));
    const block = await new Promise<Buffer>((resolve) => deflate.flush(zc.Z_SYNC_FLUSH, () => resolve(deflate.read() as Buffer)));
    const payload = Buffer.concat([u32(id), Buffer.alloc(6), block]);
    const h = Buffer.alloc(8);
    h.writeUInt16BE(0x8003, 0);
    h.writeUInt16BE(1, 2);
    h.writeUInt32BE(payload.length, 4);
    frames.push(h, payload);
  }
  deflate.close();
  return Buffer.concat(frames);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** What a client reading the server's WebSocket frames sees, per channel. */
function readWebSocket(wire: Buffer): { channels: Map<number, string>; closed: boolean } {
  const channels = new Map<number, string>();
  let closed = false;
  new WebSocketParser(
    false,
    (c, b) => channels.set(c, (channels.get(c) ?? '') + b.toString()),
    () => (closed = true),
  ).push(wire);
  return { channels, closed };
}

const MESSAGE = 'keyway: session closed: user "jimbo" is locked: incident 42';

describe('FrameCursor', () => {
  // Frames of any size, cut into pieces anywhere: the cursor stops exactly at each frame end.
  const frames = fc.array(fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 126, max: 70_000 })), { minLength: 1, maxLength: 8 });
  const cuts = fc.array(fc.integer({ min: 1, max: 5_000 }), { minLength: 1, maxLength: 40 });

  for (const framing of ['websocket', 'spdy'] as const) {
    it(`finds every frame boundary of ${framing}, however the bytes are split`, () => {
      fc.assert(
        fc.property(frames, cuts, (sizes, pieces) => {
          const encoded = sizes.map((n, i) => (framing === 'websocket' ? wsFrame(2, Buffer.alloc(n, i)) : spdyData(1 + 2 * i, Buffer.alloc(n, i))));
          const wire = Buffer.concat(encoded);
          const boundaries = new Set<number>();
          let at = 0;
          for (const e of encoded) boundaries.add((at += e.length));
          const cursor = new FrameCursor(framing);
          const seen: number[] = [];
          let pos = 0;
          let cut = 0;
          while (pos < wire.length) {
            const end = Math.min(wire.length, pos + (pieces[cut++ % pieces.length] as number));
            let chunk = wire.subarray(pos, end);
            while (chunk.length > 0) {
              const step = cursor.advance(chunk, true);
              if (step === 0) {
                // At a boundary with more bytes to come: step past it by one byte.
                const one = cursor.advance(chunk.subarray(0, 1));
                chunk = chunk.subarray(one);
                pos += one;
                continue;
              }
              pos += step;
              chunk = chunk.subarray(step);
              if (cursor.atBoundary) seen.push(pos);
            }
          }
          expect(seen).toEqual([...boundaries]);
        }),
        { seed: 42, numRuns: 150 },
      );
    });
  }
});

describe('LastWords', () => {
  it('WebSocket v5: a line on stderr, a Failure Status on the error channel, then close', () => {
    const words = new LastWords({ upgrade: 'websocket', subprotocol: 'v5.channel.k8s.io', command: true, tty: false });
    const { channels, closed } = readWebSocket(words.frames(MESSAGE));
    expect(channels.get(2)).toBe(`${MESSAGE}\n`);
    expect(JSON.parse(channels.get(3) as string)).toMatchObject({ kind: 'Status', status: 'Failure', message: 'keyway: session closed' });
    expect(channels.has(1)).toBe(false);
    expect(closed).toBe(true);
  });

  it('WebSocket with a terminal: the line goes to stdout (a tty has no stderr)', () => {
    const words = new LastWords({ upgrade: 'websocket', subprotocol: 'v4.channel.k8s.io', command: true, tty: true });
    expect(readWebSocket(words.frames(MESSAGE)).channels.get(1)).toBe(`\r\n${MESSAGE}\r\n`);
  });

  it('WebSocket base64 channels: text frames with the channel digit', () => {
    const words = new LastWords({ upgrade: 'websocket', subprotocol: 'v4.base64.channel.k8s.io', command: true, tty: false });
    const frames: string[] = [];
    // Text frames: the payload is "<digit><base64>".
    new WebSocketParser(false, (c, b) => frames.push(String.fromCharCode(c) + b.toString())).push(words.frames(MESSAGE));
    const stderr = frames.find((f) => f.startsWith('2'));
    expect(Buffer.from((stderr as string).slice(1), 'base64').toString()).toBe(`${MESSAGE}\n`);
  });

  it('port-forward over WebSocket: only a close (there is no channel to write on)', () => {
    const words = new LastWords({ upgrade: 'websocket', subprotocol: 'SPDY/3.1+portforward.k8s.io', command: false, tty: false });
    const { channels, closed } = readWebSocket(words.frames(MESSAGE));
    expect(channels.size).toBe(0);
    expect(closed).toBe(true);
  });

  it('SPDY/3.1: DATA on the stderr stream the client opened, the Status on its error stream with FIN', async () => {
    const words = new LastWords({ upgrade: 'SPDY/3.1', subprotocol: 'v4.channel.k8s.io', command: true, tty: false });
    const syn = await synStreams([
      [1, 'error'],
      [3, 'stdin'],
      [5, 'stdout'],
      [7, 'stderr'],
    ]);
    // Split anywhere: stream ids are learnt from the client's frames as they pass.
    for (let i = 0; i < syn.length; i += 7) words.fromClient(syn.subarray(i, i + 7));
    const got = new Map<number, string>();
    const fins: number[] = [];
    new SpdyParser({
      control: () => undefined,
      data: (id, b, fin) => {
        got.set(id, (got.get(id) ?? '') + b.toString());
        if (fin) fins.push(id);
      },
    }).push(words.frames(MESSAGE));
    expect(got.get(7)).toBe(`${MESSAGE}\n`);
    expect(JSON.parse(got.get(1) as string)).toMatchObject({ status: 'Failure', message: 'keyway: session closed' });
    expect(fins).toEqual([1]);
    expect(got.has(5)).toBe(false);
  });
});

describe('revocableSplice', () => {
  /** A connected pair of loopback sockets. */
  async function pair(): Promise<[net.Socket, net.Socket, () => void]> {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const a = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const b = await accepted;
    return [a, b, () => server.close()];
  }

  it('ended mid-frame, lets the frame finish, then writes its last words and nothing of what follows', async () => {
    const [kubectl, proxyClientSide, close1] = await pair();
    const [proxyUpstreamSide, apiServer, close2] = await pair();
    const received: Buffer[] = [];
    kubectl.on('data', (b: Buffer) => received.push(b));
    const kubectlClosed = new Promise<void>((r) => kubectl.once('close', () => r()));
    const spliced = revocableSplice(proxyClientSide, proxyUpstreamSide, { upgrade: 'websocket', subprotocol: 'v5.channel.k8s.io', command: true, tty: false }, Buffer.alloc(0));
    const output = wsFrame(2, Buffer.concat([Buffer.from([1]), Buffer.alloc(5_000, 'o')]));
    apiServer.write(output.subarray(0, 1_000));
    await new Promise((r) => setTimeout(r, 50));
    spliced.end(MESSAGE);
    await new Promise((r) => setTimeout(r, 50));
    apiServer.write(Buffer.concat([output.subarray(1_000), wsFrame(2, Buffer.from([1, ...Buffer.from('after the end')]))]));
    apiServer.on('error', () => undefined);
    await kubectlClosed;
    const { channels, closed } = readWebSocket(Buffer.concat(received));
    expect(channels.get(1)).toBe('o'.repeat(5_000));
    expect(channels.get(2)).toBe(`${MESSAGE}\n`);
    expect(JSON.parse(channels.get(3) as string)).toMatchObject({ message: 'keyway: session closed' });
    expect(closed).toBe(true);
    close1();
    close2();
  });

  it('a server that never finishes its frame cannot hold the session open', async () => {
    const [kubectl, proxyClientSide, close1] = await pair();
    const [proxyUpstreamSide, apiServer, close2] = await pair();
    kubectl.on('data', () => undefined);
    apiServer.on('error', () => undefined);
    const kubectlClosed = new Promise<void>((r) => kubectl.once('close', () => r()));
    const upstreamClosed = new Promise<void>((r) => apiServer.once('close', () => r()));
    const spliced = revocableSplice(proxyClientSide, proxyUpstreamSide, { upgrade: 'websocket', subprotocol: 'v5.channel.k8s.io', command: true, tty: false }, Buffer.alloc(0));
    apiServer.write(wsFrame(2, Buffer.alloc(10_000, 1)).subarray(0, 100));
    await new Promise((r) => setTimeout(r, 50));
    spliced.end(MESSAGE);
    await Promise.all([kubectlClosed, upstreamClosed]);
    close1();
    close2();
  });
});
