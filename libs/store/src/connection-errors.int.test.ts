import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionProblemError } from '@keyway/errors';
import { Store } from './store.js';
import { connectionFailureReason, describeStore } from './connection-errors.js';

// A store whose Postgres is not there fails with one sentence naming it, never a raw socket
// error (which the API would answer as "internal error").

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('store connection failures', () => {
  it('name the store and the reason', async () => {
    const port = await closedPort();
    const err = await Store.open({ location: { type: 'postgres', connString: `postgres://keyway:secret@127.0.0.1:${port}/keyway` } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionProblemError);
    expect((err as Error).message).toBe(`the auth service cannot reach its database (Postgres at 127.0.0.1:${port}): connection refused; try again once it is back`);
    expect((err as Error).message).not.toContain('secret');
    expect(connectionFailureReason(err)).toBe('connection refused');
  });

  it('describe a store without its credentials', () => {
    expect(describeStore({ type: 'postgres', connString: 'postgres://u:p@db.internal:6543/k' })).toBe('Postgres at db.internal:6543');
    expect(describeStore({ type: 'postgres', connString: 'host=db port=5433 user=u password=p' })).toBe('Postgres at db:5433');
    expect(describeStore({ type: 'embedded', dataDir: '/x' })).toBe('the embedded database');
  });

  it('leave other failures alone', () => {
    expect(connectionFailureReason(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' }))).toBeUndefined();
    expect(connectionFailureReason(Object.assign(new Error('password authentication failed'), { code: '28P01' }))).toBeUndefined();
  });
});
