import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_IDENTITY_FILE, startStack, type Stack } from '@keyway/auth';
import { AuthClient, readIdentityFile, type IdentityFile } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { silentLogger, type Logger } from '@keyway/log';
import { generateKeyPair } from '@keyway/pki';
import { authTestEnv, createTestDatabase, type TestDatabase } from '@keyway/testing';

/**
 * `keyway start` on its own Postgres database, with the proxy in the same process (as the
 * embedded default runs them), and clients for each kind of caller the adversarial suites
 * play: anonymous (direct and through the proxy's public port), a user, a proxy, an agent.
 */
export interface AttackStack {
  stack: Stack;
  dataDir: string;
  admin: IdentityFile;
  /** A user with the preset `access` role (no resource rights). */
  user: IdentityFile;
  proxyHost: IdentityFile & { hostId: string };
  kubeHost: IdentityFile & { hostId: string };
  /** A client for `identity` (anonymous when undefined) to auth directly, or through the proxy relay. */
  client(identity?: IdentityFile, o?: { viaProxy?: boolean; timeoutMs?: number }): AuthClient;
  close(): Promise<void>;
}

export async function startAttackStack(o: { logger?: Logger } = {}): Promise<AttackStack> {
  const tdb: TestDatabase = await createTestDatabase();
  const dataDir = mkdtempSync(join(tmpdir(), 'kw-attack-'));
  const config = loadConfig({
    env: {
      ...authTestEnv({ databaseUrl: tdb.url, dataDir }),
      KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0',
      KEYWAY_CLUSTER_NAME: 'acme',
    },
  });
  const stack = await startStack(config, o.logger ?? silentLogger());
  const clients: AuthClient[] = [];
  try {
    const admin = readIdentityFile(join(dataDir, ADMIN_IDENTITY_FILE));
    const caPems = admin.caPems;
    const client = (identity?: IdentityFile, o: { viaProxy?: boolean; timeoutMs?: number } = {}) => {
      const c = new AuthClient({
        address: o.viaProxy ? (stack.proxyAddress as string) : stack.authAddress,
        ...(identity ? { identity } : { caPems }),
        timeoutMs: o.timeoutMs ?? 20_000,
      });
      clients.push(c);
      return c;
    };
    const adminClient = client(admin);
    await adminClient.call('createResources', {
      resources: [{ kind: 'user', name: '', revision: '', json: JSON.stringify({ kind: 'user', version: 'v2', metadata: { name: 'mallory' }, spec: { roles: ['access'] } }) }],
      force: false,
    });
    const key = generateKeyPair();
    const certs = await adminClient.call('signUserCerts', { user: 'mallory', publicKeyPem: key.publicKeyPem, ttlSeconds: 3600, kubernetesCluster: '' });
    const user: IdentityFile = { privateKeyPem: key.privateKeyPem, certPem: certs.certPem, caPems: [...certs.hostCaPems, ...certs.userCaPems] };
    const host = (role: 'Proxy' | 'Kube') => {
      const c = stack.auth.issueHostCredentials(role, ['localhost'], ['127.0.0.1']);
      return { privateKeyPem: c.privateKeyPem, certPem: c.certPem, caPems: [...c.hostCaPems, ...c.userCaPems], hostId: c.identity.username };
    };
    return {
      stack,
      dataDir,
      admin,
      user,
      proxyHost: host('Proxy'),
      kubeHost: host('Kube'),
      client,
      async close() {
        for (const c of clients) c.close();
        await stack.close();
        await tdb.drop();
      },
    };
  } catch (err) {
    for (const c of clients) c.close();
    await stack.close();
    await tdb.drop();
    throw err;
  }
}
