import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readAll, socketPair, startTestKubeApiServer, type TestKubeApiServer } from '@keyway/testing';
import { TunnelSession, serveTunnel, type KubeRequestHead } from '@keyway/tunnel';
import { KubeForwarder } from './forwarder.js';
import { inClusterCredentials, loadKubeconfig } from './kubeconfig.js';

const text = readAll;

// The agent's path end to end: tunnel stream in, forwarder out to an API server.
describe('KubeForwarder behind a tunnel', () => {
  let api: TestKubeApiServer;
  let forwarder: KubeForwarder;
  let session: TunnelSession;
  let served: { close(): void };
  let cluster = '';
  beforeAll(async () => {
    api = await startTestKubeApiServer();
    api.setRbac([{ users: ['alice'], verbs: ['create', 'get'], resources: ['configmaps'], namespaces: ['default'] }]);
    const creds = loadKubeconfig(api.agentKubeconfig);
    cluster = creds[0]?.name ?? '';
    forwarder = new KubeForwarder(creds);
    const [agentSide, proxySide] = await socketPair();
    served = serveTunnel(agentSide, { backend: forwarder, info: () => ({ hostId: 'a', hostname: 'h', version: '1', clusters: [] }) });
    session = new TunnelSession(proxySide);
  });
  afterAll(async () => {
    session?.destroy();
    served?.close();
    forwarder?.close();
    await api?.close();
  });

  const head = (extra: Partial<KubeRequestHead>): KubeRequestHead => ({
    method: 'GET',
    path: '/',
    headers: { accept: 'application/json' },
    cluster,
    user: 'alice',
    groups: ['system:authenticated'],
    ...extra,
  });

  it('sends a request body and brings the answer back on the same tunnel stream', async () => {
    const cm = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'posted' }, data: { k: 'v' } });
    const res = await session.request(
      head({ method: 'POST', path: '/api/v1/namespaces/default/configmaps', headers: { 'content-type': 'application/json', 'content-length': String(cm.length) } }),
      Readable.from([Buffer.from(cm.slice(0, 10)), Buffer.from(cm.slice(10))]),
    );
    expect(res.head.status).toBe(201);
    expect(JSON.parse(res.takeWhole?.()?.toString() ?? (await text(res.body)))).toMatchObject({ metadata: { name: 'posted' }, data: { k: 'v' } });
    expect(api.getObject('configmaps', 'default', 'posted')).toMatchObject({ data: { k: 'v' } });
    const seen = api.requests.find((r) => r.method === 'POST');
    expect(seen).toMatchObject({ user: { username: 'alice' } });
  });

  it('answers with the API server status for a refused request', async () => {
    const res = await session.request(head({ path: '/api/v1/namespaces/kube-system/secrets' }), null);
    const body = await text(res.body);
    expect(res.head.status, body).toBe(403);
    expect(JSON.parse(body)).toMatchObject({ kind: 'Status', code: 403, message: expect.stringMatching(/alice/) });
  });

  it('in-cluster: authenticates with the service account token and CA, impersonating as computed', async () => {
    const saDir = mkdtempSync(join(tmpdir(), 'kw-sa-'));
    writeFileSync(join(saDir, 'ca.crt'), api.caPem);
    writeFileSync(join(saDir, 'token'), 'in-cluster-token\n');
    api.addToken('in-cluster-token', { username: api.users.agent, groups: ['system:serviceaccounts'] });
    api.createObject('configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'seen-in-cluster' } }, { namespace: 'default' });
    const inCluster = new KubeForwarder([inClusterCredentials('here', { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) }, saDir)]);
    try {
      const res = await inCluster.request({ ...head({ path: '/api/v1/namespaces/default/configmaps/seen-in-cluster' }), cluster: 'here' }, null);
      const body = res.takeWhole?.()?.toString() ?? (await text(res.body));
      expect(res.head.status, body).toBe(200);
      const seen = api.requests.filter((r) => r.path === '/api/v1/namespaces/default/configmaps/seen-in-cluster').at(-1);
      expect(seen).toMatchObject({ authenticated: { username: api.users.agent }, impersonated: true, user: { username: 'alice' } });
    } finally {
      inCluster.close();
    }
    expect(() => inClusterCredentials('here', {})).toThrow(/not running inside Kubernetes/);
  });

  it('streams a large list with backpressure: a slow reader gets every byte', async () => {
    api.setRbac([{ users: ['alice'], verbs: ['list'], resources: ['configmaps'], namespaces: ['default'] }]);
    api.setSyntheticList({ namespace: 'default', count: 3000, itemBytes: 1024 });
    try {
      const res = await forwarder.request(head({ path: '/api/v1/namespaces/default/configmaps' }), null);
      expect(res.head.status).toBe(200);
      expect(res.takeWhole?.()).toBeUndefined();
      const chunks: Buffer[] = [];
      let paused = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        // Slower than the server: the body must wait for us rather than pile up or drop.
        if (chunks.length % 50 === 0) {
          paused++;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      const list = JSON.parse(Buffer.concat(chunks).toString()) as { items: unknown[] };
      expect(list.items.length).toBeGreaterThanOrEqual(3000);
      expect(paused).toBeGreaterThan(0);
    } finally {
      api.setSyntheticList(null);
    }
  });

  it('abandoning a streaming body ends that request and leaves the forwarder usable', async () => {
    api.setRbac([{ users: ['alice'], verbs: ['watch', 'get'], resources: ['configmaps'], namespaces: ['default'] }]);
    const res = await forwarder.request(head({ path: '/api/v1/namespaces/default/configmaps?watch=1' }), null);
    expect(res.head.status).toBe(200);
    expect(res.takeWhole?.()).toBeUndefined();
    // Events for what exists come first; then the one created below.
    let seen = '';
    const sawIt = new Promise<void>((resolve) =>
      res.body.on('data', (d: Buffer) => {
        seen += d.toString();
        if (seen.includes('"watched"')) resolve();
      }),
    );
    api.createObject('configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'watched' } }, { namespace: 'default' });
    await sawIt;
    expect(api.openWatches).toBe(1);
    res.body.destroy();
    // The API server sees the request end: nothing holds its connection open.
    await vi.waitFor(() => expect(api.openWatches).toBe(0), { timeout: 5_000 });
    const again = await forwarder.request(head({ path: '/api/v1/namespaces/default/configmaps/watched' }), null);
    expect(again.head.status).toBe(200);
    expect(JSON.parse(again.takeWhole?.()?.toString() ?? '{}')).toMatchObject({ metadata: { name: 'watched' } });
  });
});
