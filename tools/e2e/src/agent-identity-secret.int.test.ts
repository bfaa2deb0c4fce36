import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KubeAgent, secretIdentityStore } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { loadKubeconfig, type ClusterCredentials } from '@keyway/forwarder';
import { silentLogger } from '@keyway/log';
import { createTestDatabase, runCommand, startProcess, type LongRunning, type TestDatabase } from '@keyway/testing';
import { kwctlIn } from './harness.js';

// An agent that keeps its identity in a Secret comes back, after its pod is replaced (no disk
// kept, join token spent), as the same host: against a real kube-apiserver, as in a cluster.
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

describe.skipIf(!adminKubeconfig || !agentUser)('agent identity in a Kubernetes Secret (real kube-apiserver)', () => {
  const namespace = `keyway-e2e-${randomBytes(3).toString('hex')}`;
  let tdb: TestDatabase;
  let stack: Stack;
  let dir: string;
  let creds: ClusterCredentials;
  const agents: KubeAgent[] = [];
  const processes: LongRunning[] = [];
  const kwctl = kwctlIn(() => dir);
  const admin = (args: string[]) => runCommand('kubectl', ['--kubeconfig', adminKubeconfig as string, ...args], { env: { PATH: process.env['PATH'], HOME: dir }, timeoutMs: 30_000 });

  beforeAll(async () => {
    tdb = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'keyway-secret-'));
    // What k8s/agent/serviceaccount.yaml grants the agent, in a namespace of this test's own.
    writeFileSync(
      join(dir, 'rbac.yaml'),
      `apiVersion: v1
kind: Namespace
metadata: {name: ${namespace}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: keyway-kube-agent-identity, namespace: ${namespace}}
rules:
  - {apiGroups: [''], resources: [secrets], verbs: [get, create, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: keyway-kube-agent-identity, namespace: ${namespace}}
subjects: [{kind: User, name: ${agentUser}, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: Role, name: keyway-kube-agent-identity, apiGroup: rbac.authorization.k8s.io}
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
    if (adminKubeconfig) await admin(['delete', 'namespace', namespace, '--wait=false']);
  });

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

  it('the agent manifests (k8s/agent) are accepted by the API server', async () => {
    for (const file of ['namespace.yaml', 'serviceaccount.yaml', 'join-token.yaml', 'statefulset.yaml']) {
      // Into this test's namespace, and only as a server-side dry run: nothing is created.
      const manifest = readFileSync(join(root, 'k8s/agent', file), 'utf8').replaceAll('namespace: keyway', `namespace: ${namespace}`).replace(/name: keyway\n/, `name: ${namespace}\n`);
      writeFileSync(join(dir, file), manifest);
      const r = await admin(['apply', '--dry-run=server', '-f', join(dir, file)]);
      expect(r.code, `${file}: ${r.stderr}`).toBe(0);
    }
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
        const listed = await kwctl(['get', 'kube_clusters', '--format', 'json']);
        expect(JSON.parse(listed.out)).toEqual([expect.objectContaining({ status: { agents: [expect.stringMatching(new RegExp(`^${first.hostId} `))] } })]);
      },
      { timeout: 15_000, interval: 200 },
    );
  });
});
