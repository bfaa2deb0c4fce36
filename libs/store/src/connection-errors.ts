import type pg from 'pg';
import { ConnectionProblemError, KeywayError } from '@keyway/errors';
import type { StoreLocation } from './store.js';

/** Node's socket errors that mean the database is not there (or went away). */
const SOCKET_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  EPIPE: 'connection closed',
};

/** Postgres SQLSTATEs that mean the server is not serving (class 08, and shutdown/start-up). */
const SERVER_STATES: Record<string, string> = {
  '57P01': 'the server is shutting down',
  '57P02': 'the server is shutting down',
  '57P03': 'the server is starting up or shutting down',
};

/** Why `err` says the database cannot be reached, or undefined when it is another failure. */
export function connectionFailureReason(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  // Already mapped by mappedPool: the reason is that of the error it stands for.
  if (err instanceof KeywayError) return err.kind === 'ConnectionProblem' ? (connectionFailureReason(err.cause) ?? err.message) : undefined;
  const e = err as Error & { code?: unknown; errors?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (SOCKET_CODES[code]) return SOCKET_CODES[code];
  if (SERVER_STATES[code]) return SERVER_STATES[code];
  if (code.startsWith('08')) return e.message;
  // pg's own wording for a pool that could not connect in time, or a connection cut mid-query.
  if (/timeout exceeded when trying to connect|Connection terminated/i.test(e.message)) return 'connection timed out or closed';
  // Dialling every address of a name (AggregateError) failed the same way.
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const reason = connectionFailureReason(inner);
      if (reason) return reason;
    }
  }
  return undefined;
}

/** "Postgres at host:port" (never the user or password), or the embedded database. */
export function describeStore(location: StoreLocation): string {
  if (location.type === 'embedded') return 'the embedded database';
  try {
    const url = new URL(location.connString);
    return `Postgres at ${url.hostname || 'localhost'}:${url.port || '5432'}`;
  } catch {
    // A key=value connection string: host and port, if it names them.
    const host = /(?:^|\s)host=(\S+)/.exec(location.connString)?.[1] ?? 'localhost';
    const port = /(?:^|\s)port=(\d+)/.exec(location.connString)?.[1] ?? '5432';
    return `Postgres at ${host}:${port}`;
  }
}

/** The typed error a caller of the auth service gets when its database is unreachable. */
export function storeUnreachable(err: unknown, store: string): KeywayError | undefined {
  if (err instanceof KeywayError) return err;
  const reason = connectionFailureReason(err);
  if (!reason) return undefined;
  return new ConnectionProblemError(`the auth service cannot reach its database (${store}): ${reason}; try again once it is back`, { store }, { cause: err });
}

/**
 * The pool as Kysely sees it, with connection failures turned into ConnectionProblem errors
 * that name the store, instead of raw socket errors that the API would answer as "internal
 * error". Errors of the queries themselves pass unchanged.
 */
export function mappedPool(pool: pg.Pool, store: string): pg.Pool {
  const map = (err: unknown) => storeUnreachable(err, store) ?? err;
  return new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop !== 'connect') return Reflect.get(target, prop, receiver) as unknown;
      return async () => {
        let client: pg.PoolClient;
        try {
          client = await target.connect();
        } catch (err) {
          throw map(err);
        }
        return new Proxy(client, {
          get(c, p, r) {
            const v = Reflect.get(c, p, r) as unknown;
            if (p !== 'query' || typeof v !== 'function') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(c) : v;
            return (...args: unknown[]) => {
              const res = (v as (...a: unknown[]) => unknown).apply(c, args);
              return res instanceof Promise ? res.catch((err: unknown) => Promise.reject(map(err))) : res;
            };
          },
        });
      };
    },
  });
}
