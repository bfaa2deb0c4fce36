import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { TOTP, Secret } from 'otpauth';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuthClient, readIdentityFile } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { decodeIdentity, generateKeyPair, verifyCertificate } from '@keyway/pki';
import { captureStream, authTestEnv, createTestDatabase, type TestDatabase } from '@keyway/testing';
import { runKw } from '@keyway/kw';
import { runKwctl } from '@keyway/kwctl';
import { AuthService } from '@keyway/auth';

// The acceptance flow of the foundation issue, against a real Postgres: kwctl creates the
// seed's user and role, the user signs up and logs in with password + TOTP, and every
// refusal comes with its own error.

const SEED_USER = `kind: user
version: v2
metadata:
  name: jimbo
spec:
  roles: ['junior-devs']
  traits:
    kubernetes_groups: ['teleport-view']
`;

const SEED_ROLE = `kind: role
version: v7
metadata: {name: junior-devs}
spec:
  options: {max_session_ttl: 8h}
  allow:
    kubernetes_labels: {env: [dev, staging]}
    kubernetes_groups: ['{{internal.kubernetes_groups}}']
    kubernetes_resources:
      - {kind: pod, namespace: default, name: '*', verbs: [get, list, watch]}
  deny: {}
`;

const PASSWORD = 'correct horse battery staple';

