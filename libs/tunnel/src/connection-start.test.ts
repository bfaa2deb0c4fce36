import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConnectionStart, type ConnectionStartOptions } from './connection-start.js';

// Each case: a client sends some bytes; the server side reads the start with these options.
let server: net.Server;
let handle: (s: net.Socket) => void = () => undefined;
beforeAll(async () => {
  server = net.createServer((s) => handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});
afterAll(() => void server.close());

function run(send: Buffer[], o: Omit<ConnectionStartOptions<string>, 'decided' | 'refused'>) {
  return new Promise<{ decided?: [string, string]; refused?: string; closed: boolean }>((resolve) => {
    const out: { decided?: [string, string]; refused?: string; closed: boolean } = { closed: false };
    handle = (s) => {
      readConnectionStart(s, { ...o, decided: (r, d) => ((out.decided = [r, d.toString()]), s.destroy()), refused: (e) => (out.refused = e.message) });
      s.on('close', () => resolve({ ...out, closed: true }));
    };
    const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => {
      for (const b of send) c.write(b);
    });
    c.on('error', () => undefined);
  });
}

const untilNewline = (d: Buffer) => (d.includes(0x0a) ? 'line' : undefined);

describe('readConnectionStart', () => {
  it('decides across chunks and hands over every byte read', async () => {
    const r = await run([Buffer.from('ab'), Buffer.from('c\nrest')], { decide: untilNewline, maxBytes: 100, timeoutMs: 5_000 });
    expect(r.decided?.[0]).toBe('line');
    expect(r.decided?.[1].startsWith('ab')).toBe(true);
  });
  it('drops a client that sends more than the bound without being decided', async () => {
    const r = await run([Buffer.alloc(500, 0x61)], { decide: untilNewline, maxBytes: 100, timeoutMs: 5_000 });
    expect(r).toEqual({ closed: true });
  });
  it('drops a client that is too slow', async () => {
    const r = await run([Buffer.from('a')], { decide: untilNewline, maxBytes: 100, timeoutMs: 100 });
    expect(r).toEqual({ closed: true });
  });
  it('says why when the parser refuses, and drops the client', async () => {
    const r = await run([Buffer.from('x')], {
      decide: () => {
        throw new Error('not for us');
      },
      maxBytes: 100,
      timeoutMs: 5_000,
    });
    expect(r).toEqual({ refused: 'not for us', closed: true });
  });
});
