import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { AuthClient, readIdentityFile, readKwLogin, THE_PROXY } from '@keyway/client';
import { DEFAULT_DATA_DIR } from '@keyway/config';
import { AccessDeniedError, KeywayError, NotFoundError } from '@keyway/errors';

export interface GlobalOptions {
  identity?: string;
  authServer?: string;
  dataDir?: string;
}

/** What every command gets: its output streams and a way to reach the auth server. */
export interface CommandContext {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  readStdin(): Promise<string>;
  /** Connects with the credentials the command line names (see connectAuth), runs fn, and disconnects. */
  withClient<T>(cmd: Command, fn: (client: AuthClient) => Promise<T>): Promise<T>;
}

/** The client, and whose credentials it uses (for messages). */
export interface Connection {
  client: AuthClient;
  /** Set when kwctl runs with the person's kw login rather than an admin identity. */
  kwUser?: string;
}

/**
 * Finds credentials the way tctl does, first match wins:
 * 1. --identity FILE (with --auth-server, or the data dir's auth address);
 * 2. the admin identity `keyway start` writes into its data dir on this host;
 * 3. the person's `kw login` (as tctl uses tsh's profile): the auth API through that proxy,
 *    allowed what the person's roles allow.
 */
export function connectAuth(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Connection {
  const dataDir = resolve(opts.dataDir ?? env['KEYWAY_DATA_DIR'] ?? DEFAULT_DATA_DIR);
  const adminIdentity = join(dataDir, 'admin-identity.pem');
  const explicitAddress = opts.authServer ?? env['KEYWAY_AUTH_SERVER'];
  if (opts.identity || existsSync(adminIdentity)) {
    const identity = readIdentityFile(opts.identity ?? adminIdentity);
    let address = explicitAddress;
    if (!address) {
      const addrFile = join(dataDir, 'auth-addr');
      address = existsSync(addrFile) ? readFileSync(addrFile, 'utf8').trim() : '127.0.0.1:3025';
    }
    return { client: new AuthClient({ address, identity }) };
  }
  const login = readKwLogin(env);
  if (login) {
    if (login.expires.getTime() <= Date.now()) {
      throw new AccessDeniedError(`your kw login as "${login.user}" at ${login.proxy} expired at ${login.expires.toISOString()}: run \`kw login --proxy=${login.proxy}\` again`);
    }
    // --auth-server still picks the address (another proxy of the same cluster, or the auth server).
    return { client: new AuthClient({ address: explicitAddress ?? login.proxy, identity: login.identity, serverName: THE_PROXY }), kwUser: login.user };
  }
  throw new NotFoundError(
    `no credentials: no admin identity at ${adminIdentity} and no kw login; run kwctl on the auth host (where \`keyway start\` runs, or pass --data-dir), pass --identity FILE --auth-server HOST:PORT, or log in with \`kw login\``,
  );
}

/** A refusal while using someone's kw login says so: their roles, not kwctl, decided. */
export function explainDenied(err: unknown, conn: Connection): unknown {
  if (!conn.kwUser || !(err instanceof KeywayError) || err.kind !== 'AccessDenied') return err;
  return new AccessDeniedError(
    `${err.message} (kwctl used your kw login as "${conn.kwUser}": ask an admin for a role whose rules allow it, or run kwctl with --identity)`,
    err.data,
    { cause: err },
  );
}