describe('auth service + kwctl on Postgres', () => {
  let tdb: TestDatabase;
  let auth: AuthService;
  let dataDir: string;
  let address: string;

  const kwctl = async (args: string[], stdin?: string) => {
    const out = captureStream();
    const err = captureStream();
    const code = await runKwctl({
      argv: ['--data-dir', dataDir, ...args],
      out,
      err,
      env: {},
      ...(stdin !== undefined ? { stdin: Readable.from([stdin]) } : {}),
    });
    return { code, out: out.text(), err: err.text() };
  };

  const anonymous = () => new AuthClient({ address, caPems: readIdentityFile(join(dataDir, 'admin-identity.pem')).caPems });

  // The service's clock starts ten minutes back and moves one TOTP step (30 s) per login,
  // so each login has a fresh code without waiting, and certificates are valid right away.
  let clockOffsetMs = -10 * 60_000;
  const clock = () => new Date(Date.now() + clockOffsetMs);
  const nextTotp = (secret: string) => {
    clockOffsetMs += 30_000;
    return currentTotp(secret);
  };
  const currentTotp = (secret: string) =>
    new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' }).generate({ timestamp: clock().getTime() });

  beforeAll(async () => {
    tdb = await createTestDatabase();
    dataDir = mkdtempSync(join(tmpdir(), 'keyway-auth-'));
    const config = loadConfig({
      env: {
        ...authTestEnv({ databaseUrl: tdb.url, dataDir }),
        KEYWAY_CLUSTER_NAME: 'acme',
      },
    });
    auth = await AuthService.create({ config, logger: silentLogger(), clock });
    address = await auth.serve();
  });

  afterAll(async () => {
    await auth?.close();
    await tdb?.drop();
  });

  it('creates the seed role and user and shows the traits as JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-files-'));
    writeFileSync(join(dir, 'role.yaml'), SEED_ROLE);
    writeFileSync(join(dir, 'jimbo.yaml'), SEED_USER);
    const first = await kwctl(["create", "-f", join(dir, "role.yaml")]);
    expect(first, first.err).toMatchObject({ code: 0, out: 'role "junior-devs" has been created\n' });
    expect(await kwctl(['create', '-f', join(dir, 'jimbo.yaml')])).toMatchObject({ code: 0, out: 'user "jimbo" has been created\n' });

    const got = await kwctl(['get', 'users/jimbo', '--format', 'json']);
    expect(got.code).toBe(0);
    const parsed = JSON.parse(got.out) as unknown;
    const user = (Array.isArray(parsed) ? parsed[0] : parsed) as { spec: { roles: string[]; traits: Record<string, string[]> } };
    expect(user.spec.traits).toEqual({ kubernetes_groups: ['teleport-view'] });
    expect(user.spec.roles).toEqual(['junior-devs']);

    // Creating again without --force is an error; with --force it updates.
    const again = await kwctl(['create', join(dir, 'jimbo.yaml')]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/user "jimbo" already exists/);
    expect((await kwctl(['create', '--force', '-f', join(dir, 'jimbo.yaml')])).out).toBe('user "jimbo" has been updated\n');
  });

  it('refuses to delete a role a user still has, and lists everything with get all', async () => {
    const rm = await kwctl(['rm', 'roles/junior-devs']);
    expect(rm.code).toBe(1);
    expect(rm.err).toMatch(/role "junior-devs" is still assigned to user\(s\) jimbo/);
    const all = await kwctl(['get', 'all', '--format', 'text']);
    expect(all.code).toBe(0);
    for (const name of ['jimbo', 'junior-devs', 'editor', 'access', 'auditor']) expect(all.out).toContain(name);
    const bad = await kwctl(['get', 'widgets']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/widgets/);
  });

  it('hides connector secrets unless --with-secrets', async () => {
    const github = `kind: github
version: v3
metadata: {name: github}
spec:
  client_id: abc
  client_secret: s3cr3t-value
  redirect_url: https://proxy.example.com/v1/webapi/github/callback
  teams_to_roles: [{organization: acme, team: devs, roles: [access]}]
`;
    const created = await kwctl(['create', '-f', '-'], github);
    expect(created.err).toBe('');
    const plain = await kwctl(['get', 'github/github']);
    expect(plain.out).not.toContain('s3cr3t-value');
    expect(plain.out).toMatch(/client_secret: ""/);
    expect((await kwctl(['get', 'github', '--with-secrets'])).out).toContain('s3cr3t-value');
    expect((await kwctl(['rm', 'github/github'])).code).toBe(0);
  });

  it('refuses an invalid file, names the field, and writes nothing', async () => {
    const bad = `${SEED_ROLE}---\nkind: user\nversion: v2\nmetadata: {name: wanda}\nspec:\n  roles: [junior-devs]\n  trates: {}\n`;
    const good = SEED_ROLE.replace('junior-devs', 'seniors');
    const r = await kwctl(['create', '-f', '-'], `${good}---\n${bad.split('---\n')[1]}`);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/document 2/);
    expect(r.err).toMatch(/trates/);
    expect((await kwctl(['get', 'roles/seniors'])).code).toBe(1);
    expect((await kwctl(['get', 'users/wanda'])).code).toBe(1);
  });

  it('rejects a whole batch when the server finds a problem', async () => {
    // Valid documents, but the user's role does not exist: the role before it must not stay.
    const docs = `${SEED_ROLE.replace('junior-devs', 'batch-role')}---\nkind: user\nversion: v2\nmetadata: {name: ghost}\nspec: {roles: [nope]}\n`;
    const r = await kwctl(['create', '-f', '-'], docs);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/role "nope"/);
    expect((await kwctl(['get', 'roles/batch-role'])).code).toBe(1);
  });

  it('round-trips kwctl get output into kwctl create', async () => {
    const yaml = (await kwctl(['get', 'roles/junior-devs'])).out;
    expect(parseYaml(yaml)).toMatchObject({ kind: 'role', metadata: { name: 'junior-devs' } });
    expect(await kwctl(['create', '--force', '-f', '-'], yaml)).toMatchObject({ code: 0, out: 'role "junior-devs" has been updated\n' });
    // The same document again carries a revision that is now stale: --force wins, as tctl
    // create -f (kwctl edit is where a concurrent change conflicts: kwctl-habits.int.test.ts).
    const stale = await kwctl(['create', '--force', '-f', '-'], yaml);
    expect(stale).toMatchObject({ code: 0, out: 'role "junior-devs" has been updated\n' });
  });

  describe('login', () => {
    let secret = '';
    const client = () => anonymous();

    it('signs jimbo up with a one-time token through kw signup', async () => {
      const reset = await kwctl(['users', 'reset', 'jimbo']);
      expect(reset.code).toBe(0);
      const command = /^ {2}kw (signup [0-9a-f]{48} --auth-server=\S+ --ca-pin=sha256:[0-9a-f]{64})$/m.exec(reset.out)?.[1] ?? '';
      expect(command, reset.out).not.toBe('');
      const token = command.split(' ')[1] ?? '';

      // Bad answers are refused without using the token up.
      const c = client();
      const info = await c.call('getUserToken', { token });
      expect(info).toMatchObject({ user: 'jimbo', kind: 'reset', secondFactorRequired: true });
      expect(info.totpUri).toMatch(/^otpauth:\/\/totp\//);
      await expect(c.call('completeUserToken', { token, password: 'short', totpCode: currentTotp(info.totpSecret) })).rejects.toMatchObject({
        kind: 'BadParameter',
      });
      await expect(c.call('completeUserToken', { token, password: PASSWORD, totpCode: '000000' })).rejects.toThrow(/invalid second factor/);
      // The password policy names the rule that was broken.
      const code = currentTotp(info.totpSecret);
      await expect(c.call('completeUserToken', { token, password: ' '.repeat(12), totpCode: code })).rejects.toMatchObject({
        kind: 'BadParameter',
        message: expect.stringMatching(/only of spaces, control or invisible characters/),
      });
      await expect(c.call('completeUserToken', { token, password: '\u200b'.repeat(16), totpCode: code })).rejects.toMatchObject({ kind: 'BadParameter' });
      await expect(c.call('completeUserToken', { token, password: 'JIMBO', totpCode: code })).rejects.toThrow(/at least 12 characters/);
      await expect(c.call('completeUserToken', { token, password: 'x'.repeat(11), totpCode: code })).rejects.toThrow(/at least 12 characters/);

      // kw signup as the user runs it: answers typed at its prompts.
      const stdin = new PassThrough();
      const out = captureStream();
      const err = captureStream();
      const running = runKw({ argv: command.split(' '), stdin, out, err });
      stdin.write(`${PASSWORD}\n${PASSWORD}\n`);
      await vi.waitFor(() => expect(out.text()).toMatch(/secret: [A-Z2-7]+/));
      secret = /secret: ([A-Z2-7]+)/.exec(out.text())?.[1] ?? '';
      expect(secret).toBe(info.totpSecret);
      stdin.end(`${currentTotp(secret)}\n`);
      expect(await running, err.text()).toBe(0);
      expect(out.text()).toMatch(/User "jimbo" is ready to log in/);

      // The token worked once.
      await expect(c.call('completeUserToken', { token, password: PASSWORD, totpCode: currentTotp(secret) })).rejects.toMatchObject({
        kind: 'NotFound',
      });
      // A wrong pin is refused before anything is sent.
      const wrongPin = await runKw({ argv: [...command.split(' ').slice(0, -1), `--ca-pin=sha256:${'0'.repeat(64)}`], stdin: Readable.from([]), out: captureStream(), err });
      expect(wrongPin).toBe(1);
      expect(err.text()).toMatch(/does not present the expected CA/);
      c.close();
    });

    it('issues a certificate whose identity is jimbo, capped by the role TTL', async () => {
      const c = client();
      const key = generateKeyPair();
      const code = nextTotp(secret);
      const certs = await c.call('login', {
        user: 'jimbo',
        password: PASSWORD,
        totpCode: code,
        publicKeyPem: key.publicKeyPem,
        ttlSeconds: 0,
        kubernetesCluster: '',
      });
      const id = decodeIdentity(certs.certPem);
      expect(id.username).toBe('jimbo');
      expect(id.roles).toEqual(['junior-devs']);
      expect(id.kubernetesGroups).toEqual(['teleport-view']);
      expect(id.traits).toEqual({ kubernetes_groups: ['teleport-view'] });
      expect(id.clusterName).toBe('acme');
      expect(id.mfaVerified).toBe(true);
      // NotBefore is issuance minus one minute of allowed clock skew.
      const ttl = id.expires.getTime() - ((id.issuedAt?.getTime() ?? 0) + 60_000);
      expect(ttl).toBe(8 * 3600_000);
      // Signed by the user CA, for the key we sent.
      const userCa = new X509Certificate(certs.userCaPems[0] ?? '');
      expect(verifyCertificate(certs.certPem, [userCa]).username).toBe('jimbo');
      expect(new X509Certificate(certs.certPem).publicKey.export({ type: 'spki', format: 'pem' })).toBe(key.publicKeyPem);

      // The same code again is refused (as reused, the audit says; the caller learns nothing more).
      await expect(
        c.call('login', { user: 'jimbo', password: PASSWORD, totpCode: code, publicKeyPem: key.publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' }),
      ).rejects.toMatchObject({ kind: 'AccessDenied', message: 'invalid username, password or second factor' });
      c.close();
    });

    it('renews from a still-valid certificate, never past its expiry, and routes to a kube cluster', async () => {
      const c = client();
      const key = generateKeyPair();
      const first = await c.call('login', {
        user: 'jimbo',
        password: PASSWORD,
        totpCode: nextTotp(secret),
        publicKeyPem: key.publicKeyPem,
        ttlSeconds: 3600,
        kubernetesCluster: '',
      });
      c.close();
      const userClient = new AuthClient({
        address,
        identity: { privateKeyPem: key.privateKeyPem, certPem: first.certPem, caPems: first.hostCaPems },
      });
      const key2 = generateKeyPair();
      const renewed = await userClient.call('generateUserCerts', { publicKeyPem: key2.publicKeyPem, ttlSeconds: 0, kubernetesCluster: 'prod' });
      const id = decodeIdentity(renewed.certPem);
      expect(id.kubernetesCluster).toBe('prod');
      expect(id.expires.getTime()).toBeLessThanOrEqual(decodeIdentity(first.certPem).expires.getTime());
      // A user cannot administer.
      await expect(userClient.call('listResources', { kind: 'user', withSecrets: false, limit: 0, startKey: '' })).rejects.toMatchObject({ kind: 'AccessDenied' });
      userClient.close();
    });

    it('refuses a wrong password, a wrong code and an unknown user with one and the same answer', async () => {
      const c = client();
      const { publicKeyPem } = generateKeyPair();
      const login = (user: string, password: string, totpCode: string) =>
        c.call('login', { user, password, totpCode, publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' });
      // A right password with a wrong code must not say so: that would be a password oracle.
      const same = { kind: 'AccessDenied', message: 'invalid username, password or second factor', data: {} };
      await expect(login('jimbo', 'wrong password!!', nextTotp(secret))).rejects.toMatchObject(same);
      await expect(login('jimbo', PASSWORD, '123456')).rejects.toMatchObject(same);
      await expect(login('nobody', PASSWORD, nextTotp(secret))).rejects.toMatchObject(same);
      c.close();
    });

    it('refuses an expired signup token', async () => {
      const add = await kwctl(['users', 'add', 'shortlived', '--roles=access', '--ttl=1s']);
      expect(add.code).toBe(0);
      const token = /^ {2}([0-9a-f]{48})$/m.exec(add.out)?.[1] ?? '';
      await new Promise((r) => setTimeout(r, 1_200));
      const c = client();
      await expect(c.call('getUserToken', { token })).rejects.toThrow(/token expired/);
      c.close();
    });

    it('refuses a locked user, and lets them in again after unlock', async () => {
      expect((await kwctl(['lock', '--user=jimbo', '--message=incident 42'])).code).toBe(0);
      const c = client();
      const { publicKeyPem } = generateKeyPair();
      await expect(
        c.call('login', { user: 'jimbo', password: PASSWORD, totpCode: nextTotp(secret), publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' }),
      ).rejects.toMatchObject({ kind: 'AccessDenied', message: 'invalid username, password or second factor', data: {} });
      expect((await kwctl(['unlock', '--user=jimbo'])).code).toBe(0);
      // Locks are checked after the credentials, so the refused attempt used its code up.
      await expect(
        c.call('login', { user: 'jimbo', password: PASSWORD, totpCode: nextTotp(secret), publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' }),
      ).resolves.toMatchObject({ username: 'jimbo' });
      c.close();
    });

    it('locks a user out after five failed attempts', async () => {
      const c = client();
      const { publicKeyPem } = generateKeyPair();
      const login = (password: string) =>
        c.call('login', { user: 'jimbo', password, totpCode: '000000', publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' });
      for (let i = 0; i < 5; i++) await expect(login('wrong password!!')).rejects.toMatchObject({ kind: 'AccessDenied' });
      // Locked out, even with the right password; the answer is the same as for anyone else.
      await expect(login(PASSWORD)).rejects.toMatchObject({ kind: 'AccessDenied', message: 'invalid username, password or second factor', data: {} });
      c.close();
    });
  });

  it('writes a kubeconfig with kwctl auth sign', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'keyway-sign-')), 'kubeconfig');
    const r = await kwctl(['auth', 'sign', '--user=jimbo', '--format=kubernetes', '--kube-cluster=dev', '--proxy=proxy.example.com:3080', '--ttl=1h', `--out=${out}`]);
    expect(r).toMatchObject({ code: 0 });
    const kc = parseYaml(readFileSync(out, 'utf8')) as {
      'current-context': string;
      clusters: { name: string; cluster: Record<string, string> }[];
      users: { user: Record<string, string> }[];
    };
    expect(kc['current-context']).toBe('acme-dev');
    expect(kc.clusters[0]?.cluster['server']).toBe('https://proxy.example.com:3080');
    const cert = Buffer.from(kc.users[0]?.user['client-certificate-data'] ?? '', 'base64').toString();
    const id = decodeIdentity(cert);
    expect(id).toMatchObject({ username: 'jimbo', kubernetesCluster: 'dev', kubernetesGroups: ['teleport-view'] });
    expect(id.expires.getTime() - Date.now()).toBeLessThanOrEqual(3600_000);

    const tls = join(mkdtempSync(join(tmpdir(), 'keyway-sign-')), 'jimbo');
    expect((await kwctl(['auth', 'sign', '--user=jimbo', '--format=tls', `--out=${tls}`])).code).toBe(0);
    expect(decodeIdentity(readFileSync(`${tls}.crt`, 'utf8')).username).toBe('jimbo');
  });

  it('manages join tokens and lets a host join with one', async () => {
    const add = await kwctl(['tokens', 'add', '--type=kube', '--ttl=30m']);
    expect(add.code).toBe(0);
    const token = /The invite token: ([0-9a-f]{32})/.exec(add.out)?.[1] ?? '';
    expect((await kwctl(['tokens', 'ls'])).out).toContain(token);
    const c = anonymous();
    const key = generateKeyPair();
    const joined = await c.call('join', {
      token,
      publicKeyPem: key.publicKeyPem,
      role: 'Kube',
      hostId: 'agent-1',
      nodeName: 'node-a',
      dnsNames: ['agent-1.example'],
      ipAddresses: ['127.0.0.1'],
    });
    const agentId = decodeIdentity(joined.certPem);
    // The auth server names hosts: a chosen id is not taken.
    expect(agentId).toMatchObject({ systemRoles: ['Kube'], clusterName: 'acme' });
    expect(agentId.username).toMatch(/^[0-9a-f-]{36}$/);
    const joinWith = (over: Record<string, unknown>) =>
      c.call('join', { token, publicKeyPem: key.publicKeyPem, role: 'Kube', hostId: '', nodeName: '', dnsNames: [], ipAddresses: [], ...over });
    await expect(joinWith({ token: 'f'.repeat(32) })).rejects.toMatchObject({ kind: 'AccessDenied' });
    await expect(joinWith({ role: 'Proxy' })).rejects.toThrow(/does not allow role Proxy/);
    // An agent cannot get a certificate that passes for the auth server or the proxies.
    await expect(joinWith({ dnsNames: ['auth.keyway.cluster.local'] })).rejects.toThrow(/may not carry the name/);
    await expect(joinWith({ dnsNames: ['*.keyway.cluster.local'] })).rejects.toThrow(/may not carry/);
    await expect(joinWith({ dnsNames: ['*.example.com'] })).rejects.toThrow(/wildcard/);
    c.close();
    expect((await kwctl(['tokens', 'rm', token])).code).toBe(0);
  });

  it('prints the cluster name and CA fingerprints', async () => {
    const r = await kwctl(['status']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Cluster:\s+acme/);
    expect(r.out).toMatch(/user CA:\s+\S+/);
    expect(r.out).toMatch(/host CA:\s+\S+/);
  });

  it('deletes users so they can no longer log in or renew', async () => {
    // A certificate jimbo holds from before the deletion.
    const dir = mkdtempSync(join(tmpdir(), 'keyway-del-'));
    expect((await kwctl(['auth', 'sign', '--user=jimbo', '--format=tls', `--out=${join(dir, 'jimbo')}`])).code).toBe(0);
    expect((await kwctl(['users', 'ls'])).out).toMatch(/jimbo/);

    expect((await kwctl(['users', 'rm', 'jimbo'])).out).toBe('User "jimbo" has been deleted\n');
    expect((await kwctl(['get', 'users/jimbo'])).err).toMatch(/not found/);
    expect((await kwctl(['users', 'ls'])).out).not.toMatch(/jimbo/);

    const held = new AuthClient({
      address,
      identity: {
        privateKeyPem: readFileSync(join(dir, 'jimbo.key'), 'utf8'),
        certPem: readFileSync(join(dir, 'jimbo.crt'), 'utf8'),
        caPems: [readFileSync(join(dir, 'jimbo.cas'), 'utf8')],
      },
    });
    await expect(held.call('generateUserCerts', { publicKeyPem: generateKeyPair().publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' })).rejects.toThrow(
      /user "jimbo" does not exist/,
    );
    held.close();
  });

  it('audits logins, resource changes, joins and certificates, and detects an edited row', async () => {
    const logins = (await kwctl(['audit', 'search', '--event', 'user.login', '--format', 'json', '--limit', '1000'])).out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logins.some((e) => e['code'] === 'T1000I' && e['user'] === 'jimbo' && e['success'] === true)).toBe(true);
    const failed = logins.find((e) => e['code'] === 'T1000W' && e['reason'] === 'bad_password');
    expect(failed).toMatchObject({ event: 'user.login', user: 'jimbo', success: false, error: 'wrong password' });
    // The real reasons are in the audit log, which only auditors read.
    const reasons = new Set(logins.filter((e) => e['code'] === 'T1000W').map((e) => e['reason']));
    for (const r of ['bad_password', 'totp_invalid', 'totp_reused', 'user_not_found', 'locked', 'locked_out']) expect(reasons).toContain(r);
    expect(logins.find((e) => e['reason'] === 'locked')).toMatchObject({ error: 'user "jimbo" is locked: incident 42' });
    expect(JSON.stringify(logins)).not.toContain(PASSWORD);
    const roles = (await kwctl(['audit', 'search', '--event', 'role.created', '--format', 'json'])).out;
    expect(roles).toMatch(/"name":"junior-devs"/);
    const text = await kwctl(['audit', 'search', '--since', '1h', '--limit', '5']);
    expect(text.out.split('\n')[0]).toMatch(/^Time\s+Event\s+Code\s+User\s+Details/);
    // Paging: the next page starts where the first ended, newest first, no overlap.
    const first = await kwctl(['audit', 'search', '--limit', '3', '--format', 'json']);
    const before = /--before-id=(\d+)/.exec(first.err)?.[1] as string;
    const second = await kwctl(['audit', 'search', '--limit', '3', '--format', 'json', `--before-id=${before}`]);
    const uids = (out: string) => out.trim().split('\n').map((l) => (JSON.parse(l) as { uid: string }).uid);
    expect(uids(second.out)).toHaveLength(3);
    expect(uids(second.out).some((u) => uids(first.out).includes(u))).toBe(false);
    expect((await kwctl(['audit', 'verify'])).out).toMatch(/The audit log is intact: \d+ event\(s\) checked/);

    const pg = await import('pg');
    const db = new pg.default.Client({ connectionString: tdb.url });
    await db.connect();
    const victim = await db.query<{ uid: string }>("SELECT uid FROM audit_events WHERE event = 'role.created' ORDER BY id LIMIT 1");
    await db.query("UPDATE audit_events SET data = jsonb_set(data::jsonb, '{name}', '\"someone-else\"')::json WHERE uid = $1", [victim.rows[0]?.uid]);
    await db.end();
    const verify = await kwctl(['audit', 'verify']);
    expect(verify.code).toBe(1);
    expect(verify.err).toContain(`uid ${victim.rows[0]?.uid}`);
  });

  it('finds admin credentials from --identity and --auth-server, and explains when there are none', async () => {
    const r = await runKwctl({
      argv: ['--identity', join(dataDir, 'admin-identity.pem'), '--auth-server', address, 'status'],
      out: captureStream(),
      err: captureStream(),
      env: {},
    });
    expect(r).toBe(0);
    const err = captureStream();
    const none = await runKwctl({ argv: ['--data-dir', mkdtempSync(join(tmpdir(), 'keyway-empty-')), 'status'], out: captureStream(), err, env: {} });
    expect(none).toBe(1);
    expect(err.text()).toMatch(/no admin identity at .*admin-identity\.pem/);
  });
});
