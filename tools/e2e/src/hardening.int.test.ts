import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_SERVER_NAME, AuthClient, readIdentityFile } from '@keyway/client';
import { ca as authCa, AuthService } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { kwctlIn } from './harness.js';
import { generateKeyPair } from '@keyway/pki';

// Findings of the foundation review, each pinned by a test: the embedded default under
// concurrent load, trust in the auth server's certificate, TTL edge cases, restores.

describe('embedded store under concurrent calls', () => {
  let auth: AuthService;
  let dataDir: string;
  let address: string;

  const kwctl = kwctlIn(() => dataDir);

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'kw-h-'));
    const config = loadConfig({ env: { KEYWAY_DATA_DIR: dataDir, KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0' } });
    auth = await AuthService.create({ config, logger: silentLogger() });
    address = await auth.serve();
  }, 60_000);
  afterAll(async () => {
    await auth?.close();
  });

  it('answers 48 parallel calls of several kinds without one failure', async () => {
    const identity = readIdentityFile(join(dataDir, 'admin-identity.pem'));
    const admin = new AuthClient({ address, identity });
    const anon = new AuthClient({ address, caPems: identity.caPems });
    const { publicKeyPem } = generateKeyPair();
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 16; i++) {
      calls.push(admin.call('listResources', { kind: 'role', withSecrets: false, limit: 0, startKey: '' }));
      calls.push(anon.call('login', { user: `nobody-${i}`, password: 'wrong password!!', totpCode: '000000', publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' }).catch((e: Error) => e));
      calls.push(admin.call('createToken', { roles: ['kube'], ttlSeconds: 60, name: '', labels: {} }));
    }
    const results = await Promise.all(calls);
    const failures = results.filter((r) => r instanceof Error && !/invalid username, password or second factor/.test(r.message));
    expect(failures).toEqual([]);
    admin.close();
    anon.close();
  });

  it('keeps the database off the network and private to its owner', () => {
    expect(statSync(dataDir).mode & 0o077).toBe(0);
    expect(statSync(join(dataDir, 'run', '.s.PGSQL.5432')).isSocket()).toBe(true);
    expect(statSync(join(dataDir, 'admin-identity.pem')).mode & 0o077).toBe(0);
  });

  it('refuses TTLs that would round to nothing or overflow, and creates no user on a bad one', async () => {
    expect((await kwctl(['lock', '--user=x', '--ttl=1ms'])).err).toMatch(/--ttl must be at least 1s/);
    expect((await kwctl(['lock', '--user=x', '--ttl=100000000h'])).err).toMatch(/--ttl must be at most|invalid duration/);
    expect((await kwctl(['tokens', 'add', '--type=kube', '--ttl=0s'])).err).toMatch(/at least 1s/);
    expect((await kwctl(['users', 'add', 'carol', '--roles=access', '--ttl=200h'])).err).toMatch(/at most/);
    expect((await kwctl(['get', 'users/carol'])).code).toBe(1);
  });

  it('restores a dump of another cluster with --force, revisions and all', async () => {
    const dump = `kind: role
version: v7
metadata: {name: restored, revision: 0c5f3c8e-1d2f-4a7e-9b1c-2f0e8d9a7b6c}
spec: {allow: {kubernetes_labels: {'*': '*'}}}
---
kind: user
version: v2
metadata: {name: alice, revision: '7'}
spec: {roles: [restored]}
`;
    const r = await kwctl(['create', '--force', '-f', '-'], dump);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/role "restored" has been created/);
    expect(r.out).toMatch(/user "alice" has been created/);
  });
});

describe('trust in the auth server', () => {
  it('refuses a server whose certificate from the cluster CA is not the auth server', async () => {
    const host = authCa.createCertAuthority({ type: 'host', clusterName: 'acme' });
    const signer = new authCa.CertSigner({ certPem: host.certPem, privateKey: host.privateKeyPem });
    const key = generateKeyPair();
    // A Kube host's certificate that (against the join rules) carries the auth server's name.
    const cert = signer.signHostCertificate({
      publicKey: key.publicKeyPem,
      identity: { username: 'rogue', roles: ['Kube'], traits: {}, kubernetesUsers: [], kubernetesGroups: [], clusterName: 'acme', mfaVerified: false, systemRoles: ['Kube'] },
      dnsNames: [AUTH_SERVER_NAME],
      ipAddresses: ['127.0.0.1'],
      notAfter: new Date(Date.now() + 3600_000),
    });
    const server = tls.createServer({ cert: cert.certPem, key: key.privateKeyPem, ALPNProtocols: ['h2'] }, (s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const client = new AuthClient({ address: `127.0.0.1:${port}`, caPems: [host.certPem], timeoutMs: 3_000 });
    try {
      await expect(client.call('ping', {})).rejects.toThrow(/not of the auth service|No connection established/);
    } finally {
      client.close();
      server.close();
    }
  });

});
