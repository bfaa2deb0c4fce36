import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient } from '@keyway/client';
import { BadParameterError } from '@keyway/errors';
import { silentLogger } from '@keyway/log';
import { generateKeyPair } from '@keyway/pki';
import { CertSigner, createCertAuthority } from '../ca/authority.js';
import type { AuthApi } from './auth-api.js';
import { serveGrpc, type ServedGrpc } from './grpc-server.js';

// The wrappers' promise: nothing a handler does — throw synchronously, throw a non-Error,
// reject with unencodable data, return what cannot be encoded — escapes past the mapping of
// errors to a status. Each of these, unwrapped, is an uncaught exception ending the process.

const escaped: unknown[] = [];
const trap = (err: unknown) => escaped.push(err);

const cyclic: Record<string, unknown> = { name: 'ü' };
cyclic['self'] = cyclic;

/** An AuthApi whose every method misbehaves in the way `behaviour` says. */
function hostileApi(behaviour: { current: () => unknown }): AuthApi {
  return new Proxy({} as AuthApi, {
    get: () => () => behaviour.current(),
  });
}

describe('gRPC server wrappers', () => {
  const behaviour: { current: () => unknown } = { current: () => undefined };
  let served: ServedGrpc | undefined;
  let client: AuthClient;

  beforeAll(async () => {
    process.on('uncaughtException', trap);
    process.on('unhandledRejection', trap);
    const userCa = createCertAuthority({ type: 'user', clusterName: 'acme' });
    const hostCa = createCertAuthority({ type: 'host', clusterName: 'acme' });
    const key = generateKeyPair();
    const cert = new CertSigner({ certPem: hostCa.certPem, privateKey: hostCa.privateKeyPem }).signHostCertificate({
      publicKey: key.publicKeyPem,
      identity: { username: 'auth', roles: ['Auth'], traits: {}, kubernetesUsers: [], kubernetesGroups: [], clusterName: 'acme', mfaVerified: false, systemRoles: ['Auth'] },
      dnsNames: ['auth.keyway.cluster.local'],
      ipAddresses: ['127.0.0.1'],
      notAfter: new Date(Date.now() + 3600_000),
    });
    served = await serveGrpc(
      {
        api: hostileApi(behaviour),
        cas: { userCa: new X509Certificate(userCa.certPem), hostCa: new X509Certificate(hostCa.certPem), userCaPem: userCa.certPem, hostCaPem: hostCa.certPem },
        certPem: cert.certPem,
        keyPem: key.privateKeyPem,
        logger: silentLogger(),
      },
      '127.0.0.1:0',
    );
    client = new AuthClient({ address: `127.0.0.1:${served?.port}`, caPems: [hostCa.certPem], timeoutMs: 20_000 });
  });
  afterAll(async () => {
    process.off('uncaughtException', trap);
    process.off('unhandledRejection', trap);
    client?.close();
    await served?.close(0);
  });

  const cases: [string, () => unknown, string][] = [
    ['a synchronous throw of an Error', () => { throw new Error('boom'); }, 'Internal'],
    ['a synchronous throw of a string', () => { throw 'not an error'; }, 'Internal'],
    ['a synchronous throw of undefined', () => { throw undefined; }, 'Internal'],
    ['a typed error with non-ASCII, cyclic data', () => { throw new BadParameterError('ünïcödé 👾 \uD800', cyclic); }, 'BadParameter'],
    ['a typed error with BigInt data', () => Promise.reject(new BadParameterError('big', { n: 1n } as unknown as Record<string, unknown>)), 'BadParameter'],
    ['a rejection with null', () => Promise.reject(null), 'Internal'],
    ['a result that cannot be encoded', () => ({ clusterName: { not: 'a string' }, certAuthorities: 7 }), 'Internal'],
  ];

  it.each(cases)('answers %s with a status and stays up', async (_what, fn, kind) => {
    behaviour.current = fn;
    const err = await client.call('ping', {}).then(
      () => undefined,
      (e: unknown) => e as { kind: string },
    );
    expect(err?.kind).toBe(kind);
    expect(escaped).toEqual([]);
    behaviour.current = () => ({ clusterName: 'acme', serverVersion: '1', secondFactor: 'off', certAuthorities: [], authType: 'local', connectorName: '', connectors: [] });
    expect((await client.call('ping', {})).clusterName).toBe('acme');
  });

  it('ends a watch whose handler throws synchronously with its status', async () => {
    behaviour.current = () => {
      throw new BadParameterError('wätch', { kind: 'ü' });
    };
    const end = await new Promise<{ kind: string } | undefined>((resolve) => client.watch(['role'], () => undefined, resolve));
    // The throw comes out of api.watch before any promise exists: caught, and sent as the status.
    expect(end?.kind).toBe('BadParameter');
    expect(escaped).toEqual([]);
  });
});
