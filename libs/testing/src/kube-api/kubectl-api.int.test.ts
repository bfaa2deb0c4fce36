/**
 * The real kubectl against the test API server: discovery, get/list/watch, create/delete
 * from YAML, logs, impersonation and RBAC, directly with the admin identity and through the
 * impersonating agent identity (kubectl --as/--as-group), as Keyway's agent will use it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKubectl, startKubectl } from './kubectl.js';
import { startTestKubeApiServer, type TestKubeApiServer } from './server.js';

let server: TestKubeApiServer;
const admin = (args: string[], input?: string) => runKubectl(args, { kubeconfig: server.adminKubeconfig, ...(input !== undefined ? { input } : {}) });
const agentAs = (user: string, groups: string[], args: string[]) =>
  runKubectl(['--as', user, ...groups.flatMap((g) => ['--as-group', g]), ...args], { kubeconfig: server.agentKubeconfig });

beforeAll(async () => {
  server = await startTestKubeApiServer({
    namespaces: ['team-a'],
    pods: [
      { name: 'web-1', labels: { app: 'web' }, logs: 'web-1 started\nweb-1 ready\n' },
      { name: 'web-2', labels: { app: 'web' }, containers: ['app', 'sidecar'], logs: { app: 'app says hi\n', sidecar: 'sidecar line 1\nsidecar line 2\nsidecar line 3\n' } },
      { name: 'db-1', namespace: 'team-a', labels: { app: 'db' } },
    ],
  });
});

afterAll(async () => {
  await server?.close();
});

describe('discovery', () => {
  it('serves /version, /api and api-resources as kubectl expects', async () => {
    const raw = await admin(['get', '--raw', '/api']);
    expect(raw.code).toBe(0);
    expect(JSON.parse(raw.stdout)).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });

    const resources = await admin(['api-resources']);
    expect(resources.code, resources.stderr).toBe(0);
    expect(resources.stdout).toMatch(/^pods\s+po\s+v1\s+true\s+Pod$/m);
    expect(resources.stdout).toMatch(/^deployments\s+deploy\s+apps\/v1\s+true\s+Deployment$/m);
    expect(resources.stdout).toMatch(/^namespaces\s+ns\s+v1\s+false\s+Namespace$/m);

    const version = await admin(['version', '-o', 'json']);
    expect(JSON.parse(version.stdout).serverVersion).toMatchObject({ major: '1', minor: '32' });
  });

  it('lets any authenticated identity read discovery, even the agent itself', async () => {
    const r = await runKubectl(['get', '--raw', '/apis'], { kubeconfig: server.agentKubeconfig });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).groups.map((g: { name: string }) => g.name)).toContain('apps');
  });
});

describe('get and list', () => {
  it('prints pods through server-side Table printing', async () => {
    const r = await admin(['get', 'pods']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/m);
    expect(r.stdout).toMatch(/^web-1\s+1\/1\s+Running\s+0\s+\d+s$/m);
    expect(r.stdout).toMatch(/^web-2\s+2\/2\s+Running/m);
    expect(r.stdout).not.toContain('db-1');
    const table = server.requests.find((q) => q.path === '/api/v1/namespaces/default/pods' && q.verb === 'list');
    expect(table?.headers.accept).toContain('as=Table');
  });

  it('lists across namespaces, by label, and as JSON', async () => {
    const all = await admin(['get', 'pods', '-A', '-o', 'wide']);
    expect(all.stdout).toMatch(/^team-a\s+db-1\s+1\/1\s+Running\s+0\s+\S+\s+10\.244\.0\.\d+\s+keyway-test-node/m);

    const byLabel = await admin(['get', 'pods', '-l', 'app=web', '-o', 'name']);
    expect(byLabel.stdout.trim().split('\n')).toEqual(['pod/web-1', 'pod/web-2']);

    const json = await admin(['get', 'pods', '-n', 'team-a', '-o', 'json']);
    const list = JSON.parse(json.stdout);
    expect(list.kind).toBe('List');
    expect(list.items.map((p: { metadata: { name: string } }) => p.metadata.name)).toEqual(['db-1']);
  });

  it('pages lists with limit/continue (kubectl --chunk-size)', async () => {
    for (let i = 0; i < 5; i++) server.createObject('configmaps', { metadata: { name: `page-${i}` }, data: { i: String(i) } }, { namespace: 'team-a' });
    const before = server.requests.length;
    const r = await admin(['get', 'configmaps', '-n', 'team-a', '--chunk-size=2', '-o', 'name']);
    expect(r.stdout.trim().split('\n')).toEqual([0, 1, 2, 3, 4].map((i) => `configmap/page-${i}`));
    const pages = server.requests.slice(before).filter((q) => q.path === '/api/v1/namespaces/team-a/configmaps');
    expect(pages.map((q) => q.query.get('limit'))).toEqual(['2', '2', '2']);
    expect(pages.filter((q) => q.query.has('continue'))).toHaveLength(2);
  });

  it('reports a missing object as kube does', async () => {
    const r = await admin(['get', 'pod', 'nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Error from server (NotFound): pods "nope" not found');
  });
});

describe('watch', () => {
  it('prints the current pods, then the ones created after', async () => {
    const watch = startKubectl(['get', 'pods', '-w'], { kubeconfig: server.adminKubeconfig });
    try {
      await watch.waitFor(/web-2/, 15_000);
      server.addPod({ name: 'late-arrival' });
      await watch.waitFor(/^late-arrival\s+1\/1\s+Running/m, 15_000);
      const w = server.requests.find((q) => q.path === '/api/v1/namespaces/default/pods' && q.verb === 'watch');
      expect(w?.query.get('resourceVersion')).toMatch(/^\d+$/);
    } finally {
      await watch.stop();
      server.deleteObject('pods', 'default', 'late-arrival');
    }
  });

  it('ends a watch after timeoutSeconds (kubectl --request-timeout)', async () => {
    const started = Date.now();
    const r = await runKubectl(['get', 'configmaps', '-w', '--watch-only', '--request-timeout=2s'], { kubeconfig: server.adminKubeconfig, timeoutMs: 20_000 });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stderr).not.toContain('panic');
  });
});

describe('create and delete from YAML', () => {
  it('creates, reads back, applies and deletes a configmap', async () => {
    const file = join(server.dir, 'settings.yaml');
    await writeFile(file, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {tier: test}\ndata:\n  color: blue\n');
    const created = await admin(['create', '-f', file]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout.trim()).toBe('configmap/settings created');
    expect(server.getObject('configmaps', 'default', 'settings')?.['data']).toEqual({ color: 'blue' });

    const again = await admin(['create', '-f', file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('configmaps "settings" already exists');

    await writeFile(file, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {tier: test}\ndata:\n  color: green\n');
    const applied = await admin(['apply', '-f', file]);
    expect(applied.code, applied.stderr).toBe(0);
    const got = await admin(['get', 'configmap', 'settings', '-o', 'jsonpath={.data.color}']);
    expect(got.stdout).toBe('green');

    const deleted = await admin(['delete', '-f', file]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout.trim()).toBe('configmap "settings" deleted');
    expect(server.getObject('configmaps', 'default', 'settings')).toBeUndefined();
  });

  it('creates from stdin into a namespace and deletes by name', async () => {
    const created = await admin(['create', '-n', 'team-a', '-f', '-'], '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"token"},"stringData":{"k":"v"}}');
    expect(created.stdout.trim()).toBe('secret/token created');
    expect(server.getObject('secrets', 'team-a', 'token')?.['data']).toEqual({ k: Buffer.from('v').toString('base64') });
    const deleted = await admin(['delete', 'secret', 'token', '-n', 'team-a']);
    expect(deleted.stdout.trim()).toBe('secret "token" deleted');
  });
});

describe('typed-client requests (protobuf bodies)', () => {
  it('creates configmaps, secrets and namespaces imperatively', async () => {
    const cm = await admin(['create', 'configmap', 'literal', '--from-literal=a=1', '--from-literal=b=2']);
    expect(cm.stdout.trim(), cm.stderr).toBe('configmap/literal created');
    expect(server.getObject('configmaps', 'default', 'literal')?.['data']).toEqual({ a: '1', b: '2' });
    const secret = await admin(['create', 'secret', 'generic', 'pw', '--from-literal=password=hunter2', '--type=example.com/login']);
    expect(secret.stdout.trim(), secret.stderr).toBe('secret/pw created');
    expect(server.getObject('secrets', 'default', 'pw')).toMatchObject({ type: 'example.com/login', data: { password: Buffer.from('hunter2').toString('base64') } });
    const ns = await admin(['create', 'namespace', 'scratch']);
    expect(ns.stdout.trim()).toBe('namespace/scratch created');
    const unsupported = await admin(['create', 'deployment', 'web', '--image=nginx']);
    expect(unsupported.stderr).toContain('cannot decode this protobuf body (kind Deployment)');
  });

  it('answers kubectl auth whoami and auth can-i for the impersonated identity', async () => {
    const who = await agentAs('frank', ['devs', 'qa'], ['auth', 'whoami', '-o', 'json']);
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout).status.userInfo).toEqual({ username: 'frank', groups: ['devs', 'qa', 'system:authenticated'] });
    server.setRbac([{ groups: ['devs'], verbs: ['list'], resources: ['pods'], namespaces: ['default'] }]);
    const yes = await agentAs('frank', ['devs'], ['auth', 'can-i', 'list', 'pods']);
    expect([yes.code, yes.stdout.trim()]).toEqual([0, 'yes']);
    const no = await agentAs('frank', ['devs'], ['auth', 'can-i', 'delete', 'pods']);
    expect([no.code, no.stdout.trim()]).toEqual([1, 'no']);
    server.setRbac([]);
  });
});

describe('logs', () => {
  it('returns the configured text, per container and with --tail', async () => {
    const one = await admin(['logs', 'web-1']);
    expect(one.stdout).toBe('web-1 started\nweb-1 ready\n');
    const side = await admin(['logs', 'web-2', '-c', 'sidecar', '--tail=2']);
    expect(side.stdout).toBe('sidecar line 2\nsidecar line 3\n');
    const dflt = await admin(['logs', 'db-1', '-n', 'team-a']);
    expect(dflt.stdout).toBe('db-1 main line 1\ndb-1 main line 2\ndb-1 main line 3\n');
  });

  it('follows a live log (-f) as lines are appended', async () => {
    server.addPod({ name: 'chatty', logs: 'first\n' });
    const follow = startKubectl(['logs', '-f', 'chatty'], { kubeconfig: server.adminKubeconfig });
    try {
      await follow.waitFor(/first\n/, 15_000);
      server.appendPodLog('default', 'chatty', 'second\n');
      await follow.waitFor(/second\n/, 15_000);
      server.endPodLog('default', 'chatty');
      expect(await follow.exited).toBe(0);
      expect(follow.stdout()).toBe('first\nsecond\n');
    } finally {
      await follow.stop();
    }
  });
});

describe('impersonation and RBAC', () => {
  it('lets the agent impersonate, and applies RBAC to the impersonated identity', async () => {
    server.setRbac([
      { groups: ['viewers'], verbs: ['get', 'list', 'watch'], resources: ['pods', 'pods/log'], namespaces: ['default'] },
      { users: ['alice'], verbs: ['get'], resources: ['configmaps'], resourceNames: ['page-0'], namespaces: ['team-a'] },
    ]);
    const before = server.requests.length;
    const ok = await agentAs('alice', ['viewers'], ['get', 'pods', '-o', 'name']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('pod/web-1');
    const list = server.requests.slice(before).find((q) => q.path === '/api/v1/namespaces/default/pods');
    expect(list?.headers['impersonate-user']).toBe('alice');
    expect(list?.headersDistinct['impersonate-group']).toEqual(['viewers']);
    expect(list?.authenticated?.username).toBe('keyway-agent');
    expect(list?.impersonated).toBe(true);
    expect(list?.user).toEqual({ username: 'alice', groups: ['viewers', 'system:authenticated'] });

    const logs = await agentAs('alice', ['viewers'], ['logs', 'web-1']);
    expect(logs.stdout).toBe('web-1 started\nweb-1 ready\n');

    const other = await agentAs('alice', ['viewers'], ['get', 'pods', '-n', 'team-a']);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "team-a"');

    const named = await agentAs('alice', [], ['get', 'configmap', 'page-0', '-n', 'team-a', '-o', 'name']);
    expect(named.stdout.trim()).toBe('configmap/page-0');
    const notNamed = await agentAs('alice', [], ['get', 'configmap', 'page-1', '-n', 'team-a']);
    expect(notNamed.stderr).toContain('configmaps "page-1" is forbidden: User "alice" cannot get resource "configmaps" in API group "" in the namespace "team-a"');

    const noGroup = await agentAs('bob', [], ['delete', 'pod', 'web-1']);
    expect(noGroup.stderr).toContain('pods "web-1" is forbidden: User "bob" cannot delete resource "pods" in API group "" in the namespace "default"');
    expect(server.getObject('pods', 'default', 'web-1')).toBeDefined();
  });

  it('gives the agent identity itself no access beyond impersonation', async () => {
    const r = await runKubectl(['get', 'pods'], { kubeconfig: server.agentKubeconfig });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('pods is forbidden: User "keyway-agent" cannot list resource "pods" in API group "" in the namespace "default"');
  });

  it('refuses impersonation by an identity that may not impersonate', async () => {
    const r = await runKubectl(['get', 'pods', '--as', 'alice'], { kubeconfig: server.nobodyKubeconfig });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Error from server (Forbidden): users "alice" is forbidden: User "nobody" cannot impersonate resource "users" in API group "" at the cluster scope');
    const g = await runKubectl(['get', 'pods', '--as', 'nobody', '--as-group', 'system:masters'], { kubeconfig: server.nobodyKubeconfig });
    expect(g.stderr).toContain('users "nobody" is forbidden: User "nobody" cannot impersonate resource "users"');
  });

  it('lets the admin do anything, and impersonate', async () => {
    const r = await admin(['get', 'pods', '--as', 'carol', '--as-group', 'system:masters', '-o', 'name']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('pod/web-1');
  });
});
