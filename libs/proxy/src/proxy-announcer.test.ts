import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@keyway/log';
import { socketPair } from '@keyway/testing';
import { TunnelSession, serveTunnel } from '@keyway/tunnel';
import { ProxyAnnouncer } from './proxy-announcer.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function agent() {
  const [agentSide, proxySide] = await socketPair();
  const seen: string[][] = [];
  const served = serveTunnel(agentSide, {
    backend: { request: () => Promise.reject(new Error('unused')), upgrade: () => Promise.reject(new Error('unused')) },
    info: () => ({ hostId: 'a', hostname: 'h', version: '1', clusters: [] }),
    onProxies: (ids) => seen.push(ids),
  });
  const session = new TunnelSession(proxySide);
  cleanups.push(() => session.destroy(), () => served.close());
  return { session, seen };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('ProxyAnnouncer', () => {
  it('announces nothing before the cache has a snapshot, then the set (with itself) to every tunnel, once per change', async () => {
    let ids: string[] | undefined;
    const announcer = new ProxyAnnouncer({ selfId: () => 'p1', proxyIds: () => ids, logger: silentLogger(), checkIntervalMs: 10 });
    announcer.start();
    cleanups.push(() => announcer.stop());
    const a = await agent();
    announcer.add(a.session);
    await new Promise((r) => setTimeout(r, 50));
    expect(a.seen).toEqual([]);

    ids = ['p2'];
    await until(() => a.seen.length === 1);
    expect(a.seen).toEqual([['p1', 'p2']]);
    // A tunnel that arrives later gets the current set at once.
    const b = await agent();
    announcer.add(b.session);
    await until(() => b.seen.length === 1);
    expect(b.seen).toEqual([['p1', 'p2']]);

    ids = ['p3', 'p2', 'p1'];
    await until(() => a.seen.length === 2 && b.seen.length === 2);
    await new Promise((r) => setTimeout(r, 50)); // no change: nothing more is sent
    expect(a.seen).toEqual([['p1', 'p2'], ['p1', 'p2', 'p3']]);
    expect(b.seen).toEqual(a.seen);
  });
});
