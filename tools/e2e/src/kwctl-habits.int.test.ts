import { fileURLToPath } from 'node:url';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, kwProfileKey, readIdentityFile } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { generateKeyPair } from '@keyway/pki';
import { authTestEnv, captureStream, createTestDatabase, type TestDatabase } from '@keyway/testing';
import { runKwctl } from '@keyway/kwctl';
import { AuthService } from '@keyway/auth';

// kwctl with Teleport tctl's habits, against a real auth service on Postgres: create's
// positional file and -f for force, edit through $EDITOR with a revision check, comma lists
// and kube servers in get, kube ls, tokens/users/lock flags, auth export, and kwctl running
// with a person's kw login, allowed exactly what their roles allow.

const ROLE = (name: string, ttl = '8h') => `kind: role
version: v7
metadata: {name: ${name}}
spec:
  options: {max_session_ttl: ${ttl}}
  allow:
    kubernetes_labels: {env: [dev]}
    kubernetes_groups: [viewers]
  deny: {}
`;

const READER_ROLE = `kind: role
version: v7
metadata: {name: role-reader}
spec:
  allow:
    rules:
      - {resources: [role], verbs: [read, list]}
  deny: {}
`;

describe('kwctl habits of tctl', () => {
  let tdb: TestDatabase;
  let auth: AuthService;
  let dataDir: string;
  let address: string;
  let admin: AuthClient;
  const work = mkdtempSync(join(tmpdir(), 'kwctl-habits-'));

  const kwctl = async (args: string[], o: { stdin?: string; env?: NodeJS.ProcessEnv; dataDir?: string } = {}) => {
    const out = captureStream();
    const err = captureStream();
    const code = await runKwctl({
      argv: ['--data-dir', o.dataDir ?? dataDir, ...args],
      out,
      err,
      env: o.env ?? {},
      ...(o.stdin !== undefined ? { stdin: Readable.from([o.stdin]) } : {}),
    });
    return { code, out: out.text(), err: err.text() };
  };

  beforeAll(async () => {
    tdb = await createTestDatabase();
    dataDir = mkdtempSync(join(tmpdir(), 'kwctl-habits-auth-'));
    const config = loadConfig({ env: { ...authTestEnv({ databaseUrl: tdb.url, dataDir }), KEYWAY_CLUSTER_NAME: 'acme' } });
    auth = await AuthService.create({ config, logger: silentLogger() });
    address = await auth.serve();
    admin = new AuthClient({ address, identity: readIdentityFile(join(dataDir, 'admin-identity.pem')) });
  });

  afterAll(async () => {
    admin?.close();
    await auth?.close();
    await tdb?.drop();
  });

  describe('create', () => {
    it('takes the file as its argument, and -f means force as in tctl', async () => {
      const file = join(work, 'dev.yaml');
      writeFileSync(file, ROLE('dev'));
      expect(await kwctl(['create', file])).toMatchObject({ code: 0, out: 'role "dev" has been created\n' });
      const again = await kwctl(['create', file]);
      expect(again.code).toBe(1);
      expect(again.err).toMatch(/role "dev" already exists/);
      // `kwctl create -f jimbo.yaml` is a forced create of jimbo.yaml.
      writeFileSync(file, ROLE('dev', '4h'));
      expect(await kwctl(['create', '-f', file])).toMatchObject({ code: 0, out: 'role "dev" has been updated\n' });
      expect(await kwctl(['create', '--force', file])).toMatchObject({ code: 0, out: 'role "dev" has been updated\n' });
      expect(await kwctl(['create', '-f', '-'], { stdin: ROLE('from-stdin') })).toMatchObject({ code: 0, out: 'role "from-stdin" has been created\n' });
    });

    it("loads a Teleport cluster's dump (tctl get all), saying what it skipped and why", async () => {
      const dump = fileURLToPath(new URL('../../../libs/resources/src/fixtures/teleport-dump.yaml', import.meta.url));
      const r = await kwctl(['create', '-f', dump]);
      expect(r.code, r.err).toBe(0);
      expect(r.err).toMatch(/^note: .*document \d+ \(cert_authority\/[^)]+\): skipped: .*/m);
      expect(r.out).toMatch(/^github "[^"]+" has been (created|updated)$/m);
      expect(r.out).toMatch(/^role "[^"]+" has been (created|updated)$/m);
      // Nothing that is only a note is written.
      expect(r.out).not.toMatch(/cert_authority|cluster_name|node "/);
      const onlySkipped = await kwctl(['create', '-'], { stdin: 'kind: cluster_name\nversion: v2\nmetadata: {name: cluster-name}\nspec: {cluster_name: old.example.com}\n' });
      expect(onlySkipped.code).toBe(1);
      expect(onlySkipped.err).toMatch(/stdin holds nothing Keyway takes \(see the notes above\)/);
    });

    it('names what is missing when no file is given', async () => {
      const r = await kwctl(['create', '-f']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/kwctl create needs a resource file: kwctl create FILE \(or - for stdin\); -f means --force/);
    });

    it('lets --force win over whatever revision the document carries', async () => {
      const old = (await kwctl(['get', 'roles/dev'])).out;
      expect(parseYaml(old)).toMatchObject({ metadata: { revision: expect.any(String) } });
      // Someone changes the role; the document read before still overwrites it with --force.
      writeFileSync(join(work, 'dev2.yaml'), ROLE('dev', '2h'));
      expect((await kwctl(['create', '-f', join(work, 'dev2.yaml')])).code).toBe(0);
      expect(await kwctl(['create', '-f', '-'], { stdin: old })).toMatchObject({ code: 0, out: 'role "dev" has been updated\n' });
      expect(parseYaml((await kwctl(['get', 'roles/dev'])).out)).toMatchObject({ spec: { options: { max_session_ttl: '4h' } } });
      // A stale revision of the request itself (a read-modify-write) is still refused by the server.
      const got = await admin.call('getResource', { kind: 'role', name: 'dev', withSecrets: false });
      await admin.call('createResources', { resources: [{ kind: 'role', name: 'dev', json: got.json, revision: '' }], force: true });
      await expect(admin.call('createResources', { resources: [{ kind: 'role', name: 'dev', json: got.json, revision: got.revision }], force: true })).rejects.toThrow(
        /changed concurrently/,
      );
    });
  });

  describe('edit', () => {
    const script = (name: string, body: string) => {
      const path = join(work, name);
      writeFileSync(path, `#!/bin/sh\n${body}\n`);
      chmodSync(path, 0o755);
      return path;
    };
    const editorEnv = (editor: string, key: 'EDITOR' | 'VISUAL' = 'EDITOR') => ({ [key]: editor, PATH: process.env['PATH'] ?? '/usr/bin:/bin' });

    it('saves what $EDITOR changed', async () => {
      const editor = script('to-1h.sh', `sed -i 's/max_session_ttl: .*/max_session_ttl: 1h/' "$1"`);
      expect(await kwctl(['edit', 'role/dev'], { env: editorEnv(editor) })).toMatchObject({ code: 0, out: 'role "dev" has been updated\n' });
      expect(parseYaml((await kwctl(['get', 'roles/dev'])).out)).toMatchObject({ spec: { options: { max_session_ttl: '1h' } } });
    });

    it('uses $VISUAL without $EDITOR, and an unchanged file cancels', async () => {
      const editor = script('touch-nothing.sh', `echo "$1" > ${join(work, 'visual-ran')}`);
      expect(await kwctl(['edit', 'roles/dev'], { env: editorEnv(editor, 'VISUAL') })).toMatchObject({ code: 0, out: 'edit canceled, no changes\n' });
      expect(readFileSync(join(work, 'visual-ran'), 'utf8')).toMatch(/role-dev\.yaml/);
    });

    it('refuses to overwrite a change made while the editor was open, and keeps the edited file', async () => {
      const started = join(work, 'editor-started');
      const go = join(work, 'editor-go');
      const editor = script('slow.sh', `touch ${started}\nwhile [ ! -f ${go} ]; do sleep 0.05; done\nsed -i 's/max_session_ttl: .*/max_session_ttl: 3h/' "$1"`);
      const editing = kwctl(['edit', 'role/dev'], { env: editorEnv(editor) });
      while (!existsSync(started)) await new Promise((r) => setTimeout(r, 50));
      writeFileSync(join(work, 'dev5.yaml'), ROLE('dev', '5h'));
      expect((await kwctl(['create', '-f', join(work, 'dev5.yaml')])).code).toBe(0);
      writeFileSync(go, '');
      const r = await editing;
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/role "dev" was changed by someone else while you edited it; nothing was saved/);
      const kept = /kept in (\S+\.yaml):/.exec(r.err)?.[1] ?? '';
      expect(readFileSync(kept, 'utf8')).toMatch(/max_session_ttl: 3h/);
      expect(parseYaml((await kwctl(['get', 'roles/dev'])).out)).toMatchObject({ spec: { options: { max_session_ttl: '5h' } } });
      // The kept file is what the message says to do with it.
      expect(await kwctl(['create', '-f', kept])).toMatchObject({ code: 0, out: 'role "dev" has been updated\n' });
    });

    it('keeps the file when the edit does not validate or renames the resource', async () => {
      const bad = script('bad.sh', `sed -i 's/max_session_ttl: .*/max_session_tll: 3h/' "$1"`);
      const r = await kwctl(['edit', 'role/dev'], { env: editorEnv(bad) });
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/nothing was saved: .*max_session_tll.*your edits are kept in \S+role-dev\.yaml/);
      const rename = script('rename.sh', `sed -i 's/name: dev/name: dev-copy/' "$1"`);
      expect((await kwctl(['edit', 'role/dev'], { env: editorEnv(rename) })).err).toMatch(/kwctl edit changes role "dev" only/);
    });
  });

  describe('get and kube', () => {
    beforeAll(async () => {
      await admin.call('heartbeat', {
        kind: 'kube_server',
        hostId: 'agent-1',
        hostname: 'node-a',
        addr: '',
        version: '0.1.0',
        ttlSeconds: 600,
        kubeClusters: [{ name: 'agent-only', labels: { env: 'dev', team: 'a' } }],
      });
    });

    it('takes comma lists of kinds and names', async () => {
      const r = await kwctl(['get', 'users,roles/dev', '--format', 'json']);
      expect(r.code, r.err).toBe(0);
      const docs = JSON.parse(r.out) as { kind: string; metadata: { name: string } }[];
      expect(docs.filter((d) => d.kind === 'role').map((d) => d.metadata.name)).toEqual(['dev']);
      const text = (await kwctl(['get', 'roles,kube_clusters', '--format', 'text'])).out;
      expect(text).toMatch(/^Role\s+Kubernetes Labels/m);
      expect(text).toMatch(/^Name\s+Labels\s+Agents$/m);
      expect((await kwctl(['get', 'roles,'])).err).toMatch(/"" is not KIND or KIND\/NAME/);
    });

    it('finds a kube cluster by name that only an agent serves, as the list shows it', async () => {
      expect((await kwctl(['get', 'kube_clusters', '--format', 'text'])).out).toMatch(/agent-only\s+env=dev team=a\s+agent-1 \(node-a\)/);
      const one = await kwctl(['get', 'kube_cluster/agent-only']);
      expect(one.code, one.err).toBe(0);
      expect(parseYaml(one.out)).toMatchObject({ kind: 'kube_cluster', metadata: { name: 'agent-only', labels: { env: 'dev' } }, status: { agents: ['agent-1 (node-a)'] } });
      expect((await kwctl(['get', 'kube_cluster/nowhere'])).err).toMatch(/kube_cluster "nowhere" not found/);
      // Its agents are the server's to say: edit leaves status out, and saving stores the cluster.
      const seen = join(work, 'kube-edit-seen');
      const editor = join(work, 'label.sh');
      writeFileSync(editor, `#!/bin/sh\ncp "$1" ${seen}\nsed -i 's/team: a/team: b/' "$1"\n`);
      chmodSync(editor, 0o755);
      const edited = await kwctl(['edit', 'kube_cluster/agent-only'], { env: { EDITOR: editor, PATH: process.env['PATH'] ?? '/usr/bin:/bin' } });
      expect(edited, edited.err).toMatchObject({ code: 0, out: 'kube_cluster "agent-only" has been updated\n' });
      expect(readFileSync(seen, 'utf8')).not.toMatch(/status|agents/);
      expect(parseYaml((await kwctl(['get', 'kube_cluster/agent-only'])).out)).toMatchObject({ metadata: { labels: { team: 'b' } }, status: { agents: ['agent-1 (node-a)'] } });
      // get's output goes back into create (tctl get > file; create -f file), in YAML and JSON.
      for (const format of ['yaml', 'json']) {
        const shown = (await kwctl(['get', 'kube_cluster/agent-only', '--format', format])).out;
        const again = await kwctl(['create', '-f', '-'], { stdin: shown });
        expect(again, again.err).toMatchObject({ code: 0, out: 'kube_cluster "agent-only" has been updated\n' });
        expect(again.err).toMatch(/kube_cluster "agent-only": status \(its agents\) is the server's to say; not sent/);
      }
    });

    it('lists the agents heartbeating as kube_servers', async () => {
      const text = await kwctl(['get', 'kube_servers', '--format', 'text']);
      expect(text.out).toMatch(/^Host\s+Hostname\s+Version\s+Clusters$/m);
      expect(text.out).toMatch(/^agent-1\s+node-a\s+0\.1\.0\s+agent-only$/m);
      const one = parseYaml((await kwctl(['get', 'kube_server/agent-1'])).out) as Record<string, unknown>;
      expect(one).toMatchObject({ kind: 'kube_server', spec: { host_id: 'agent-1', kube_clusters: [{ name: 'agent-only', labels: { env: 'dev', team: 'a' } }] } });
      expect((await kwctl(['get', 'kube_server/agent-9'])).err).toMatch(/kube_server "agent-9" not found/);
      expect((await kwctl(['rm', 'kube_server/agent-1'])).err).toMatch(/heartbeat/);
    });

    it('kube ls prints a table of clusters, their labels, versions and agents', async () => {
      const r = await kwctl(['kube', 'ls']);
      expect(r.out).toMatch(/^Cluster\s+Labels\s+Version\s+Agents$/m);
      expect(r.out).toMatch(/^agent-only\s+env=dev,team=b\s+0\.1\.0\s+agent-1 \(node-a\)$/m);
    });
  });

  describe('version', () => {
    it('prints one line like tctl version, for the command and --version', async () => {
      const cmd = await kwctl(['version']);
      expect(cmd.out).toMatch(/^Keyway v\d+\.\d+\.\d+ git:\S+ node\d+\.\d+\.\d+\n$/);
      expect((await kwctl(['--version'])).out).toBe(cmd.out);
      expect((await kwctl(['version'], { env: { KEYWAY_GIT_COMMIT: 'abc123' } })).out).toMatch(/ git:abc123 /);
    });
  });

  describe('users, tokens, locks', () => {
    it('adds a user with traits and updates roles and traits', async () => {
      const add = await kwctl(['users', 'add', 'ann', '--roles=dev', '--logins=root,ann', '--kubernetes-groups=viewers', '--kubernetes-users=ann@acme']);
      expect(add.code, add.err).toBe(0);
      const user = () => kwctl(['get', 'user/ann', '--format', 'json']).then((r) => (JSON.parse(r.out) as { spec: { roles: string[]; traits: Record<string, string[]> } }[])[0]);
      expect((await user())?.spec).toMatchObject({ roles: ['dev'], traits: { logins: ['root', 'ann'], kubernetes_groups: ['viewers'], kubernetes_users: ['ann@acme'] } });
      const up = await kwctl(['users', 'update', 'ann', '--set-roles=dev,access', '--set-kubernetes-groups=admins,viewers', '--set-logins=']);
      expect(up.err).toBe('');
      expect(up).toMatchObject({ code: 0, out: 'User ann has been updated: set roles to dev,access, logins to (none), kubernetes_groups to admins,viewers\n' });
      expect((await user())?.spec).toEqual({ roles: ['dev', 'access'], traits: { kubernetes_groups: ['admins', 'viewers'], kubernetes_users: ['ann@acme'] } });
      expect((await kwctl(['users', 'update', 'ann'])).err).toMatch(/nothing to update: give --set-roles/);
      expect((await kwctl(['users', 'update', 'ann', '--set-roles=ghost'])).err).toMatch(/role "ghost"/);
      expect((await kwctl(['users', 'update', 'nobody', '--set-roles=dev'])).err).toMatch(/user "nobody" not found/);
    });

    it('creates tokens with labels and prints them as JSON the way tctl does', async () => {
      const r = await kwctl(['tokens', 'add', '--type=kube', '--labels=env=prod,region=eu', '--ttl=2h', '--format=json']);
      expect(r.code, r.err).toBe(0);
      const printed = JSON.parse(r.out) as { token: string; roles: string[]; expires: string };
      expect(Object.keys(printed)).toEqual(['token', 'roles', 'expires']);
      expect(printed.roles).toEqual(['Kube']);
      expect(Math.abs(new Date(printed.expires).getTime() - Date.now() - 2 * 3600_000)).toBeLessThan(60_000);
      const stored = JSON.parse((await admin.call('getResource', { kind: 'token', name: printed.token, withSecrets: false })).json) as { metadata: { labels: Record<string, string> } };
      expect(stored.metadata.labels).toEqual({ env: 'prod', region: 'eu' });
      expect(parseYaml((await kwctl(['tokens', 'add', '--type=proxy', '--format=yaml'])).out)).toMatchObject({ roles: ['Proxy'], token: expect.any(String) });
      expect((await kwctl(['tokens', 'add', '--type=kube', '--labels=env'])).err).toMatch(/--labels: "env" is not KEY=VALUE/);
    });

    it('locks until --expires or for --ttl', async () => {
      const until = new Date(Date.now() + 3 * 3600_000);
      until.setMilliseconds(0);
      const r = await kwctl(['lock', '--user=ann', `--expires=${until.toISOString().replace('.000Z', 'Z')}`]);
      expect(r.code, r.err).toBe(0);
      const name = /"(.+)"/.exec(r.out)?.[1] ?? '';
      const lock = JSON.parse((await admin.call('getResource', { kind: 'lock', name, withSecrets: false })).json) as { spec: { expires: string } };
      expect(Math.abs(new Date(lock.spec.expires).getTime() - until.getTime())).toBeLessThan(5_000);
      expect((await kwctl(['lock', '--user=ann', '--expires=tomorrow'])).err).toMatch(/--expires must be an RFC 3339 time/);
      expect((await kwctl(['lock', '--user=ann', '--expires=2001-01-01T00:00:00Z'])).err).toMatch(/--expires must be in the future/);
      expect((await kwctl(['lock', '--user=ann', '--ttl=1h', `--expires=${until.toISOString()}`])).err).toMatch(/--ttl or --expires, not both/);
      expect((await kwctl(['unlock', '--user=ann'])).code).toBe(0);
    });
  });

  describe('auth export', () => {
    it('prints the TLS CA certificates as PEM and says SSH keys do not exist yet', async () => {
      const ping = await admin.call('ping', {});
      for (const [type, ca] of [['tls-user', 'user'], ['tls-host', 'host'], ['tls', 'host']] as const) {
        const r = await kwctl(['auth', 'export', `--type=${type}`]);
        expect(r.code, r.err).toBe(0);
        expect(new X509Certificate(r.out).fingerprint256).toBe(new X509Certificate(ping.certAuthorities.find((c) => c.type === ca)?.certPem ?? '').fingerprint256);
      }
      for (const type of ['user', 'host']) {
        const r = await kwctl(['auth', 'export', `--type=${type}`]);
        expect(r.code).toBe(1);
        expect(r.err).toMatch(new RegExp(`no SSH certificate authority yet: use --type=tls-${type}`));
      }
      expect((await kwctl(['auth', 'export'])).err).toMatch(/--type/);
    });
  });

  describe('with a kw login instead of an admin identity', () => {
    const kwHome = join(work, 'kw-home');
    const noAdmin = mkdtempSync(join(tmpdir(), 'kwctl-no-admin-'));

    /** Writes the files `kw login` writes, for `user`, pointing at the auth server (the proxy relays it the same way). */
    const loginAs = async (user: string) => {
      const key = generateKeyPair();
      const certs = await admin.call('signUserCerts', { user, publicKeyPem: key.publicKeyPem, ttlSeconds: 3600, kubernetesCluster: '' });
      const dir = join(kwHome, 'profiles', kwProfileKey(address));
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'profile.json'), JSON.stringify({ proxy: address, user, cluster: 'acme', insecure: false }));
      writeFileSync(join(dir, 'key.pem'), key.privateKeyPem);
      writeFileSync(join(dir, 'cert.pem'), certs.certPem);
      writeFileSync(join(dir, 'cas.pem'), certs.hostCaPems.join(''));
      writeFileSync(join(kwHome, 'current-profile'), `${address}\n`);
    };
    const asUser = (args: string[]) => kwctl(args, { env: { KW_HOME: kwHome }, dataDir: noAdmin });

    beforeAll(async () => {
      expect((await kwctl(['create', '-f', '-'], { stdin: READER_ROLE })).code).toBe(0);
      expect((await kwctl(['users', 'add', 'rita', '--roles=role-reader'])).code).toBe(0);
      expect((await kwctl(['users', 'add', 'nora', '--roles=dev'])).code).toBe(0);
    });

    it('reads what the roles allow: a role-reader gets roles', async () => {
      await loginAs('rita');
      const list = await asUser(['get', 'roles', '--format', 'text']);
      expect(list.code, list.err).toBe(0);
      expect(list.out).toMatch(/role-reader/);
      expect((await asUser(['get', 'role/dev'])).code).toBe(0);
    });

    it('is refused, clearly, what the roles do not allow', async () => {
      await loginAs('rita');
      const users = await asUser(['get', 'users']);
      expect(users.code).toBe(1);
      expect(users.err).toMatch(/user "rita" may not list user: no rule of role "role-reader" allows it \(kwctl used your kw login as "rita"/);
      await loginAs('nora');
      const roles = await asUser(['get', 'roles']);
      expect(roles.code).toBe(1);
      expect(roles.err).toMatch(/user "nora" may not list role: no rule of role "dev" allows it/);
    });

    it('prefers the local admin identity, and says what to do with no credentials at all', async () => {
      await loginAs('nora');
      expect((await kwctl(['get', 'users'], { env: { KW_HOME: kwHome } })).code).toBe(0);
      const none = await kwctl(['get', 'roles'], { env: { KW_HOME: join(work, 'no-kw') }, dataDir: noAdmin });
      expect(none.err).toMatch(/no credentials: no admin identity at .* and no kw login/);
    });

    it('prints the signup command that README shows', async () => {
      const reset = await kwctl(['users', 'reset', 'nora']);
      expect(reset.out).toMatch(/^ {2}kw signup [0-9a-f]{48} --auth-server=\S+ --ca-pin=sha256:[0-9a-f]{64}$/m);
      // With a kw login, kwctl reached the auth API through the proxy: the user signs up there too.
      const userAdmin = `kind: role\nversion: v7\nmetadata: {name: user-admin}\nspec:\n  allow:\n    rules: [{resources: [user], verbs: [update]}]\n  deny: {}\n`;
      expect((await kwctl(['create', '-'], { stdin: userAdmin })).code).toBe(0);
      expect((await kwctl(['users', 'add', 'uma', '--roles=user-admin'])).code).toBe(0);
      await loginAs('uma');
      const viaProxy = await asUser(['users', 'reset', 'nora']);
      expect(viaProxy.out, viaProxy.err).toMatch(new RegExp(`^ {2}kw signup [0-9a-f]{48} --proxy=${address.replace(/\./g, '\\.')} --ca-pin=sha256:[0-9a-f]{64}$`, 'm'));
      const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
      expect(readme).toMatch(/kw signup <token> --auth-server=\S+ --ca-pin=sha256:/);
    });
  });
});
