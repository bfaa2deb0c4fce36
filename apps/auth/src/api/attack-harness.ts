import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { AuthClient, readIdentityFile, type IdentityFile } from '@keyway/client';
import { generateKeyPair } from '@keyway/pki';
import { loadConfig } from '@keyway/config';
import { KeywayError } from '@keyway/errors';
import { silentLogger } from '@keyway/log';
import { authTestEnv, createTestDatabase, type TestDatabase } from '@keyway/testing';
import { AuthService } from '../service.js';
import { totpCode } from '../users/secrets.js';

// Shared by the auth service's attack suites (*.int.test.ts beside this file): a real auth
// service on its own Postgres database, reached over gRPC as an attacker would.

export const PASSWORD = 'correct horse battery staple';

export interface Harness {
  auth: AuthService;
  address: string;
  admin: AuthClient;
  anon: AuthClient;
  tdb: TestDatabase;
  dataDir: string;
  caPems: string[];
  /** Moves the service's clock (TOTP steps, lockouts, rate-limit refills). */
  advance(ms: number): void;
  now(): Date;
}

export async function start(env: Record<string, string> = {}): Promise<Harness> {
  const tdb = await createTestDatabase();
  const dataDir = mkdtempSync(join(tmpdir(), 'keyway-login-'));
  let offset = -60 * 60_000;
  const now = () => new Date(Date.now() + offset);
  const config = loadConfig({
    env: {
      ...authTestEnv({ databaseUrl: tdb.url, dataDir }),
      ...env,
    },
  });
  const auth = await AuthService.create({ config, logger: silentLogger(), clock: now });
  const address = await auth.serve();
  const identity = readIdentityFile(join(dataDir, 'admin-identity.pem'));
  return {
    auth,
    address,
    tdb,
    dataDir,
    caPems: identity.caPems,
    admin: new AuthClient({ address, identity }),
    anon: new AuthClient({ address, caPems: identity.caPems }),
    advance: (ms) => (offset += ms),
    now,
  };
}

export async function stop(h: Harness | undefined): Promise<void> {
  h?.admin.close();
  h?.anon.close();
  await h?.auth.close();
  await h?.tdb.drop();
}

/** Creates a user and completes its signup; returns the TOTP secret. */
export async function signUp(h: Harness, name: string): Promise<string> {
  const { token } = await h.admin.call('createUser', { name, roles: ['access'], traits: {}, tokenTtlSeconds: 3600 });
  const info = await h.anon.call('getUserToken', { token });
  await h.anon.call('completeUserToken', { token, password: PASSWORD, totpCode: totpCode(info.totpSecret, h.now()) });
  return info.totpSecret;
}

/** A client that calls as the holder of this identity. */
export function clientAs(h: Harness, identity: IdentityFile): AuthClient {
  return new AuthClient({ address: h.address, identity });
}

/** The typed error a call failed with (kind, message, data as the client sees them). */
export async function failure(p: Promise<unknown>): Promise<{ kind: string; message: string; data: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(KeywayError);
    const e = err as KeywayError;
    return { kind: e.kind, message: e.message, data: { ...e.data } };
  }
  throw new Error('the call succeeded');
}

/** Joins a host with a new token (or `over.token`), as a new host or as the holder of `over.as`. */
export async function joinHost(h: Harness, role: 'Kube' | 'Proxy', over: { hostId?: string; as?: IdentityFile; token?: string } = {}) {
  const token = over.token ?? (await h.admin.call('createToken', { roles: [role.toLowerCase()], ttlSeconds: 86400, name: '', labels: {} })).name;
  const key = generateKeyPair();
  const c = over.as ? new AuthClient({ address: h.address, identity: over.as, caPems: h.caPems }) : new AuthClient({ address: h.address, caPems: h.caPems });
  try {
    const r = await c.call('join', { token, publicKeyPem: key.publicKeyPem, role, hostId: over.hostId ?? '', nodeName: 'n', dnsNames: [], ipAddresses: [] });
    return { hostId: r.hostId, token, identity: { privateKeyPem: key.privateKeyPem, certPem: r.certPem, caPems: [...r.hostCaPems, ...r.userCaPems] } };
  } finally {
    c.close();
  }
}
