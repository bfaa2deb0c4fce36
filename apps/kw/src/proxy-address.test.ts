import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveProxyAddress } from './proxy-address.js';

describe('resolveProxyAddress: --proxy as tsh reads it', () => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('keeps a port that is given, without probing', async () => {
    const never = () => Promise.reject(new Error('probed'));
    await fc.assert(
      fc.asyncProperty(fc.domain(), fc.integer({ min: 1, max: 65535 }), async (host, p) => {
        expect(await resolveProxyAddress(`${host}:${p}`, never)).toBe(`${host}:${p}`);
      }),
    );
    expect(await resolveProxyAddress('[::1]:3080', never)).toBe('[::1]:3080');
  });

  it('takes 3080 when the proxy listens there, else 443', async () => {
    expect(await resolveProxyAddress('keyway.example.com', (_h, p) => Promise.resolve(p === 3080))).toBe('keyway.example.com:3080');
    expect(await resolveProxyAddress('keyway.example.com', (_h, p) => Promise.resolve(p === 443))).toBe('keyway.example.com:443');
    expect(await resolveProxyAddress('::1', (_h, p) => Promise.resolve(p === 443))).toBe('[::1]:443');
  });

  it('says which ports it tried when neither answers (a real refused connection)', async () => {
    await expect(resolveProxyAddress('127.0.0.1', (h, p) => import('node:net').then((net) => new Promise<boolean>((r) => {
      // 3080/443 stand for the real ports: the probe is pointed at a closed port instead.
      const s = net.connect({ host: h, port: p === 3080 ? 1 : 2 });
      s.once('error', () => r(false));
      s.once('connect', () => (s.destroy(), r(true)));
    })))).rejects.toThrow('cannot reach the Keyway proxy at 127.0.0.1 on port 3080 or 443; give its port (--proxy=127.0.0.1:PORT)');
    // and a listening one is found
    expect(await resolveProxyAddress('127.0.0.1', (h, p) => import('node:net').then((net) => new Promise<boolean>((r) => {
      const s = net.connect({ host: h, port: p === 443 ? port : 1 });
      s.once('error', () => r(false));
      s.once('connect', () => (s.destroy(), r(true)));
    })))).toBe('127.0.0.1:443');
  });
});
