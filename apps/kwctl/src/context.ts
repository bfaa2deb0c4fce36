import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { AuthClient, readIdentityFile } from '@keyway/client';
import { DEFAULT_DATA_DIR } from '@keyway/config';
import { NotFoundError } from '@keyway/errors';

export interface GlobalOptions {
  identity?: string;
  authServer?: string;
  dataDir?: string;
}

/** What every command gets: its output streams and a way to reach the auth server. */
export interface CommandContext {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  readStdin(): Promise<string>;
  /** Connects with the admin credentials the command line names, runs fn, and disconnects. */
  withClient<T>(cmd: Command, fn: (client: AuthClient) => Promise<T>): Promise<T>;
}

/**
 * Finds admin credentials the way tctl does: an explicit --identity/--auth-server pair, or
 * the identity `keyway start` writes into its data dir on this host.
 */
export function connectAuth(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): AuthClient {
  const dataDir = resolve(opts.dataDir ?? env['KEYWAY_DATA_DIR'] ?? DEFAULT_DATA_DIR);
  const identityPath = opts.identity ?? join(dataDir, 'admin-identity.pem');
  if (!opts.identity && !existsSync(identityPath)) {
    throw new NotFoundError(
      `no admin identity at ${identityPath}: run kwctl on the auth host (where \`keyway start\` runs, or pass --data-dir), or pass --identity FILE --auth-server HOST:PORT`,
    );
  }
  const identity = readIdentityFile(identityPath);
  let address = opts.authServer ?? env['KEYWAY_AUTH_SERVER'];
  if (!address) {
    const addrFile = join(dataDir, 'auth-addr');
    address = existsSync(addrFile) ? readFileSync(addrFile, 'utf8').trim() : '127.0.0.1:3025';
  }
  return new AuthClient({ address, identity });
}
