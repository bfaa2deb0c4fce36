import { constants as zc, createDeflate } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SpdyParser, WebSocketParser, spdyDictionary } from './frames.js';
import { SessionObserver, type SessionEvent } from './observer.js';

function wsFrame(opcode: number, payload: Buffer, o: { mask?: boolean; fin?: boolean } = {}): Buffer {
  const fin = o.fin ?? true;
  const len = payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | opcode];
  const m = o.mask ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 0xff);
  else {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(len));
    head.push(m | 127, ...b);
  }
  if (!o.mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const masked = Buffer.from(payload.map((v, i) => v ^ (key[i & 3] as number)));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

const chan = (c: number, text: string) => Buffer.concat([Buffer.from([c]), Buffer.from(text)]);

/** `wire` split in two at every byte boundary, and one byte at a time. */
function splits(wire: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 0; i <= wire.length; i++) out.push([wire.subarray(0, i), wire.subarray(i)]);
  out.push([...wire].map((b) => Buffer.from([b])));
  return out;
}

describe('WebSocketParser', () => {
  const big = Buffer.alloc(70_000, 'x');
  const clientWire = Buffer.concat([
    wsFrame(2, chan(0, 'ls -l\n'), { mask: true }),
    wsFrame(9, Buffer.from('ping'), { mask: true }),
    // A fragmented message: the channel byte is in the first fragment, a ping in between.
    wsFrame(2, chan(0, 'frag'), { mask: true, fin: false }),
    wsFrame(10, Buffer.alloc(0), { mask: true }),
    wsFrame(0, Buffer.from('mented'), { mask: true }),
    wsFrame(2, chan(4, '{"Width":80,"Height":24}'), { mask: true }),
    wsFrame(2, Buffer.concat([Buffer.from([1]), Buffer.alloc(300, 'y')]), { mask: true }),
  ]);

  it('reports channel data of masked client frames split at every byte', () => {
    for (const pieces of splits(clientWire)) {
      const got: Record<number, string> = {};
      const p = new WebSocketParser(true, (c, b) => (got[c] = (got[c] ?? '') + b.toString()));
      for (const piece of pieces) p.push(piece);
      expect(got).toEqual({ 0: 'ls -l\nfragmented', 4: '{"Width":80,"Height":24}', 1: 'y'.repeat(300) });
    }
  });

  it('handles 16- and 64-bit lengths from the server', () => {
    const wire = Buffer.concat([wsFrame(2, chan(1, 'a'.repeat(1000))), wsFrame(2, Buffer.concat([Buffer.from([2]), big])), wsFrame(8, Buffer.from([3, 232]))]);
    for (const at of [1, 2, 3, 4, 5, 9, 10, 11, 1003, 1004, 1005, 1010, 70_010, wire.length - 1]) {
      let out = 0;
      let err = 0;
      let closed = false;
      const p = new WebSocketParser(
        false,
        (c, b) => (c === 1 ? (out += b.length) : (err += b.length)),
        () => (closed = true),
      );
      p.push(wire.subarray(0, at));
      p.push(wire.subarray(at));
      expect([out, err, closed]).toEqual([1000, 70_000, true]);
    }
  });

  it('refuses frames it cannot parse', () => {
    expect(() => new WebSocketParser(true, () => undefined).push(wsFrame(2, chan(0, 'x')))).toThrow(/unmasked/);
    expect(() => new WebSocketParser(false, () => undefined).push(Buffer.from([0xc2, 0x01, 0x00]))).toThrow(/RSV/);
    expect(() => new WebSocketParser(false, () => undefined).push(wsFrame(0, Buffer.from('x')))).toThrow(/continuation/);
  });
});

function spdyData(id: number, payload: Buffer, fin = false): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(id & 0x7fffffff, 0);
  h.writeUInt32BE(((fin ? 1 : 0) << 24) | payload.length, 4);
  return Buffer.concat([h, payload]);
}

function spdyControl(type: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8003, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt32BE((flags << 24) | payload.length, 4);
  return Buffer.concat([h, payload]);
}

function headerBlock(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  parts.push(u32(Object.keys(headers).length));
  for (const [k, v] of Object.entries(headers)) parts.push(u32(k.length), Buffer.from(k), u32(v.length), Buffer.from(v));
  return Buffer.concat(parts);
}

/** SYN_STREAMs for the given stream types, their header blocks one sync-flushed zlib stream. */
async function synStreams(types: [number, string][]): Promise<Buffer[]> {
  const deflate = createDeflate({ dictionary: spdyDictionary() });
  const frames: Buffer[] = [];
  for (const [id, type] of types) {
    deflate.write(headerBlock({ streamtype: type, port: '' }));
    const block = await new Promise<Buffer>((resolve) => deflate.flush(zc.Z_SYNC_FLUSH, () => resolve(deflate.read() as Buffer)));
    const head = Buffer.alloc(10);
    head.writeUInt32BE(id, 0);
    frames.push(spdyControl(1, 0, Buffer.concat([head, block])));
  }
  deflate.close();
  return frames;
}

