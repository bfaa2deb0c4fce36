import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configureAgentKubeconfig } from './configure.js';

// The paths a real cluster (tools/e2e/src/agent-configure.int.test.ts) does not take: a token
// controller that never fills the Secret (none running), and objects of the same name that are
// someone else's. An in-memory API server over plain HTTP stands in.

interface Fake {
  server: Server;
  kubeconfig: string;
  objects: Map<string, Record<string, unknown>>;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function fakeApiServer(): Promise<Fake> {
  const objects = new Map<string, Record<string, unknown>>();
  const body = (req: IncomingMessage) => new Promise<string>((resolve) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => resolve(text));
  });
  const server = createServer((req, res) => {
    void (async () => {
      const path = req.url ?? '';
      const send = (status: number, json: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      if (path === '/version') return send(200, { gitVersion: 'v1.30.0' });
      if (req.method === 'GET') return objects.has(path) ? send(200, objects.get(path)) : send(404, { message: 'not found' });
      const object = JSON.parse(await body(req)) as { metadata: { name: string } };
      const item = req.method === 'POST' ? `${path}/${object.metadata.name}` : path;
      objects.set(item, { ...object, metadata: { ...object.metadata, resourceVersion: '1' } });
      send(req.method === 'POST' ? 201 : 200, object);
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  const dir = mkdtempSync(join(tmpdir(), 'keyway-configure-'));
  const kubeconfig = join(dir, 'admin.kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
clusters: [{name: fake, cluster: {server: 'http://127.0.0.1:${(server.address() as AddressInfo).port}'}}]
users: [{name: admin, user: {token: admin-token}}]
contexts: [{name: fake, context: {cluster: fake, user: admin}}]
current-context: fake
`,
  );
  return { server, kubeconfig, objects };
}

describe('configureAgentKubeconfig', () => {
  it('names the Secret, the account and the token controller when no token comes (v1.24+ without a controller)', async () => {
    const fake = await fakeApiServer();
    const lines: string[] = [];
    const run = configureAgentKubeconfig({ adminKubeconfig: fake.kubeconfig, out: join(fake.kubeconfig, '../out'), namespace: 'keyway', serviceAccount: 'agent', tokenTimeoutMs: 600, report: (l) => lines.push(l) });
    await expect(run).rejects.toThrow(
      'timed out after 1 s waiting for the token controller (kube-controller-manager) to put a token for ServiceAccount keyway/agent into Secret keyway/agent-token: is kube-controller-manager running with --service-account-private-key-file?',
    );
    expect(lines).toEqual(['created Namespace keyway', 'created ServiceAccount keyway/agent', 'created ClusterRole agent-impersonation', 'created ClusterRoleBinding agent-impersonation', 'created Secret keyway/agent-token']);
    // What was asked of the token controller: a token Secret for the account.
    expect(fake.objects.get('/api/v1/namespaces/keyway/secrets/agent-token')).toMatchObject({ type: 'kubernetes.io/service-account-token', metadata: { annotations: { 'kubernetes.io/service-account.name': 'agent' } } });
  });

  it('does not rebind a ClusterRoleBinding of the same name that binds someone else', async () => {
    const fake = await fakeApiServer();
    fake.objects.set('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/agent-impersonation', {
      metadata: { name: 'agent-impersonation' },
      roleRef: { kind: 'ClusterRole', name: 'agent-impersonation' },
      subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: 'other' }],
    });
    await expect(configureAgentKubeconfig({ adminKubeconfig: fake.kubeconfig, out: join(fake.kubeconfig, '../out'), namespace: 'keyway', serviceAccount: 'agent' })).rejects.toThrow(
      'ClusterRoleBinding agent-impersonation already exists and binds ServiceAccount other/agent to ClusterRole agent-impersonation: delete it or choose another --service-account',
    );
  });

  it('does not take over a Secret of the token\'s name that is not a token for the account', async () => {
    const fake = await fakeApiServer();
    fake.objects.set('/api/v1/namespaces/keyway/secrets/agent-token', { type: 'Opaque', metadata: { name: 'agent-token' } });
    await expect(configureAgentKubeconfig({ adminKubeconfig: fake.kubeconfig, out: join(fake.kubeconfig, '../out'), namespace: 'keyway', serviceAccount: 'agent' })).rejects.toThrow(
      'Secret keyway/agent-token already exists and is not a service-account-token Secret for agent: delete it or choose another --service-account',
    );
  });

  it('refuses a kubeconfig without a current-context when no --context is given', async () => {
    const fake = await fakeApiServer();
    writeFileSync(fake.kubeconfig, 'apiVersion: v1\nclusters: []\nusers: []\ncontexts: []\n');
    await expect(configureAgentKubeconfig({ adminKubeconfig: fake.kubeconfig, out: join(fake.kubeconfig, '../out'), namespace: 'keyway', serviceAccount: 'agent' })).rejects.toThrow(/has no current-context: pass --context/);
  });
});
