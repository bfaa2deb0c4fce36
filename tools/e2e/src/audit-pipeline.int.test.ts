import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBE_SNI } from '@keyway/client';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { searchAuditEvents } from '@keyway/store';
import {
  adminDatabaseUrl,
  createTestDatabase,
  startProcess,
  startTcpBalancer,
  startTestKubeApiServer,
  type LongRunning,
  type TcpBalancer,
  type TestDatabase,
  type TestKubeApiServer,
} from '@keyway/testing';
import { kwctlIn, startTestAgent, waitUntil } from './harness.js';

// Nothing is lost: events travel proxy → BullMQ on Redis → auth's worker → Postgres. With
// Redis stopped for 30 s while 1,000 requests run, and then with Postgres unreachable for
// 30 s, every kube.request event still lands, in order, exactly once.
const OUTAGE_MS = 30_000;
const REQUESTS = 1000;

describe('audit pipeline survives Redis and Postgres outages', () => {
  let api: TestKubeApiServer;
  let tdb: TestDatabase;
  let pgFront: TcpBalancer;
  let pgPort: number;
  let redis: LongRunning;
  let redisPort: number;
  let stack: Stack;
  let agent: KubeAgent;
  let dir: string;
  let creds: { cert: string; key: string; ca: string };
  const kwctl = kwctlIn(() => dir);

  const startRedis = async () => {
    const p = startProcess('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { PATH: process.env['PATH'] });
    await p.waitFor(/Ready to accept connections/, 10_000);
    return p;
  };
  const get = (path: string) => {
    const [host, port] = (stack.proxyAddress as string).split(':');
    return new Promise<number>((resolve, reject) => {
      https
        .get({ host, port: Number(port), path, servername: KUBE_SNI, ca: creds.ca, cert: creds.cert, key: creds.key, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
  };
  const runRequests = async (tag: string) => {
    for (let i = 0; i < REQUESTS; i++) expect(await get(`/api/v1/namespaces/default/pods/${tag}-${i}`)).toBe(404);
  };
  const expectAllRecorded = async (tag: string) => {
    const names = async () =>
      (await searchAuditEvents(stack.auth.store, { event: 'kube.request', limit: 10_000 }))
        .map((e) => String(e.data['resource_name'] ?? ''))
        .filter((n) => n.startsWith(`${tag}-`))
        .reverse();
    await waitUntil(async () => (await names()).length >= REQUESTS, `${REQUESTS} ${tag} events`, 60_000);
    const recorded = await names();
    expect(recorded).toEqual(Array.from({ length: REQUESTS }, (_, i) => `${tag}-${i}`));
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-audit-'));
    api = await startTestKubeApiServer();
    api.setRbac([{ groups: ['auditors'], verbs: ['get'], resources: ['pods'], namespaces: ['default'] }]);
    tdb = await createTestDatabase();
    // Postgres behind a forwarder the test can cut.
    const pg = new URL(adminDatabaseUrl());
    pgFront = await startTcpBalancer([`${pg.hostname}:${pg.port || 5432}`]);
    pgPort = Number(pgFront.address.split(':')[1]);
    const dbUrl = new URL(tdb.url);
    dbUrl.host = pgFront.address;
    const probe = await startTcpBalancer(['127.0.0.1:1']); // any free port for Redis
    redisPort = Number(probe.address.split(':')[1]);
    await probe.close();
    redis = await startRedis();
    const config = loadConfig({
      env: {
        KEYWAY_DATA_DIR: dir,
        KEYWAY_DATABASE_URL: dbUrl.toString(),
        KEYWAY_CA_KEY: 'audit-pipeline-key-0123456789',
        KEYWAY_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0',
      },
    });
    stack = await startStack(config, silentLogger());
    expect(
      (
        await kwctl(
          ['create', '-f', '-'],
          `kind: role\nversion: v7\nmetadata: {name: reader}\nspec: {allow: {kubernetes_labels: {'*': '*'}, kubernetes_groups: [auditors], kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get]}]}}\n---\nkind: user\nversion: v2\nmetadata: {name: auditee}\nspec: {roles: [reader]}\n`,
        )
      ).code,
    ).toBe(0);
    agent = await startTestAgent(stack, { kubeconfig: api.agentKubeconfig, cluster: 'kubernetes', labels: {}, dir, kwctl });
    expect((await kwctl(['auth', 'sign', '--user=auditee', '--kube-cluster=kubernetes', '--format=tls', `--out=${join(dir, 'u')}`])).code).toBe(0);
    creds = { cert: readFileSync(join(dir, 'u.crt'), 'utf8'), key: readFileSync(join(dir, 'u.key'), 'utf8'), ca: readFileSync(join(dir, 'u.cas'), 'utf8') };
  }, 90_000);

  afterAll(async () => {
    await agent?.close();
    await stack?.close();
    await redis?.stop();
    await pgFront?.close();
    await api?.close();
    await tdb?.drop();
  });

  it('keeps every event while Redis is down', async () => {
    await redis.stop('SIGKILL');
    const downAt = Date.now();
    await runRequests('redis');
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - downAt))));
    redis = await startRedis();
    await expectAllRecorded('redis');
  }, 180_000);

  it('keeps every event while Postgres is unreachable', async () => {
    await pgFront.close();
    const downAt = Date.now();
    await runRequests('postgres');
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - downAt))));
    const pg = new URL(adminDatabaseUrl());
    pgFront = await startTcpBalancer([`${pg.hostname}:${pg.port || 5432}`], { port: pgPort });
    await expectAllRecorded('postgres');
  }, 180_000);
});
