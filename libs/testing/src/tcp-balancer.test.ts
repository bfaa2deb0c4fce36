import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './own-services.js';
import { startTcpBalancer, type TcpBalancer } from './tcp-balancer.js';

describe('startTcpBalancer', () => {
  const closers: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of closers) await c();
  });

  it('gets every one of many concurrent connections to the live backend while the other is down', async () => {
    const live = net.createServer((s) => s.end('hello'));
    await new Promise<void>((r) => live.listen(0, '127.0.0.1', r));
    closers.push(() => void live.close());
    const dead = `127.0.0.1:${await freePort()}`;
    const lb: TcpBalancer = await startTcpBalancer([dead, `127.0.0.1:${(live.address() as net.AddressInfo).port}`, dead]);
    closers.push(() => lb.close());
    const [host, port] = lb.address.split(':') as [string, string];
    const answers = await Promise.all(
      Array.from({ length: 60 }, () =>
        new Promise<string>((resolve) => {
          const c = net.connect({ host, port: Number(port) });
          let got = '';
          c.on('data', (d: Buffer) => (got += d.toString()));
          c.on('close', () => resolve(got));
          c.on('error', () => resolve('error'));
        }),
      ),
    );
    expect(answers.filter((a) => a !== 'hello')).toEqual([]);
  });
});
