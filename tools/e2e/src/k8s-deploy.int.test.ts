import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { inClusterCredentials, inClusterNamespace, loadKubeconfig, secretIdentityStore, type ClusterCredentials } from '@keyway/forwarder';
import { silentLogger } from '@keyway/log';
import { createTestDatabase, runCommand, startProcess, type LongRunning, type TestDatabase } from '@keyway/testing';
import { kwctlIn } from './harness.js';

// Keyway as k8s/ deploys it, against a real kube-apiserver: the manifests, the agent's and the
// proxy's service accounts (token, CA, namespace) and the RBAC they grant, and identities kept
// in Secrets so that a replaced pod (no disk kept, join token spent) comes back as the same host.
const adminKubeconfig = process.env['KEYWAY_E2E_KUBECONFIG'];
const agentKubeconfig = process.env['KEYWAY_E2E_AGENT_KUBECONFIG'];

/** The user a kubeconfig's client certificate names (CN), if it authenticates by certificate. */
function certificateUser(kubeconfig: string | undefined): string | undefined {
  if (!kubeconfig) return undefined;
  const [creds] = loadKubeconfig(kubeconfig);
  return creds?.clientCertPem ? /CN=([^\n,]+)/.exec(new X509Certificate(creds.clientCertPem).subject)?.[1] : undefined;
}
const agentUser = certificateUser(agentKubeconfig);
const root = fileURLToPath(new URL('../../..', import.meta.url));

