import pg from 'pg';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startOwnPostgres, startOwnRedis } from './own-services.js';

async function pgAnswers(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    return (await c.query('SELECT 1 AS one')).rows[0]?.one === 1;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

function redisPing(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('error', () => resolve('down'));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      resolve(d.toString().trim());
      s.destroy();
    });
  });
}

describe('own services for failure tests', () => {
  it('a Postgres of its own stops and starts on the same port, keeping its data', async () => {
    const db = await startOwnPostgres();
    try {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      await c.query('CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)');
      await c.end();
      await db.stop();
      expect(await pgAnswers(db.url)).toBe(false);
      await db.start();
      const c2 = new pg.Client({ connectionString: db.url });
      await c2.connect();
      expect((await c2.query('SELECT v FROM kept')).rows).toEqual([{ v: 7 }]);
      await c2.end();
    } finally {
      await db.destroy();
    }
  }, 120_000);

  it('a Redis of its own forgets everything when restarted', async () => {
    const redis = await startOwnRedis();
    try {
      expect(await redisPing(redis.port)).toBe('+PONG');
      await redis.stop();
      expect(await redisPing(redis.port)).toBe('down');
      await redis.start();
      expect(await redisPing(redis.port)).toBe('+PONG');
    } finally {
      await redis.destroy();
    }
  });
});
