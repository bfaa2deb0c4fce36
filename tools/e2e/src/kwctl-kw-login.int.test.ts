import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, kwProfileKey, readIdentityFile } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { generateKeyPair } from '@keyway/pki';
import { authTestEnv, captureStream, createTestDatabase, type TestDatabase } from '@keyway/testing';
import { runKwctl } from '@keyway/kwctl';
import { startStack, type Stack } from '@keyway/auth';

// kwctl with a person's kw login, through a real proxy (which relays the auth API's own TLS,
// so the auth server sees the person's certificate and decides by their roles' rules).

const ROLES = `kind: role
version: v7
metadata: {name: role-reader}
spec:
  allow:
    rules: [{resources: [role], verbs: [read, list]}]
  deny: {}
---
kind: user
version: v2
metadata: {name: rita}
spec: {roles: [role-reader]}
`;

describe('kwctl through the proxy with a kw login', () => {
  let tdb: TestDatabase;
  let stack: Stack;
  let proxy: string;
  const dir = mkdtempSync(join(tmpdir(), 'kwctl-kw-login-'));
  const kwHome = join(dir, 'kw');
  const noAdmin = join(dir, 'no-admin');

  const kwctl = async (args: string[], o: { dataDir: string; env?: NodeJS.ProcessEnv; stdin?: string }) => {
    const out = captureStream();
    const err = captureStream();
    const code = await runKwctl({ argv: ['--data-dir', o.dataDir, ...args], out, err, env: o.env ?? {}, ...(o.stdin ? { stdin: Readable.from([o.stdin]) } : {}) });
    return { code, out: out.text(), err: err.text() };
  };

  beforeAll(async () => {
    tdb = await createTestDatabase();
    const config = loadConfig({
      env: { ...authTestEnv({ databaseUrl: tdb.url, dataDir: join(dir, 'auth') }), KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'acme' },
    });
    stack = await startStack(config, silentLogger());
    proxy = stack.proxyAddress as string;
    expect((await kwctl(['create', '-'], { dataDir: join(dir, 'auth'), stdin: ROLES })).code).toBe(0);
    // What `kw login --proxy=… --user=rita` leaves on disk.
    const admin = new AuthClient({ address: stack.authAddress, identity: readIdentityFile(join(dir, 'auth', 'admin-identity.pem')) });
    const key = generateKeyPair();
    const certs = await admin.call('signUserCerts', { user: 'rita', publicKeyPem: key.publicKeyPem, ttlSeconds: 3600, kubernetesCluster: '' });
    admin.close();
    const profile = join(kwHome, 'profiles', kwProfileKey(proxy));
    mkdirSync(profile, { recursive: true });
    writeFileSync(join(profile, 'profile.json'), JSON.stringify({ proxy, user: 'rita', cluster: 'acme', insecure: false }));
    writeFileSync(join(profile, 'key.pem'), key.privateKeyPem);
    writeFileSync(join(profile, 'cert.pem'), certs.certPem);
    writeFileSync(join(profile, 'cas.pem'), certs.hostCaPems.join(''));
    writeFileSync(join(kwHome, 'current-profile'), `${proxy}\n`);
  }, 90_000);

  afterAll(async () => {
    await stack?.close();
    await tdb?.drop();
  });

  it("does what the person's roles allow, through the proxy", async () => {
    const r = await kwctl(['get', 'roles', '--format', 'text'], { dataDir: noAdmin, env: { KW_HOME: kwHome } });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^role-reader\s/m);
  });

  it('is refused what they do not, naming the user, the rule and the kw login', async () => {
    const r = await kwctl(['get', 'users'], { dataDir: noAdmin, env: { KW_HOME: kwHome } });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/user "rita" may not list user: no rule of role "role-reader" allows it \(kwctl used your kw login as "rita"/);
  });
});
