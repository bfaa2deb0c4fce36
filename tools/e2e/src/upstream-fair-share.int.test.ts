import { mkdtempSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { KUBE_SNI } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { DEFAULT_UPSTREAM_LIMITS } from '@keyway/forwarder';
import { silentLogger } from '@keyway/log';
import { startTestKubeApiServer, type TestKubeApiServer } from '@keyway/testing';
import { kwctlIn, startTestAgent } from './harness.js';

// The finding: one user allowed to watch pods could block a cluster for everybody by
// opening ~520 watches (the agent's one upstream pool was shared and capped). Now streams
// have their own pool, shared per user: mallory's 600 watches through the proxy and an agent
// get her share and clear 429s for the rest, and ada's get, and ada's own watch, still work —
// though both are the same Kubernetes user (the role maps everyone to one service account):
// the share is per Keyway user.

const RESOURCES = `kind: role
version: v7
metadata: {name: watchers}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: [devs]
    kubernetes_users: [watcher-sa]
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list, watch]}]
---
kind: user
version: v2
metadata: {name: mallory}
spec: {roles: [watchers]}
---
kind: user
version: v2
metadata: {name: ada}
spec: {roles: [watchers]}
`;

interface Tls {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

describe('upstream capacity is shared fairly between users', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let agent: KubeAgent;
  let dir: string;
  const users: Record<string, Tls> = {};
  const kwctl = kwctlIn(() => dir);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-fair-'));
    api = await startTestKubeApiServer();
    api.addPod({ name: 'web', namespace: 'default' });
    api.setRbac([{ groups: ['devs'], verbs: ['get', 'list', 'watch'], resources: ['pods'], namespaces: ['default'] }]);
    const config = loadConfig({ env: { KEYWAY_DATA_DIR: dir, KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'fair' } });
    stack = await startStack(config, silentLogger());
    expect((await kwctl(['create', '-f', '-'], RESOURCES)).code).toBe(0);
    agent = await startTestAgent(stack, { kubeconfig: api.agentKubeconfig, cluster: 'shared', labels: { env: 'dev' }, dir, kwctl });
    for (const user of ['mallory', 'ada']) {
      const out = join(dir, user);
      expect((await kwctl(['auth', 'sign', `--user=${user}`, '--kube-cluster=shared', '--format=tls', `--out=${out}`])).code).toBe(0);
      users[user] = { cert: readFileSync(`${out}.crt`), key: readFileSync(`${out}.key`), ca: readFileSync(`${out}.cas`) };
    }
  }, 90_000);

  afterAll(async () => {
    await agent?.close();
    await stack?.close();
    await api?.close();
  });

  const connect = (user: string) => {
    const session = http2.connect(`https://${stack.proxyAddress}`, { servername: KUBE_SNI, ...users[user] });
    session.on('error', () => undefined);
    return session;
  };

  /** Sends a request; resolves at its response head with the status and, for a non-200, the whole body. */
  const ask = (session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string; stream: http2.ClientHttp2Stream }> =>
    new Promise((resolve, reject) => {
      const stream = session.request({ ':path': path, accept: 'application/json' });
      stream.on('error', reject);
      stream.once('response', (headers) => {
        const status = Number(headers[':status']);
        if (status === 200 && path.includes('watch=true')) return resolve({ status, body: '', stream });
        let body = '';
        stream.on('data', (d: Buffer) => (body += d.toString()));
        stream.once('end', () => resolve({ status, body, stream }));
      });
    });

  it('600 watches of one user: her share opens, the rest get 429 Status, and another user is served at once', async () => {
    const mallory = connect('mallory');
    // In waves of 50: the whole stack (auth, proxy, agent and API server) shares this one
    // process, where 200 TLS connects to the API server at once can exceed the connect timeout.
    const watches: Awaited<ReturnType<typeof ask>>[] = [];
    for (let wave = 0; wave < 12; wave++) {
      watches.push(...(await Promise.all(Array.from({ length: 50 }, () => ask(mallory, '/api/v1/namespaces/default/pods?watch=true')))));
    }
    const open = watches.filter((w) => w.status === 200);
    const refused = watches.filter((w) => w.status === 429);
    console.log(`mallory's 600 watches: ${open.length} open, ${refused.length} answered 429`);
    const other = watches.filter((w) => w.status !== 200 && w.status !== 429);
    expect(other.map((w) => `${w.status} ${w.body}`).slice(0, 3)).toEqual([]);
    expect(open).toHaveLength(DEFAULT_UPSTREAM_LIMITS.maxStreamsPerUser);
    expect(refused).toHaveLength(600 - DEFAULT_UPSTREAM_LIMITS.maxStreamsPerUser);
    const status = JSON.parse(refused[0]?.body ?? '{}') as Record<string, unknown>;
    expect(status).toMatchObject({ kind: 'Status', code: 429, reason: 'TooManyRequests', details: { retryAfterSeconds: 1 } });
    expect(status['message']).toMatch(/too many concurrent requests for user "mallory" \(at most 200 at once\)/);

    // ada, while mallory holds her 200 watches: a get, and a watch of her own.
    const ada = connect('ada');
    const started = Date.now();
    const get = await ask(ada, '/api/v1/namespaces/default/pods/web');
    const getMs = Date.now() - started;
    expect(get.status, get.body).toBe(200);
    expect(JSON.parse(get.body)).toMatchObject({ kind: 'Pod', metadata: { name: 'web' } });
    const adaWatch = await ask(ada, '/api/v1/namespaces/default/pods?watch=true');
    expect(adaWatch.status).toBe(200);
    console.log(`ada's get with mallory's 200 watches open: 200 in ${getMs} ms`);

    // Short requests are a pool of their own: mallory's own get is not stuck behind her watches.
    const own = await ask(mallory, '/api/v1/namespaces/default/pods/web');
    expect(own.status, own.body).toBe(200);

    // Closing watches gives the share back.
    // The release travels proxy → tunnel → agent; on a loaded machine that takes a moment.
    for (const w of open.slice(0, 10)) w.stream.close();
    let again = await ask(mallory, '/api/v1/namespaces/default/pods?watch=true');
    for (const deadline = Date.now() + 15_000; again.status === 429 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 200));
      again = await ask(mallory, '/api/v1/namespaces/default/pods?watch=true');
    }
    expect(again.status, again.body).toBe(200);

    adaWatch.stream.close();
    ada.close();
    mallory.destroy();
  }, 120_000);
});
