import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { createTestDatabase, runCommand, type TestDatabase } from '@keyway/testing';
import { kwctlIn, startTestAgent } from './harness.js';

// `keyway-kube-agent configure` and k8s/agent/make-kubeconfig.sh against a real kube-apiserver:
// the kubeconfig they write may impersonate and do nothing else, and an agent serving the
// cluster with it answers a user's kubectl through Keyway.
const adminKubeconfig = process.env['KEYWAY_E2E_KUBECONFIG'];
const root = fileURLToPath(new URL('../../..', import.meta.url));

describe.skipIf(!adminKubeconfig)('agent kubeconfig from configure / make-kubeconfig.sh (real kube-apiserver)', () => {
  const run = randomBytes(3).toString('hex');
  const namespace = `keyway-cfg-${run}`;
  const accounts = { command: `agent-cmd-${run}`, script: `agent-sh-${run}`, refused: `nope-${run}` };
  const viewers = `${namespace}-viewers`;
  let dir: string;
  let tdb: TestDatabase;
  let stack: Stack;
  const agents: KubeAgent[] = [];
  const kwctl = kwctlIn(() => dir);
  const env = () => ({ PATH: process.env['PATH'], HOME: dir });
  const kubectl = (kubeconfig: string, args: string[]) => runCommand('kubectl', ['--kubeconfig', kubeconfig, ...args], { env: env(), timeoutMs: 30_000 });
  const admin = (args: string[]) => kubectl(adminKubeconfig as string, args);
  const configure = (args: string[]) => runCommand(join(root, 'node_modules/.bin/keyway-kube-agent'), ['configure', ...args], { env: env(), timeoutMs: 90_000 });
  const script = (args: string[]) => runCommand('sh', [join(root, 'k8s/agent/make-kubeconfig.sh'), ...args], { env: env(), timeoutMs: 90_000 });
  const flags = (account: string, out: string) => [`--kubeconfig=${adminKubeconfig}`, `--out=${out}`, `--namespace=${namespace}`, `--service-account=${account}`, `--cluster-name=cfg-${account}`];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyway-cfg-'));
    tdb = await createTestDatabase();
    const config = loadConfig({
      env: { KEYWAY_DATABASE_URL: tdb.url, KEYWAY_CA_KEY: 'cfg-e2e-key-0123456789', KEYWAY_DATA_DIR: dir, KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0' },
    });
    stack = await startStack(config, silentLogger());
    const role = `kind: role
version: v7
metadata: {name: cfg-viewer}
spec:
  allow:
    kubernetes_labels: {env: cfg}
    kubernetes_groups: [${viewers}]
    kubernetes_resources:
      - {kind: configmap, namespace: '*', name: '*', verbs: [get, list]}
---
kind: user
version: v2
metadata: {name: dana}
spec: {roles: [cfg-viewer]}
`;
    expect((await kwctl(['create', '-f', '-'], role)).code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) await a.close();
    await stack?.close();
    await tdb?.drop();
    await admin(['delete', `clusterrole/${namespace}-nobody`, `clusterrolebinding/${namespace}-nobody`, '--ignore-not-found']);
    for (const account of Object.values(accounts)) await admin(['delete', `clusterrole/${account}-impersonation`, `clusterrolebinding/${account}-impersonation`, '--ignore-not-found']);
    await admin(['delete', 'namespace', namespace, '--ignore-not-found', '--wait=false']);
  });

  /** What the impersonated group may do: view in the test's namespace (made once the namespace is). */
  const grantViewers = async () => {
    writeFileSync(
      join(dir, 'viewers.yaml'),
      `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewers, namespace: ${namespace}}
subjects: [{kind: Group, name: ${viewers}, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: ClusterRole, name: view, apiGroup: rbac.authorization.k8s.io}
`,
    );
    const applied = await admin(['apply', '-f', join(dir, 'viewers.yaml')]);
    expect(applied.code, applied.stderr).toBe(0);
  };

  /** The kubeconfig may impersonate, may do nothing itself, and serves the cluster through Keyway. */
  const proveKubeconfig = async (kubeconfig: string, account: string) => {
    expect(statSync(kubeconfig).mode & 0o077, 'only its owner may read the token').toBe(0);
    await grantViewers();
    const canI = await kubectl(kubeconfig, ['auth', 'can-i', 'list', 'configmaps', '-n', namespace, '--as=someone', `--as-group=${viewers}`]);
    expect(canI.stdout.trim(), canI.stderr).toBe('yes');
    const impersonated = await kubectl(kubeconfig, ['get', 'configmaps', '-n', namespace, '--as=someone', `--as-group=${viewers}`, '-o', 'name']);
    expect(impersonated.code, impersonated.stderr).toBe(0);
    expect(impersonated.stdout).toContain('configmap/kube-root-ca.crt');
    for (const args of [['get', 'pods', '-A'], ['get', 'secrets', '-n', namespace], ['create', 'namespace', `${namespace}-no`], ['get', 'configmaps', '-n', namespace]]) {
      const r = await kubectl(kubeconfig, args);
      expect(r.code, `kubectl ${args.join(' ')} without impersonation`).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`Forbidden.*system:serviceaccount:${namespace}:${account}`));
    }
    const cluster = `cfg-${account}`;
    expect((parseYaml(readFileSync(kubeconfig, 'utf8')) as { 'current-context': string })['current-context']).toBe(cluster);
    agents.push(await startTestAgent(stack, { kubeconfig, cluster, labels: { env: 'cfg' }, dir, kwctl }));
    const user = join(dir, `dana-${account}.kubeconfig`);
    const signed = await kwctl(['auth', 'sign', '--user=dana', `--kube-cluster=${cluster}`, `--proxy=${stack.proxyAddress}`, `--out=${user}`]);
    expect(signed.code, signed.err).toBe(0);
    const through = await kubectl(user, ['get', 'configmaps', '-n', namespace, '-o', 'name']);
    expect(through.code, through.stderr).toBe(0);
    expect(through.stdout).toContain('configmap/kube-root-ca.crt');
    // Allowed by Keyway, refused by the cluster: the agent went as dana, not with rights of its own.
    const elsewhere = await kubectl(user, ['get', 'configmaps', '-n', 'kube-system']);
    expect(elsewhere.stderr).toMatch(/User "dana" cannot list resource "configmaps"/);
  };

  /** Exactly one token Secret of ours for the account, whatever the token controller made itself. */
  const tokenSecrets = async (account: string) => {
    const got = await admin(['get', 'secrets', '-n', namespace, '-o', 'json']);
    const items = (JSON.parse(got.stdout) as { items: { metadata: { name: string } }[] }).items;
    return items.map((s) => s.metadata.name).filter((n) => n === `${account}-token`);
  };

  it('configure writes a kubeconfig that may only impersonate and serves the cluster; re-running updates, never duplicates', async () => {
    const account = accounts.command;
    const out = join(dir, 'command.kubeconfig');
    const first = await configure(flags(account, out));
    expect(first.code, first.stderr).toBe(0);
    for (const line of [`created ServiceAccount ${namespace}/${account}`, `created ClusterRole ${account}-impersonation`, `created ClusterRoleBinding ${account}-impersonation`, `created Secret ${namespace}/${account}-token`, `wrote ${out}`]) {
      expect(first.stdout).toContain(line);
    }
    await proveKubeconfig(out, account);

    const again = await configure(flags(account, out));
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`keyway-kube-agent: --out ${out} exists: pass --force to overwrite it`);
    // A ClusterRole someone widened is put back to the agent's rules.
    const widened = await admin(['patch', 'clusterrole', `${account}-impersonation`, '--type=json', '-p', '[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["secrets"],"verbs":["list"]}}]']);
    expect(widened.code, widened.stderr).toBe(0);
    const forced = await configure([...flags(account, out), '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain(`unchanged ServiceAccount ${namespace}/${account}`);
    expect(forced.stdout).toContain(`updated ClusterRole ${account}-impersonation`);
    expect(forced.stdout).toContain(`unchanged Secret ${namespace}/${account}-token`);
    expect(await tokenSecrets(account)).toHaveLength(1);
    expect((await kubectl(out, ['get', 'secrets', '-n', namespace])).stderr).toMatch(/Forbidden/);
  }, 120_000);

  it('make-kubeconfig.sh (kubectl only) writes an equivalent kubeconfig, idempotently', async () => {
    const account = accounts.script;
    const out = join(dir, 'script.kubeconfig');
    const first = await script(flags(account, out));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`serviceaccount/${account} created`);
    expect(first.stdout).toContain(`wrote ${out}`);
    await proveKubeconfig(out, account);
    const again = await script([...flags(account, out), '--force']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`serviceaccount/${account} unchanged`);
    expect(again.stdout).toContain(`clusterrole.rbac.authorization.k8s.io/${account}-impersonation unchanged`);
    expect(await tokenSecrets(account)).toHaveLength(1);
    // The command finds the script's objects as its own.
    const command = await configure([...flags(account, out), '--force']);
    expect(command.code, command.stderr).toBe(0);
    expect(command.stdout).not.toMatch(/created|updated/);
  }, 120_000);

  describe('bad input gets one sentence naming what failed', () => {
    const out = () => join(dir, 'bad.kubeconfig');

    it('a context the kubeconfig does not have', async () => {
      const r = await configure([`--kubeconfig=${adminKubeconfig}`, '--context=nope', `--out=${out()}`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^keyway-kube-agent: kubeconfig \S+ has no context "nope" \(it has .+\)\n$/);
      const s = await script([`--kubeconfig=${adminKubeconfig}`, '--context=nope', `--out=${out()}`]);
      expect(s.code).toBe(1);
      expect(s.stderr).toMatch(/^make-kubeconfig.sh: kubeconfig \S+ has no context "nope"/);
    });

    it('an API server that cannot be reached', async () => {
      const kc = parseYaml(readFileSync(adminKubeconfig as string, 'utf8')) as { clusters: { cluster: { server: string } }[] };
      for (const c of kc.clusters) c.cluster.server = 'https://127.0.0.1:1';
      const unreachable = join(dir, 'unreachable.kubeconfig');
      writeFileSync(unreachable, stringifyYaml(kc));
      const r = await configure([`--kubeconfig=${unreachable}`, `--out=${out()}`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^keyway-kube-agent: cannot reach the API server https:\/\/127\.0\.0\.1:1 \(context \S+\): .*ECONNREFUSED/);
      const s = await script([`--kubeconfig=${unreachable}`, `--out=${out()}`]);
      expect(s.code).toBe(1);
      expect(s.stderr).toMatch(/make-kubeconfig.sh: cannot reach the API server https:\/\/127\.0\.0\.1:1/);
    });

    // kube-apiserver.sh's identity without rights, beside the admin kubeconfig.
    const nobody = adminKubeconfig ? join(adminKubeconfig, '../nobody.kubeconfig') : '';
    it.skipIf(!existsSync(nobody))('an identity that may not create the objects, or only some of them', async () => {
      const args = [`--kubeconfig=${nobody}`, `--out=${out()}`, `--namespace=${namespace}`, `--service-account=nope-${run}`];
      const s = await script(args);
      expect(s.code).toBe(1);
      expect(s.stderr).toMatch(new RegExp(`make-kubeconfig.sh: could not create namespace ${namespace} with context \\S+\n$`));
      const r = await configure(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^keyway-kube-agent: the kubeconfig's user may not read Namespace ${namespace} at the API server .*User "nobody" cannot get.* \\(use a cluster-admin context\\)\n$`));
      // Rights on this test's namespace only, none on RBAC: it gets as far as the ClusterRole.
      writeFileSync(
        join(dir, 'nobody.yaml'),
        `apiVersion: v1
kind: Namespace
metadata: {name: ${namespace}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ${namespace}-nobody}
rules: [{apiGroups: [''], resources: [namespaces], resourceNames: [${namespace}], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ${namespace}-nobody}
subjects: [{kind: User, name: nobody, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: ClusterRole, name: ${namespace}-nobody, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: nobody-some, namespace: ${namespace}}
rules: [{apiGroups: [''], resources: [serviceaccounts, secrets], verbs: [get, create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: nobody-some, namespace: ${namespace}}
subjects: [{kind: User, name: nobody, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: Role, name: nobody-some, apiGroup: rbac.authorization.k8s.io}
`,
      );
      const granted = await admin(['apply', '-f', join(dir, 'nobody.yaml')]);
      expect(granted.code, granted.stderr).toBe(0);
      const partial = await configure(args);
      expect(partial.code).toBe(1);
      expect(partial.stdout).toContain(`created ServiceAccount ${namespace}/nope-${run}`);
      expect(partial.stderr).toMatch(new RegExp(`^keyway-kube-agent: the kubeconfig's user may not read ClusterRole nope-${run}-impersonation at .*\\(use a cluster-admin context\\)\n$`));
      const partialScript = await script(args);
      expect(partialScript.code).toBe(1);
      expect(partialScript.stderr).toMatch(/make-kubeconfig.sh: could not apply the objects above with context \S+ \(.*use a cluster-admin context\)\n$/);
    });

    it('a flag with a value that is not a Kubernetes name', async () => {
      const r = await configure([`--kubeconfig=${adminKubeconfig}`, `--out=${out()}`, '--service-account=Not_A_Name']);
      expect(r.stderr).toMatch(/--service-account "Not_A_Name" is not a Kubernetes name/);
    });
  });
});
