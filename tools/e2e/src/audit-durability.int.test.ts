import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBE_SNI } from '@keyway/client';
import { freePort, startOwnPostgres, startProcess, startTestKubeApiServer, type LongRunning, type OwnService, type TestKubeApiServer } from '@keyway/testing';
import { kwctlIn, waitUntil } from './harness.js';

// Nothing answered is lost, nothing is stored twice. Every part is its own process: auth
// (Postgres and Redis of this test's own, so they can be stopped), and a keyway-proxy
// serving the test API server itself. Each request names a pod `<tag>-<i>`, so what was
// answered can be counted against what was stored.
const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = (name: string) => join(root, 'node_modules/.bin', name);
const CLUSTER = 'agent'; // the context name in the test API server's agent kubeconfig

const RESOURCES = `kind: role
version: v7
metadata: {name: reader}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: [auditors]
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get]}]
---
kind: user
version: v2
metadata: {name: auditee}
spec: {roles: [reader]}
`;

describe('audit events survive killed proxies and workers, and a Redis restart while Postgres is down', () => {
  let api: TestKubeApiServer;
  let pgsql: OwnService;
  let redisPort: number;
  let redis: LongRunning;
  let auth: LongRunning;
  let proxy: LongRunning;
  let dir: string;
  let authAddr: string;
  let proxyPort: number;
  let token: string;
  let creds: { cert: string; key: string; ca: string };
  const kwctl = kwctlIn(() => join(dir, 'auth'));
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ PATH: process.env['PATH'], HOME: dir, KEYWAY_LOG_LEVEL: 'info', ...extra });
  const answered = new Map<string, number>();

  const startRedis = async () => {
    const p = startProcess('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { PATH: process.env['PATH'] });
    await p.waitFor(/Ready to accept connections/, 10_000);
    return p;
  };
  const startAuth = async () => {
    const p = startProcess(
      bin('keyway'),
      ['start', '--data-dir', join(dir, 'auth'), '--auth-listen-addr', authAddr],
      env({ KEYWAY_PROXY_SERVICE__ENABLED: 'false', KEYWAY_DATABASE_URL: pgsql.url, KEYWAY_REDIS_URL: `redis://127.0.0.1:${redisPort}`, KEYWAY_CA_KEY: 'audit-durability-key-0123456789' }),
    );
    await p.waitFor(/auth service \(gRPC, mTLS\):\s+(\S+)/, 90_000);
    return p;
  };
  const startProxy = async () => {
    const p = startProcess(
      bin('keyway-proxy'),
      ['--auth-server', authAddr, '--token', token, '--listen-addr', `127.0.0.1:${proxyPort}`, '--data-dir', join(dir, 'proxy')],
      env({ KEYWAY_PROXY_SERVICE__REDIS_URL: `redis://127.0.0.1:${redisPort}`, KEYWAY_PROXY_SERVICE__KUBERNETES__KUBECONFIG_FILE: api.agentKubeconfig }),
    );
    await p.waitFor(/listening on (\S+?)[,\s]/, 90_000);
    return p;
  };
  const get = (path: string, headers: Record<string, string> = {}) =>
    new Promise<number>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port: proxyPort, path, headers, servername: KUBE_SNI, ca: creds.ca, cert: creds.cert, key: creds.key, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
  /** One request for pod <tag>-<i>; counted as generated once answered. */
  const request = async (tag: string, i: number) => {
    const name = `${tag}-${i}`;
    const code = await get(`/api/v1/namespaces/default/pods/${name}`);
    answered.set(name, code);
    return code;
  };
  const storedNames = async (tag: string): Promise<string[]> => {
    const c = new pg.Client({ connectionString: pgsql.url });
    await c.connect();
    try {
      const r = await c.query<{ name: string }>(
        "SELECT data->>'resource_name' AS name FROM audit_events WHERE event = 'kube.request' AND data->>'resource_name' LIKE $1 ORDER BY id",
        [`${tag}-%`],
      );
      return r.rows.map((row) => row.name);
    } finally {
      await c.end();
    }
  };
  /** Waits until every answered <tag> request is stored; prints and returns the counts. */
  const account = async (tag: string, timeoutMs = 90_000) => {
    const want = [...answered.keys()].filter((n) => n.startsWith(`${tag}-`));
    await waitUntil(async () => new Set(await storedNames(tag).catch(() => [])).size >= want.length, `${want.length} ${tag} events stored`, timeoutMs).catch(() => undefined);
    const stored = await storedNames(tag);
    const distinct = new Set(stored);
    const counts = { generated: want.length, stored: stored.length, lost: want.filter((n) => !distinct.has(n)).length, duplicated: stored.length - distinct.size };
    console.log(`[audit-durability] ${tag}: generated ${counts.generated}, stored ${counts.stored}, lost ${counts.lost}, duplicated ${counts.duplicated}`);
    return { ...counts, order: stored };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-durable-'));
    api = await startTestKubeApiServer();
    api.setRbac([{ groups: ['auditors'], verbs: ['get'], resources: ['pods'], namespaces: ['default'] }]);
    pgsql = await startOwnPostgres();
    redisPort = await freePort();
    redis = await startRedis();
    authAddr = `127.0.0.1:${await freePort()}`;
    proxyPort = await freePort();
    auth = await startAuth();
    expect((await kwctl(['create', '-f', '-'], RESOURCES)).code).toBe(0);
    token = /The invite token: (\w+)/.exec((await kwctl(['tokens', 'add', '--type=proxy', '--ttl=1h'])).out)?.[1] as string;
    expect(token).toBeTruthy();
    proxy = await startProxy();
    expect((await kwctl(['auth', 'sign', '--user=auditee', `--kube-cluster=${CLUSTER}`, '--format=tls', `--out=${join(dir, 'u')}`])).code).toBe(0);
    creds = { cert: readFileSync(join(dir, 'u.crt'), 'utf8'), key: readFileSync(join(dir, 'u.key'), 'utf8'), ca: readFileSync(join(dir, 'u.cas'), 'utf8') };
    // The proxy learns the user from auth's change feed; wait until it serves them.
    await waitUntil(async () => (await get('/api/v1/namespaces/default/pods/warmup').catch(() => 0)) === 404, 'the proxy to serve auditee', 60_000);
  }, 240_000);

  afterAll(async () => {
    await proxy?.stop('SIGTERM', 5_000);
    await auth?.stop('SIGTERM', 5_000);
    await redis?.stop();
    await pgsql?.destroy();
    await api?.close();
  });

  it('kill -9 of the proxy right after it answered: the event is stored after the restart', async () => {
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 10; i++) expect(await request('kill', round * 10 + i)).toBe(404);
      // The last answer is in; the proxy dies before its batch (100 ms linger) can leave.
      proxy.child.kill('SIGKILL');
      await proxy.exited;
      proxy = await startProxy();
      await waitUntil(async () => (await get('/api/v1/namespaces/default/pods/warmup').catch(() => 0)) === 404, 'the restarted proxy', 60_000);
    }
    const c = await account('kill');
    expect(c.generated).toBe(50);
    expect(c.lost).toBe(0);
    expect(c.duplicated).toBe(0);
  }, 300_000);

  it('Redis restarted without persistence while Postgres is down: 0 lost, 0 duplicated', async () => {
    await pgsql.stop();
    for (let i = 0; i < 300; i++) expect(await request('redis', i)).toBe(404);
    // Jobs are in Redis (one held by the worker, retrying the store); Redis forgets them all.
    await new Promise((r) => setTimeout(r, 1_000));
    await redis.stop('SIGKILL');
    redis = await startRedis();
    for (let i = 300; i < 400; i++) expect(await request('redis', i)).toBe(404);
    await pgsql.start();
    const c = await account('redis');
    expect(c.generated).toBe(400);
    expect(c.lost).toBe(0);
    expect(c.duplicated).toBe(0);
  }, 300_000);

  it('a worker killed holding a job: the job is stored within seconds of a worker coming back, in order', async () => {
    await pgsql.stop();
    for (let i = 0; i < 100; i++) expect(await request('worker', i)).toBe(404);
    // The worker holds the proxy's job, retrying the store; it dies with it.
    await new Promise((r) => setTimeout(r, 1_500));
    auth.child.kill('SIGKILL');
    await auth.exited;
    await pgsql.start();
    const restartedAt = Date.now();
    auth = await startAuth();
    const authUpMs = Date.now() - restartedAt;
    await waitUntil(async () => (await storedNames('worker').catch(() => [])).length >= 100, '100 worker events stored', 90_000).catch(() => undefined);
    const storedMs = Date.now() - restartedAt;
    console.log(`[audit-durability] worker: auth back after ${authUpMs} ms, all stored ${storedMs} ms after the restart began (${storedMs - authUpMs} ms after auth was up)`);
    const c = await account('worker');
    expect(c.lost).toBe(0);
    expect(c.duplicated).toBe(0);
    // One batch in flight per proxy: stored in the order answered.
    expect(c.order).toEqual(Array.from({ length: 100 }, (_, i) => `worker-${i}`));
  }, 300_000);

  it('a refused request is found by namespace, kind and cluster', async () => {
    // Refused before RBAC looks at it (a header only Keyway refuses): it still names its target.
    expect(await get('/api/v1/namespaces/hidden-ns/pods/secret-pod', { 'Impersonate-Uid': 'x' })).toBe(403);
    let events: Record<string, unknown>[] = [];
    await waitUntil(
      async () => {
        const r = await kwctl(['audit', 'search', '--namespace', 'hidden-ns', '--format', 'json']);
        events = r.out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
        return events.length > 0;
      },
      'the refused request in a search by namespace',
      30_000,
    );
    const e = events[0] as Record<string, unknown>;
    expect(e['response_code']).toBe(403);
    expect(e['resource_namespace']).toBe('hidden-ns');
    expect(e['resource_kind']).toBe('pods');
    expect(e['resource_name']).toBe('secret-pod');
    expect(e['kubernetes_cluster']).toBe(CLUSTER);
    expect(e['user']).toBe('auditee');
  }, 60_000);
});
