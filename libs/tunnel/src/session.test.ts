import { PassThrough, Readable, type Duplex } from 'node:stream';
import { finished } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { readAll, socketPair } from '@keyway/testing';
import type { KubeBackend, KubeRequestHead } from './backend.js';
import { FrameType, encodeFrame } from './mux.js';
import { pump } from './pump.js';
import { TunnelClosedError, TunnelSession, serveTunnel } from './session.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function connect(backend: KubeBackend) {
  const [agentSide, proxySide] = await socketPair();
  const served = serveTunnel(agentSide, { backend, info: () => ({ hostId: 'a1', hostname: 'h', version: '1', clusters: [{ name: 'c1', labels: { env: 'dev' } }] }) });
  const session = new TunnelSession(proxySide);
  cleanups.push(() => session.destroy(), () => served.close());
  return { session, served };
}

const text = readAll;

const head = (extra: Partial<KubeRequestHead> = {}): KubeRequestHead => ({
  method: 'GET',
  path: '/api/v1/pods',
  headers: { accept: 'application/json' },
  cluster: 'c1',
  user: 'alice',
  groups: ['dev', 'system:authenticated'],
  ...extra,
});

describe('TunnelSession and serveTunnel', () => {
  it('hands the agent the request head as the proxy computed it, and streams both bodies', async () => {
    const seen: { head: KubeRequestHead; body: string | null }[] = [];
    const { session } = await connect({
      async request(h, body) {
        seen.push({ head: h, body: body ? await text(body) : null });
        return { head: { status: 201, headers: { 'content-type': 'text/plain', connection: 'close', 'x-keyway-kube-user': 'x' } }, body: Readable.from([Buffer.from('one '), Buffer.from('two')]) };
      },
      upgrade: () => Promise.reject(new Error('no')),
    });
    const res = await session.request(head({ method: 'POST' }), Readable.from([Buffer.from('{"kind":'), Buffer.from('"Pod"}')]));
    expect(res.head).toEqual({ status: 201, headers: { 'content-type': 'text/plain' } });
    expect(await text(res.body)).toBe('one two');
    expect(seen).toEqual([{ head: head({ method: 'POST' }), body: '{"kind":"Pod"}' }]);

    const bodyless = await session.request(head(), null);
    expect(await text(bodyless.body)).toBe('one two');
    expect(seen[1]?.body).toBeNull();
  });

  it('hands a body that arrived with its head over whole, and leaves a streaming one alone', async () => {
    let slow: PassThrough | undefined;
    const { session } = await connect({
      async request(h) {
        if (h.path === '/small') return { head: { status: 200, headers: {} }, body: Readable.from([Buffer.from('{"kind":'), Buffer.from('"Pod"}')]) };
        slow = new PassThrough();
        slow.write('first ');
        return { head: { status: 200, headers: {} }, body: slow };
      },
      upgrade: () => Promise.reject(new Error('no')),
    });
    const small = await session.request(head({ path: '/small' }), null);
    // Head, body and end of a small response leave the agent in one write.
    await new Promise((r) => setTimeout(r, 20));
    expect(small.takeWhole?.()?.toString()).toBe('{"kind":"Pod"}');
    expect(await text(small.body)).toBe('');

    const streaming = await session.request(head({ path: '/watch' }), null);
    expect(streaming.takeWhole?.()).toBeUndefined();
    slow?.end('second');
    expect(await text(streaming.body)).toBe('first second');
  });

  it('answers the info request', async () => {
    const { session } = await connect({ request: () => Promise.reject(new Error('no')), upgrade: () => Promise.reject(new Error('no')) });
    expect(await session.info()).toEqual({ hostId: 'a1', hostname: 'h', version: '1', clusters: [{ name: 'c1', labels: { env: 'dev' } }] });
  });

  it("never serves an internal path to a request that carries a user, nor forwards it to the API server", async () => {
    const forwarded: string[] = [];
    const backend: KubeBackend = {
      request: (h) => {
        forwarded.push(h.path);
        return Promise.resolve({ head: { status: 200, headers: {} }, body: Readable.from(['{}']) });
      },
      upgrade: (h) => {
        forwarded.push(h.path);
        return Promise.reject(new Error('no'));
      },
    };
    const { session } = await connect(backend);
    for (const h of [
      head({ path: '/.keyway/tunnel/info' }),
      head({ path: '/.keyway/tunnel/info', user: '', groups: [] }),
      head({ path: '/.keyway/tunnel/info', cluster: '' }),
      head({ path: '/.KEYWAY/tunnel/info' }),
      head({ path: '//.keyway//tunnel/info' }),
      head({ path: '/%2Ekeyway/tunnel/info' }),
      head({ path: '/.keyway/anything-else', user: '', cluster: '' }),
    ]) {
      const res = await session.request(h, null);
      expect(res.head.status, h.path).toBe(403);
      expect(await text(res.body)).not.toContain('a1');
    }
    await expect(session.upgrade(head({ path: '/.keyway/tunnel/info', upgrade: 'websocket' }), Buffer.alloc(0))).resolves.toMatchObject({ head: { status: 403 } });
    expect(forwarded).toEqual([]);
    // The proxy's own question still gets its answer.
    expect((await session.info()).hostId).toBe('a1');
  });

  it('answers 502 when the backend fails', async () => {
    const { session } = await connect({ request: () => Promise.reject(new Error('API server down')), upgrade: () => Promise.reject(new Error('no')) });
    const res = await session.request(head(), null);
    expect(res.head.status).toBe(502);
    expect(JSON.parse(await text(res.body))).toEqual({ message: 'API server down' });
  });

  it('carries an upgraded connection both ways, the client head first', async () => {
    const upstream = new PassThrough(); // echoes what the client sends
    const upgrades: KubeRequestHead[] = [];
    const { session } = await connect({
      request: () => Promise.reject(new Error('no')),
      upgrade(h) {
        upgrades.push(h);
        return Promise.resolve({ head: { status: 101, headers: { 'sec-websocket-protocol': 'v5.channel.k8s.io' } }, stream: upstream as Duplex });
      },
    });
    const { head: res, stream } = await session.upgrade(head({ upgrade: 'websocket' }), Buffer.from('first-'));
    expect(res).toEqual({ status: 101, headers: { 'sec-websocket-protocol': 'v5.channel.k8s.io' } });
    expect(upgrades[0]?.upgrade).toBe('websocket');
    const got = text(stream);
    stream.end('second');
    expect(await got).toBe('first-second');
  });

  it('passes a refused upgrade on as a plain response', async () => {
    const { session } = await connect({
      request: () => Promise.reject(new Error('no')),
      upgrade: () => Promise.resolve({ head: { status: 403, headers: { 'content-type': 'application/json' } }, stream: Readable.from([Buffer.from('{"reason":"Forbidden"}')]) as unknown as Duplex }),
    });
    const { head: res, stream } = await session.upgrade(head({ upgrade: 'SPDY/3.1' }), Buffer.alloc(0));
    expect(res.status).toBe(403);
    expect(await text(stream)).toBe('{"reason":"Forbidden"}');
  });

  it('refuses new requests once the tunnel is gone', async () => {
    const { session, served } = await connect({ request: () => Promise.reject(new Error('no')), upgrade: () => Promise.reject(new Error('no')) });
    served.close();
    await session.closed;
    expect(session.isOpen).toBe(false);
    await expect(session.request(head(), null)).rejects.toThrow(TunnelClosedError);
  });

  it('fails the response when the agent resets the stream in the same read as its head', async () => {
    // A hand-written agent, so that head, data and reset are one write (on a busy tunnel the
    // real one coalesces them too): the body has failed before the proxy gets to pipe it.
    const [agentSide, proxySide] = await socketPair();
    const session = new TunnelSession(proxySide);
    cleanups.push(() => session.destroy(), () => agentSide.destroy());
    agentSide.once('data', () => {
      const id = 1;
      agentSide.write(
        Buffer.concat([
          encodeFrame(FrameType.headers, 0, id, JSON.stringify({ status: 200, headers: { 'content-type': 'application/json' } })),
          encodeFrame(FrameType.data, 0, id, '{"kind":'),
          encodeFrame(FrameType.reset, 0, id, 'upstream went away'),
        ]),
      );
    });
    const res = await session.request(head(), null);
    expect(res.takeWhole?.()).toBeUndefined();
    const out = new PassThrough();
    pump(res.body, out);
    await expect(finished(out)).rejects.toThrow(/reset by the other end: upstream went away/);
  });
});
