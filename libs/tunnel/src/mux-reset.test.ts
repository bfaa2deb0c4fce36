import { afterEach, describe, expect, it } from 'vitest';
import { readAll, socketPair } from '@keyway/testing';
import { Mux, type MuxStream } from './mux.js';

// A peer may reset a stream after its whole answer, while this side is still sending a body
// the peer no longer needs (HTTP/2's RST_STREAM NO_ERROR after a response). The answer must
// stay intact: losing it turned writes the API server had applied into failures.

const open: { destroy(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.destroy();
});

describe('a reset after the whole answer', () => {
  it('leaves the answer readable and lets the rest of the body go nowhere', async () => {
    const [a, b] = await socketPair();
    const client = new Mux(a);
    const server = new Mux(b, {
      onStream: (s: MuxStream) => {
        s.once('data', () => {
          // The answer, its end, and the reset leave in one write: they arrive together.
          s.respond({ status: 201 });
          s.end('created');
          s.destroy();
        });
      },
    });
    open.push(client, server);
    const stream = client.open({ method: 'POST' }, false);
    const heads: unknown[] = [];
    stream.on('head', (h: unknown) => heads.push(h));
    stream.write('{"the":"object"}');
    const answer = readAll(stream);
    await new Promise((r) => setTimeout(r, 50)); // answer and reset arrived, none read yet
    expect((await answer).toString()).toBe('created');
    expect(heads).toEqual([{ status: 201 }]);
    // The body's late rest and end are accepted and dropped; no error, and nothing is left open.
    await new Promise<void>((resolve, reject) => stream.write(Buffer.alloc(2 * 1024 * 1024), (err) => (err ? reject(err) : resolve())));
    stream.end();
    await new Promise((r) => stream.once('close', r));
    expect(stream.errored).toBeNull();
    expect(client.streamCount).toBe(0);
    expect(server.streamCount).toBe(0);
  });

  it('ends the answering side when the asker resets after its whole request (a closed watch)', async () => {
    const [a, b] = await socketPair();
    const client = new Mux(a);
    let answering: MuxStream | undefined;
    const server = new Mux(b, {
      onStream: (s: MuxStream) => {
        answering = s;
        s.respond({ status: 200 });
        s.write('{"type":"ADDED"}\n');
      },
    });
    open.push(client, server);
    const stream = client.open({ method: 'GET', path: '/api/v1/pods?watch=true' }, true);
    await new Promise((r) => stream.once('data', r));
    stream.destroy(); // kubectl closed its watch
    const s = answering as MuxStream;
    await new Promise((r) => (s.destroyed ? r(undefined) : s.once('close', r)));
    expect(s.errored?.message).toMatch(/reset by the other end/);
    expect(s.discardWrites).toBe(false);
    expect(server.streamCount).toBe(0);
  });

  it('still fails a stream reset before its answer ended', async () => {
    const [a, b] = await socketPair();
    const client = new Mux(a);
    const server = new Mux(b, {
      onStream: (s: MuxStream) => {
        s.respond({ status: 200 });
        s.write('partial');
        s.destroy(new Error('upstream went away'));
      },
    });
    open.push(client, server);
    const stream = client.open({ method: 'GET' }, true);
    await expect(readAll(stream)).rejects.toThrow(/reset by the other end: upstream went away/);
  });
});
