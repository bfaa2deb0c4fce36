import fc from 'fast-check';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { readAll, socketPair } from '@keyway/testing';
import type { KubeBackend } from './backend.js';
import { FrameType, encodeFrame } from './mux.js';
import { TunnelSession, proxiesOf, serveTunnel } from './session.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const backend: KubeBackend = {
  request: () => Promise.resolve({ head: { status: 200, headers: {} }, body: Readable.from([Buffer.from('ok')]) }),
  upgrade: () => Promise.reject(new Error('no')),
};

async function connect() {
  const [agentSide, proxySide] = await socketPair();
  const announced: string[][] = [];
  const served = serveTunnel(agentSide, {
    backend,
    info: () => ({ hostId: 'a1', hostname: 'h', version: '1', clusters: [] }),
    onProxies: (ids) => announced.push(ids),
  });
  const session = new TunnelSession(proxySide);
  cleanups.push(() => session.destroy(), () => served.close());
  return { session, served, announced, proxySide };
}

async function stillServes(session: TunnelSession): Promise<void> {
  const res = await session.request({ method: 'GET', path: '/x', headers: {}, cluster: 'c', user: 'u', groups: [] }, null);
  expect(await readAll(res.body)).toBe('ok');
}

describe('proxy announcements over the tunnel', () => {
  it('hands the agent the live proxies the proxy announces, in order', async () => {
    const { session, announced } = await connect();
    session.announceProxies(['p1']);
    session.announceProxies(['p1', 'p2']);
    await stillServes(session); // the announcements went out before this request
    expect(announced).toEqual([['p1'], ['p1', 'p2']]);
  });

  it('ignores malformed or oversized announcements without closing the tunnel', async () => {
    const { session, announced, proxySide } = await connect();
    const bad = [
      'not json',
      'null',
      '[]',
      '{"proxies": "p1"}',
      '{"proxies": [1, 2]}',
      '{"proxies": [""]}',
      JSON.stringify({ proxies: ['x'.repeat(257)] }),
      JSON.stringify({ proxies: Array.from({ length: 1_025 }, (_, i) => `p${i}`) }),
    ];
    for (const b of bad) proxySide.write(encodeFrame(FrameType.announce, 0, 0, b));
    await stillServes(session);
    expect(announced).toEqual([]);
    expect(session.isOpen).toBe(true);
  });

  it('accepts any well-formed list and rejects anything else (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), fc.jsonValue().map((v) => Buffer.from(JSON.stringify({ proxies: v })))), (payload) => {
        const ids = proxiesOf(payload);
        if (ids !== undefined) {
          expect(Array.isArray(ids)).toBe(true);
          expect(ids.every((id) => typeof id === 'string' && id.length > 0 && id.length <= 256)).toBe(true);
        }
      }),
      { seed: 10, numRuns: 500 },
    );
  });

  it('an announcement sent the wrong way (agent to proxy) is ignored by the proxy', async () => {
    const [agentSide, proxySide] = await socketPair();
    const session = new TunnelSession(proxySide);
    cleanups.push(() => session.destroy(), () => agentSide.destroy());
    agentSide.write(encodeFrame(FrameType.announce, 0, 0, JSON.stringify({ proxies: ['evil'] })));
    agentSide.write(encodeFrame(FrameType.ping, 0, 0, Buffer.alloc(8)));
    // The PONG that follows shows the frame before it was read and survived.
    const pong = await new Promise<Buffer>((resolve) => agentSide.once('data', (d: Buffer) => resolve(d)));
    expect(pong[4]).toBe(FrameType.pong);
    expect(session.isOpen).toBe(true);
  });
});