describe.skipIf(!adminKubeconfig || !agentUser)('Keyway as k8s/ deploys it (real kube-apiserver)', () => {
  const namespace = `keyway-e2e-${randomBytes(3).toString('hex')}`;
  let tdb: TestDatabase;
  let stack: Stack;
  let dir: string;
  let creds: ClusterCredentials;
  const agents: KubeAgent[] = [];
  const clusterScoped: string[] = [];
  const processes: LongRunning[] = [];
  const kwctl = kwctlIn(() => dir);
  const admin = (args: string[]) => runCommand('kubectl', ['--kubeconfig', adminKubeconfig as string, ...args], { env: { PATH: process.env['PATH'], HOME: dir }, timeoutMs: 30_000 });

  beforeAll(async () => {
    tdb = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'keyway-secret-'));
    // A namespace of this test's own, where the agent kubeconfig's user may keep an identity
    // Secret (as k8s/agent/serviceaccount.yaml lets the agent's service account).
    writeFileSync(
      join(dir, 'rbac.yaml'),
      `apiVersion: v1
kind: Namespace
metadata: {name: ${namespace}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: e2e-agent-user-identity, namespace: ${namespace}}
rules:
  - {apiGroups: [''], resources: [secrets], verbs: [get, create, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: e2e-agent-user-identity, namespace: ${namespace}}
subjects: [{kind: User, name: ${agentUser}, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: Role, name: e2e-agent-user-identity, apiGroup: rbac.authorization.k8s.io}
`,
    );
    const applied = await admin(['apply', '-f', join(dir, 'rbac.yaml')]);
    expect(applied.code, applied.stderr).toBe(0);
    const config = loadConfig({
      env: {
        KEYWAY_DATABASE_URL: tdb.url,
        KEYWAY_CA_KEY: 'secret-e2e-key-0123456789',
        KEYWAY_DATA_DIR: dir,
        KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0',
      },
    });
    stack = await startStack(config, silentLogger());
    [creds] = loadKubeconfig(agentKubeconfig as string) as [ClusterCredentials];
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) await a.close();
    for (const p of processes) await p.stop();
    await stack?.close();
    await tdb?.drop();
    if (adminKubeconfig) {
      for (const object of clusterScoped) await admin(['delete', object, '--ignore-not-found']);
      await admin(['delete', 'namespace', namespace, '--wait=false']);
    }
  });

  /**
   * A manifest of k8s/ moved into this test's namespace; cluster-scoped names get the
   * namespace as prefix, so a real installation in the same cluster is untouched.
   */
  const manifest = (path: string) =>
    readFileSync(join(root, 'k8s', path), 'utf8')
      .replaceAll('namespace: keyway', `namespace: ${namespace}`)
      .replace(/name: keyway\n/, `name: ${namespace}\n`)
      .replaceAll('name: keyway-kube-agent-impersonation', `name: ${namespace}-impersonation`);

  /** The service account's token, CA and namespace laid out as the kubelet mounts them. */
  const mountServiceAccount = async (account: string): Promise<string> => {
    const secret = `apiVersion: v1
kind: Secret
metadata:
  name: ${account}-token
  namespace: ${namespace}
  annotations: {kubernetes.io/service-account.name: ${account}}
type: kubernetes.io/service-account-token
`;
    writeFileSync(join(dir, `${account}-token.yaml`), secret);
    const applied = await admin(['apply', '-f', join(dir, `${account}-token.yaml`)]);
    expect(applied.code, applied.stderr).toBe(0);
    const saDir = join(dir, `${account}-serviceaccount`);
    mkdirSync(saDir);
    await vi.waitFor(
      async () => {
        const got = await admin(['get', 'secret', `${account}-token`, '-n', namespace, '-o', 'json']);
        const data = (JSON.parse(got.stdout) as { data?: Record<string, string> }).data ?? {};
        for (const key of ['token', 'ca.crt', 'namespace']) {
          expect(data[key], `the token controller fills ${key}`).toBeTruthy();
          writeFileSync(join(saDir, key), Buffer.from(data[key] as string, 'base64'));
        }
      },
      { timeout: 30_000, interval: 500 },
    );
    return saDir;
  };

  const startAgent = async (token: string) => {
    const agent = await KubeAgent.create({
      proxyAddr: stack.proxyAddress as string,
      token,
      identityStore: secretIdentityStore({ creds, namespace, name: 'keyway-kube-agent-0' }),
      caPins: [],
      // Under the context's name, as the command serves it.
      clusters: [{ creds, labels: { env: 'dev' } }],
      logger: silentLogger(),
    });
    agents.push(agent);
    return agent;
  };

  it('the manifests (k8s/agent, k8s/auth, k8s/proxy) are accepted by the API server', async () => {
    const files = ['agent/namespace.yaml', 'agent/serviceaccount.yaml', 'agent/join-token.yaml', 'agent/statefulset.yaml', 'auth/namespace.yaml', 'auth/secret.yaml', 'auth/deployment.yaml', 'proxy/serviceaccount.yaml', 'proxy/join-token.yaml', 'proxy/statefulset.yaml', 'proxy/service.yaml'];
    for (const file of files) {
      // Only as a server-side dry run: nothing is created.
      const path = join(dir, file.replace('/', '-'));
      writeFileSync(path, manifest(file));
      const r = await admin(['apply', '--dry-run=server', '-f', path]);
      expect(r.code, `${file}: ${r.stderr}`).toBe(0);
    }
  });

  it('in-cluster: with the manifests\' service account, forwards as the user and keeps its identity in a Secret', async () => {
    // And what the impersonated group may do.
    const viewers = `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewers, namespace: ${namespace}}
subjects: [{kind: Group, name: ${namespace}-viewers, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: ClusterRole, name: view, apiGroup: rbac.authorization.k8s.io}
`;
    writeFileSync(join(dir, 'in-cluster.yaml'), [manifest('agent/namespace.yaml'), manifest('agent/serviceaccount.yaml'), viewers].join('\n---\n'));
    const applied = await admin(['apply', '-f', join(dir, 'in-cluster.yaml')]);
    expect(applied.code, applied.stderr).toBe(0);
    clusterScoped.push(`clusterrole/${namespace}-impersonation`, `clusterrolebinding/${namespace}-impersonation`);
    const saDir = await mountServiceAccount('keyway-kube-agent');

    const server = new URL(creds.server.origin);
    const inCluster = inClusterCredentials('in-cluster', { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port }, saDir);
    expect(inClusterNamespace(saDir)).toBe(namespace);
    const token = /The invite token: (\w+)/.exec((await kwctl(['tokens', 'add', '--type=kube'])).out)?.[1] as string;
    const agent = await KubeAgent.create({
      proxyAddr: stack.proxyAddress as string,
      token,
      identityStore: secretIdentityStore({ creds: inCluster, namespace, name: 'keyway-kube-agent-1' }),
      caPins: [],
      clusters: [{ creds: inCluster, labels: { env: 'in-cluster' } }],
      logger: silentLogger(),
    });
    agents.push(agent);
    agent.serve();
    await vi.waitFor(() => expect(stack.proxy?.registry.pick('in-cluster')).toBeDefined(), { timeout: 15_000 });
    expect((await admin(['get', 'secret', 'keyway-kube-agent-1', '-n', namespace])).code).toBe(0);

    const role = `kind: role
version: v7
metadata: {name: in-cluster-viewer}
spec:
  allow:
    kubernetes_labels: {env: in-cluster}
    kubernetes_groups: [${namespace}-viewers]
    kubernetes_resources:
      - {kind: configmap, namespace: '*', name: '*', verbs: [get, list]}
---
kind: user
version: v2
metadata: {name: carol}
spec: {roles: [in-cluster-viewer]}
`;
    expect((await kwctl(['create', '-f', '-'], role)).code).toBe(0);
    const carol = join(dir, 'carol.kubeconfig');
    expect((await kwctl(['auth', 'sign', '--user=carol', '--kube-cluster=in-cluster', `--proxy=${stack.proxyAddress}`, `--out=${carol}`])).code).toBe(0);
    const kubectl = (args: string[]) => runCommand('kubectl', ['--kubeconfig', carol, ...args], { env: { PATH: process.env['PATH'], HOME: dir }, timeoutMs: 30_000 });
    // Allowed by carol's role and by the group's RoleBinding: the service account impersonated her.
    const listed = await kubectl(['get', 'configmaps', '-n', namespace, '-o', 'name']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('configmap/kube-root-ca.crt');
    // Allowed by Keyway, refused by the cluster: the request went as carol, with no more than her group's rights.
    const elsewhere = await kubectl(['get', 'configmaps', '-n', 'kube-system']);
    expect(elsewhere.code).not.toBe(0);
    expect(elsewhere.stderr).toMatch(/User "carol" cannot list resource "configmaps"/);
  });

  it('joins once, keeps the credentials in the Secret, and a replacement pod reuses them without a token', async () => {
    const token = /The invite token: (\w+)/.exec((await kwctl(['tokens', 'add', '--type=kube'])).out)?.[1] as string;
    const first = await startAgent(token);
    const got = await admin(['get', 'secret', 'keyway-kube-agent-0', '-n', namespace, '-o', 'yaml']);
    expect(got.code, got.stderr).toBe(0);
    const secret = parseYaml(got.stdout) as { metadata: { labels: Record<string, string> }; data: Record<string, string> };
    expect(secret.metadata.labels['app.kubernetes.io/managed-by']).toBe('keyway');
    expect(Buffer.from(secret.data['identity'] ?? '', 'base64').toString()).toMatch(/BEGIN CERTIFICATE/);
    await first.close();

    // The pod is gone with its disk; its replacement (the real command, as the StatefulSet
    // runs it) has a fresh data dir and no valid token: joining would fail.
    const second = startProcess(
      join(root, 'node_modules/.bin/keyway-kube-agent'),
      ['--proxy', stack.proxyAddress as string, '--token', 'no-longer-valid', '--kubeconfig', agentKubeconfig as string, '--labels', 'env=dev', '--identity-secret', 'keyway-kube-agent-0', '--identity-secret-namespace', namespace, '--data-dir', join(dir, 'new-pod')],
      { PATH: process.env['PATH'], HOME: dir },
    );
    processes.push(second);
    const hostId = (await second.waitFor(/host id (\S+)\) serving/, 60_000))[1];
    expect(hostId).toBe(first.hostId);
    await vi.waitFor(() => expect(second.stderr()).toMatch(/tunnel to proxy established/), { timeout: 30_000, interval: 100 });
    // It registers its cluster as the same host as before, not as a second one.
    await vi.waitFor(
      async () => {
        const listed = JSON.parse((await kwctl(['get', 'kube_clusters', '--format', 'json'])).out) as { metadata: { name: string } }[];
        expect(listed.find((c) => c.metadata.name === creds.name)).toMatchObject({ status: { agents: [expect.stringMatching(new RegExp(`^${first.hostId} `))] } });
      },
      { timeout: 15_000, interval: 200 },
    );
  });

  it('a proxy pod keeps its identity in a Secret through its service account, and comes back as the same host', async () => {
    writeFileSync(join(dir, 'proxy-sa.yaml'), manifest('proxy/serviceaccount.yaml'));
    const applied = await admin(['apply', '-f', join(dir, 'proxy-sa.yaml')]);
    expect(applied.code, applied.stderr).toBe(0);
    const saDir = await mountServiceAccount('keyway-proxy');
    const server = new URL(creds.server.origin);
    // What the pod's environment would say: the API server, and where the token is mounted.
    const podEnv = { PATH: process.env['PATH'], HOME: dir, KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port, KEYWAY_SERVICE_ACCOUNT_DIR: saDir };
    const proxy = (token: string, dataDir: string) => {
      const p = startProcess(
        join(root, 'node_modules/.bin/keyway-proxy'),
        ['--auth-server', stack.authAddress, '--token', token, '--listen-addr', '127.0.0.1:0', '--identity-secret', 'keyway-proxy-0', '--data-dir', join(dir, dataDir)],
        podEnv,
      );
      processes.push(p);
      return p;
    };
    const token = /The invite token: (\w+)/.exec((await kwctl(['tokens', 'add', '--type=proxy'])).out)?.[1] as string;
    const first = proxy(token, 'proxy-pod-a');
    const hostId = (await first.waitFor(/\(host id (\S+)\)/, 60_000))[1];
    expect((await admin(['get', 'secret', 'keyway-proxy-0', '-n', namespace])).code).toBe(0);
    await first.stop();
    // Rescheduled: a fresh data dir and no valid token.
    const second = proxy('no-longer-valid', 'proxy-pod-b');
    expect((await second.waitFor(/\(host id (\S+)\)/, 60_000))[1]).toBe(hostId);
  });
});
