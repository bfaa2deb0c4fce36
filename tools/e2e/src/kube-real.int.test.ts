import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { loadKubeconfig } from '@keyway/forwarder';
import { createLogger, silentLogger } from '@keyway/log';
import { runKwctl } from '@keyway/kwctl';
import { captureStream, createTestDatabase, runCommand, type TestDatabase } from '@keyway/testing';

// kubectl through Keyway against a real kube-apiserver (shared/tools/kube-apiserver.sh, or any
// cluster): KEYWAY_E2E_KUBECONFIG is an admin kubeconfig for setting the test up,
// KEYWAY_E2E_AGENT_KUBECONFIG what the agent uses (it may only impersonate).
const adminKubeconfig = process.env['KEYWAY_E2E_KUBECONFIG'];
const agentKubeconfig = process.env['KEYWAY_E2E_AGENT_KUBECONFIG'];

const ROLE = `kind: role
version: v7
metadata: {name: junior-devs}
spec:
  options: {max_session_ttl: 8h}
  allow:
    kubernetes_labels: {env: [dev, staging]}
    kubernetes_groups: ['{{internal.kubernetes_groups}}']
    kubernetes_resources:
      - {kind: pod, namespace: default, name: '*', verbs: [get, list, watch]}
      - {kind: configmap, namespace: default, name: '*', verbs: ['*']}
  deny: {}
---
kind: user
version: v2
metadata: {name: jimbo}
spec:
  roles: ['junior-devs']
  traits:
    kubernetes_groups: ['teleport-view', 'teleport-extra']
`;

// What the impersonated group may do in the real cluster.
const CLUSTER_RBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: keyway-e2e-view, namespace: default}
rules:
  - {apiGroups: [''], resources: [pods, configmaps], verbs: [get, list, watch, create, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: keyway-e2e-view, namespace: default}
subjects: [{kind: Group, name: teleport-view, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: Role, name: keyway-e2e-view, apiGroup: rbac.authorization.k8s.io}
`;

describe.skipIf(!adminKubeconfig || !agentKubeconfig)('kubectl through Keyway to a real kube-apiserver', () => {
  let tdb: TestDatabase;
  let stack: Stack;
  let agent: KubeAgent;
  let dir: string;
  let userKubeconfig: string;

  const kwctl = async (args: string[], stdin?: string) => {
    const out = captureStream();
    const err = captureStream();
    const { Readable } = await import('node:stream');
    const code = await runKwctl({ argv: ['--data-dir', dir, ...args], out, err, env: {}, ...(stdin ? { stdin: Readable.from([stdin]) } : {}) });
    return { code, out: out.text(), err: err.text() };
  };
  const kubectl = (args: string[], kubeconfig = userKubeconfig) =>
    runCommand('kubectl', ['--kubeconfig', kubeconfig, ...args], { env: { PATH: process.env['PATH'], HOME: dir }, timeoutMs: 30_000 });

  beforeAll(async () => {
    tdb = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'keyway-kube-'));
    const config = loadConfig({
      env: {
        KEYWAY_DATABASE_URL: tdb.url,
        KEYWAY_CA_KEY: 'kube-e2e-key-0123456789',
        KEYWAY_DATA_DIR: dir,
        KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_CLUSTER_NAME: 'acme',
      },
    });
    stack = await startStack(config, process.env['KEYWAY_E2E_DEBUG'] ? createLogger('stack', { level: 'debug' }) : silentLogger());
    expect((await kwctl(['create', '-f', '-'], ROLE)).code).toBe(0);
    const token = /The invite token: (\w+)/.exec((await kwctl(['tokens', 'add', '--type=kube'])).out)?.[1] ?? '';
    const [creds] = loadKubeconfig(agentKubeconfig as string).slice(0, 1);
    agent = await KubeAgent.create({
      proxyAddr: stack.proxyAddress as string,
      token,
      identityPath: join(dir, 'agent-identity.pem'),
      caPins: [],
      clusters: [{ creds: { ...(creds as NonNullable<typeof creds>), name: 'kubernetes' }, labels: { env: 'dev' } }],
      logger: process.env['KEYWAY_E2E_DEBUG'] ? createLogger('agent', { level: 'debug' }) : silentLogger(),
    });
    agent.serve();
    await waitFor(() => (stack.proxy?.registry.pick('kubernetes') ? true : false));
    userKubeconfig = join(dir, 'jimbo.kubeconfig');
    const signed = await kwctl(['auth', 'sign', '--user=jimbo', '--format=kubernetes', '--kube-cluster=kubernetes', `--proxy=${stack.proxyAddress}`, `--out=${userKubeconfig}`]);
    expect(signed.code, signed.err).toBe(0);
    writeFileSync(join(dir, 'rbac.yaml'), CLUSTER_RBAC);
    const applied = await kubectl(['apply', '-f', join(dir, 'rbac.yaml')], adminKubeconfig);
    expect(applied.code, applied.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await agent?.close();
    await stack?.close();
    await tdb?.drop();
  });

  it('lists pods as jimbo, impersonating the mapped groups', async () => {
    const r = await kubectl(['get', 'pods', '-n', 'default']);
    expect(r.stderr).toMatch(/No resources found in default namespace/);
    expect(r.code).toBe(0);
  });

  it('refuses secrets in kube-system with a message naming user, roles and rule', async () => {
    const r = await kubectl(['get', 'secrets', '-n', 'kube-system']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Forbidden/);
    expect(r.stderr).toMatch(/jimbo/);
    expect(r.stderr).toMatch(/junior-devs/);
  });

  it('creates and deletes a configmap through the real authorization chain', async () => {
    writeFileSync(join(dir, 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keyway-e2e, namespace: default}\ndata: {a: b}\n');
    const created = await kubectl(['create', '-f', join(dir, 'cm.yaml')]);
    expect(created.code, created.stderr).toBe(0);
    const got = await kubectl(['get', 'configmap', 'keyway-e2e', '-n', 'default', '-o', 'jsonpath={.data.a}']);
    expect(got.stdout).toBe('b');
    expect((await kubectl(['delete', 'configmap', 'keyway-e2e', '-n', 'default'])).code).toBe(0);
  });

  it('honours --as-group inside the allowed set and refuses --as outside it', async () => {
    const allowed = await kubectl(['get', 'pods', '-n', 'default', '--as=jimbo', '--as-group=teleport-view']);
    expect(allowed.code, allowed.stderr).toBe(0);
    const refused = await kubectl(['get', 'pods', '-n', 'default', '--as=admin']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Forbidden/);
    // The real API server decides with the narrower group set: teleport-extra has no binding.
    const narrowed = await kubectl(['get', 'pods', '-n', 'default', '--as=jimbo', '--as-group=teleport-extra']);
    expect(narrowed.code).not.toBe(0);
    expect(narrowed.stderr).toMatch(/forbidden/i);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