describe('SpdyParser', () => {
  it('reports control frames whole and data per stream, split at every byte', () => {
    const wire = Buffer.concat([
      spdyControl(4, 0, Buffer.from([0, 0, 0, 0])),
      spdyData(1, Buffer.from('hello ')),
      spdyData(3, Buffer.from('oops')),
      spdyData(1, Buffer.from('world'), true),
    ]);
    for (const pieces of splits(wire)) {
      const got: string[] = [];
      const p = new SpdyParser({ control: (type, _f, payload) => got.push(`ctl${type}:${payload.length}`), data: (id, b, fin) => got.push(`${id}:${b}${fin ? '$' : ''}`) });
      for (const piece of pieces) p.push(piece);
      expect(got[0]).toBe('ctl4:4');
      const per: Record<string, string> = {};
      for (const g of got.slice(1)) {
        const [id, text] = g.split(/:(.*)/s) as [string, string];
        per[id] = (per[id] ?? '') + text;
      }
      expect(per).toEqual({ 1: 'hello world$', 3: 'oops' });
    }
  });

  it('refuses control frames of another version', () => {
    const frame = spdyControl(4, 0, Buffer.alloc(4));
    frame.writeUInt16BE(0x8002, 0);
    expect(() => new SpdyParser({ control: () => undefined, data: () => undefined }).push(frame)).toThrow(/version 2/);
  });
});

/** Consecutive data events of one type joined, as a player shows them. */
function merged(events: SessionEvent[]): SessionEvent[] {
  const out: SessionEvent[] = [];
  for (const e of events) {
    const last = out.at(-1);
    if (last && last.type === e.type && last.data !== undefined && e.data !== undefined) last.data += e.data;
    else out.push({ ...e });
  }
  return out;
}

describe('SessionObserver', () => {
  const run = (upgrade: string, subprotocol: string, client: Buffer[], server: Buffer[]) => {
    const events: SessionEvent[] = [];
    const o = new SessionObserver({ upgrade, subprotocol, record: (e) => events.push(e), now: () => 0 });
    for (const c of client) o.fromClient(c);
    for (const s of server) o.fromServer(s);
    return { events, outcome: o.outcome() };
  };
  const status = (s: object) => JSON.stringify(s);

  it('records WebSocket stdin, stdout, resizes and the exit code', () => {
    const failure = status({ status: 'Failure', message: 'command terminated with non-zero exit code: exit status 3', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
    const { events, outcome } = run(
      'websocket',
      'v5.channel.k8s.io',
      [wsFrame(2, chan(0, 'typed\n'), { mask: true }), wsFrame(2, chan(4, '{"Width":100,"Height":30}'), { mask: true }), wsFrame(2, Buffer.from([255, 0]), { mask: true })],
      [wsFrame(2, chan(1, 'typed\n')), wsFrame(2, chan(2, Buffer.from([0xff, 0xfe]).toString('latin1'))), wsFrame(2, chan(3, failure))],
    );
    expect(merged(events.filter((e) => e.type !== 'error'))).toEqual([
      { t: 0, type: 'stdin', data: 'typed\n' },
      { t: 0, type: 'resize', width: 100, height: 30 },
      { t: 0, type: 'stdout', data: 'typed\n' },
      { t: 0, type: 'stderr', data: 'ÿþ' },
    ]);
    expect(outcome).toEqual({ exitCode: 3, error: 'command terminated with non-zero exit code: exit status 3' });
  });

  it('records SPDY streams by their streamType', async () => {
    const syn = await synStreams([
      [1, 'error'],
      [3, 'stdin'],
      [5, 'stdout'],
      [7, 'resize'],
    ]);
    const client = Buffer.concat([...syn, spdyData(3, Buffer.from('input')), spdyData(7, Buffer.from('{"Width":1,"Height":2}\n{"Width":3,"Height":4}\n'))]);
    const server = Buffer.concat([spdyData(5, Buffer.from('output')), spdyData(1, Buffer.from(status({ status: 'Success' })), true)]);
    for (const pieces of splits(client)) {
      const { events, outcome } = run('SPDY/3.1', 'v4.channel.k8s.io', pieces, [server]);
      expect(merged(events.filter((e) => e.type !== 'error'))).toEqual([
        { t: 0, type: 'stdin', data: 'input' },
        { t: 0, type: 'resize', width: 1, height: 2 },
        { t: 0, type: 'resize', width: 3, height: 4 },
        { t: 0, type: 'stdout', data: 'output' },
      ]);
      expect(outcome).toEqual({ exitCode: 0 });
    }
  });

  it('stops on what it cannot parse and says so', () => {
    const { events } = run('websocket', 'v5.channel.k8s.io', [wsFrame(2, chan(0, 'a'), { mask: true }), Buffer.from([0xf2, 0x80]), wsFrame(2, chan(0, 'b'), { mask: true })], []);
    expect(events).toEqual([
      { t: 0, type: 'stdin', data: 'a' },
      { t: 0, type: 'observer', message: expect.stringMatching(/^recording stopped: .*RSV/) },
    ]);
    expect(run('websocket', 'base64.channel.k8s.io', [], []).events[0]?.message).toMatch(/not recorded/);
  });
});
