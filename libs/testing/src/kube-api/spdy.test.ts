import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { constants as zc, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeHeaderBlock, encodeHeaderBlock, HeaderDeflater, HeaderInflater, SpdySession, spdyDictionary, type SpdyHeaders, type SpdyStream } from './spdy.js';

describe('SPDY/3 header blocks', () => {
  it('our stored-block zlib stream inflates with the SPDY/3 dictionary, block after block', () => {
    const deflater = new HeaderDeflater();
    const headers: SpdyHeaders[] = [{ streamtype: 'error' }, { streamtype: 'data', port: '8080', requestid: '0' }, {}];
    const blocks = headers.map((h) => deflater.compress(encodeHeaderBlock(h)));
    // Every block ends at a byte boundary with an empty stored block (00 00 00 ff ff).
    for (const b of blocks) expect([...b.subarray(-5)]).toEqual([0, 0, 0, 0xff, 0xff]);
    const all = inflateSync(Buffer.concat(blocks), { dictionary: spdyDictionary(), finishFlush: zc.Z_SYNC_FLUSH });
    const first = decodeHeaderBlock(all);
    expect(first?.headers).toEqual({ streamtype: 'error' });
    const second = decodeHeaderBlock(all.subarray(first?.used));
    expect(second?.headers).toEqual({ streamtype: 'data', port: '8080', requestid: '0' });
  });

  it('decodes blocks from a real deflate context, one flush at a time', async () => {
    const inflater = new HeaderInflater();
    const deflater = new HeaderDeflater();
    expect(await inflater.decompress(deflater.compress(encodeHeaderBlock({ a: 'b' })))).toEqual({ a: 'b' });
    expect(await inflater.decompress(deflater.compress(encodeHeaderBlock({ 'x-long': 'y'.repeat(70_000) })))).toEqual({ 'x-long': 'y'.repeat(70_000) });
    inflater.close();
  });

  it('reports an incomplete block as undefined', () => {
    const block = encodeHeaderBlock({ streamtype: 'stdout' });
    expect(decodeHeaderBlock(block.subarray(0, block.length - 1))).toBeUndefined();
  });
});

async function pair(): Promise<{ client: SpdySession; server: SpdySession; close: () => void }> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const accepted = once(srv, 'connection') as Promise<[Socket]>;
  const c = connect((srv.address() as AddressInfo).port, '127.0.0.1');
  const [s] = await accepted;
  return {
    client: new SpdySession(c, { server: false }),
    server: new SpdySession(s, { server: true }),
    close: () => {
      c.destroy();
      s.destroy();
      srv.close();
    },
  };
}

async function text(stream: SpdyStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream.iterator({ destroyOnReturn: false })) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('SPDY session', () => {
  it('opens streams, replies, moves data both ways with half-close, and answers pings', async () => {
    const { client, server, close } = await pair();
    try {
      server.on('stream', (s: SpdyStream) => {
        s.reply();
        // upper-case echo
        void text(s).then((t) => s.end(t.toUpperCase() + ` (${s.header('streamtype')})`));
      });
      const a = await client.openStream({ streamType: 'stdin' });
      const b = await client.openStream({ streamtype: 'stdout' });
      expect([a.id, b.id]).toEqual([1, 3]);
      const big = 'z'.repeat(300_000);
      const ra = text(a);
      const rb = text(b);
      a.end('hello');
      b.end(big);
      expect(await ra).toBe('HELLO (stdin)');
      expect(await rb).toBe(big.toUpperCase() + ' (stdout)');
      await client.ping();
      await server.ping();
    } finally {
      close();
    }
  });

  it('resets streams and tears everything down when the socket goes', async () => {
    const { client, server, close } = await pair();
    try {
      const seen = new Promise<SpdyStream>((resolve) => server.on('stream', (s: SpdyStream) => (s.reply(), resolve(s))));
      const a = await client.openStream({ streamtype: 'data' });
      const remote = await seen;
      a.reset();
      await once(remote, 'close');
      expect(remote.remoteReset).toBe(true);
      const closed = once(server, 'close');
      client.close();
      await closed;
      expect(server.closed).toBe(true);
    } finally {
      close();
    }
  });
});
