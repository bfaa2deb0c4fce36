import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { parse as parseYaml } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { ca as authCa, startStack, type Stack } from '@keyway/auth';
import { KUBE_SNI } from '@keyway/client';
import { generateKeyPair } from '@keyway/pki';
import { loadConfig } from '@keyway/config';
import { createLogger, silentLogger } from '@keyway/log';
import { kwctlIn, startTestAgent } from './harness.js';
import { createTestDatabase, runCommand, type TestDatabase } from '@keyway/testing';

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

  const kwctl = kwctlIn(() => dir);
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
    agent = await startTestAgent(stack, {
      kubeconfig: agentKubeconfig as string,
      cluster: 'kubernetes',
      labels: { env: 'dev' },
      dir,
      kwctl,
      logger: process.env['KEYWAY_E2E_DEBUG'] ? createLogger('agent', { level: 'debug' }) : silentLogger(),
    });
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

  describe('refusals', () => {
    const creds = () => {
      const kc = parseYaml(readFileSync(userKubeconfig, 'utf8')) as {
        clusters: { cluster: Record<string, string> }[];
        users: { user: Record<string, string> }[];
      };
      const b64 = (v: string | undefined) => Buffer.from(v ?? '', 'base64').toString();
      return {
        ca: b64(kc.clusters[0]?.cluster['certificate-authority-data']),
        cert: b64(kc.users[0]?.user['client-certificate-data']),
        key: b64(kc.users[0]?.user['client-key-data']),
      };
    };
    const raw = (path: string, headers: Record<string, string> = {}, c = creds()) => {
      const [host, port] = (stack.proxyAddress as string).split(':');
      return new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.request(
          { host, port: Number(port), path, headers, servername: KUBE_SNI, ca: c.ca, cert: c.cert, key: c.key },
          (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    };

    it('refuses other Impersonate-* headers, path tricks and oversized headers with a Status', async () => {
      const uid = await raw('/api/v1/namespaces/default/pods', { 'Impersonate-Uid': '1234' });
      expect(uid.status).toBe(403);
      expect(JSON.parse(uid.body)).toMatchObject({ kind: 'Status', reason: 'Forbidden', message: expect.stringMatching(/Impersonate-Uid/i) });
      for (const path of ['/api/v1/namespaces/default/pods/..%2f..%2fsecrets', '/api/v1/namespaces/default/pods/%2e%2e/%2e%2e/kube-system/secrets', '/api/v1/namespaces/kube-system%2Fsecrets']) {
        const r = await raw(path);
        expect(r.status, path).toBe(400);
        expect(JSON.parse(r.body)).toMatchObject({ kind: 'Status', code: 400 });
      }
      const big = await raw('/api/v1/namespaces/default/pods', { 'X-Padding': 'x'.repeat(100_000) });
      expect(big.status).toBe(431);
      // The proxy is still serving.
      expect((await raw('/api/v1/namespaces/default/pods')).status).toBe(200);
    });

    it('refuses an expired certificate and one from another CA', async () => {
      const short = join(dir, 'short.kubeconfig');
      expect((await kwctl(['auth', 'sign', '--user=jimbo', '--kube-cluster=kubernetes', `--proxy=${stack.proxyAddress}`, '--ttl=1s', `--out=${short}`])).code).toBe(0);
      await new Promise((r) => setTimeout(r, 1_500));
      const expired = await kubectl(['get', 'pods', '-n', 'default'], short);
      expect(expired.code).not.toBe(0);
      expect(expired.stderr).toMatch(/expired/);

      const foreign = authCa.createCertAuthority({ type: 'user', clusterName: 'acme' });
      const signer = new authCa.CertSigner({ certPem: foreign.certPem, privateKey: foreign.privateKeyPem });
      const key = generateKeyPair();
      const forged = signer.signUserCertificate({
        publicKey: key.publicKeyPem,
        identity: { username: 'jimbo', roles: ['junior-devs'], traits: {}, kubernetesUsers: [], kubernetesGroups: ['system:masters'], clusterName: 'acme', mfaVerified: true, systemRoles: [], kubernetesCluster: 'kubernetes' },
        notAfter: new Date(Date.now() + 3600_000),
      });
      const r = await raw('/api/v1/namespaces/default/pods', {}, { ...creds(), cert: forged.certPem, key: key.privateKeyPem });
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body).message).toMatch(/not signed by/);
    });

    it('locks and deletions reach the proxy within a second', async () => {
      expect((await kwctl(['lock', '--user=jimbo', '--message=incident 7'])).code).toBe(0);
      await new Promise((r) => setTimeout(r, 1_000));
      const locked = await kubectl(['get', 'pods', '-n', 'default']);
      expect(locked.code).not.toBe(0);
      expect(locked.stderr).toMatch(/locked: incident 7/);
      expect((await kwctl(['unlock', '--user=jimbo'])).code).toBe(0);
      await new Promise((r) => setTimeout(r, 1_000));
      expect((await kubectl(['get', 'pods', '-n', 'default'])).code).toBe(0);

      const listed = await kwctl(['get', 'kube_clusters', '--format', 'json']);
      expect(JSON.parse(listed.out)).toEqual([expect.objectContaining({ metadata: expect.objectContaining({ name: 'kubernetes' }), status: { agents: [expect.any(String)] } })]);

      expect((await kwctl(['users', 'rm', 'jimbo'])).code).toBe(0);
      await new Promise((r) => setTimeout(r, 1_000));
      const gone = await kubectl(['get', 'pods', '-n', 'default']);
      expect(gone.code).not.toBe(0);
      expect(gone.stderr).toMatch(/no longer exists/);
    });
  });
});
