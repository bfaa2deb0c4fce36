import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOTP, Secret } from 'otpauth';
import { parseDocument } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { AuthClient } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { runCommand } from '@keyway/testing';
import { kwctlIn, startTestAgent, waitUntil } from './harness.js';

// The seed walkthrough as a Teleport user types it, with tsh → kw and tctl → kwctl, against a
// real kube-apiserver: an admin role first (the seed assumes one), jimbo's user YAML with
// `create -f`, signup, `kw login --auth=local --user=jimbo --insecure` with password and TOTP,
// `kw kube login kubernetes --insecure`, kubectl; then `kwctl get roles/admin > admin.yaml`,
// kubernetes_groups added by hand, `kwctl create -f admin.yaml`, and kubectl as system:masters.
const adminKubeconfig = process.env['KEYWAY_E2E_KUBECONFIG'];
const agentKubeconfig = process.env['KEYWAY_E2E_AGENT_KUBECONFIG'];
const kwBin = fileURLToPath(new URL('../../../apps/kw/bin/kw.mjs', import.meta.url));
const PASSWORD = 'seed walkthrough passphrase';

const ADMIN_ROLE = `kind: role
version: v7
metadata:
  name: admin
spec:
  allow:
    kubernetes_labels:
      '*': '*'
    kubernetes_resources:
      - kind: '*'
        namespace: '*'
        name: '*'
        verbs: ['*']
`;

const JIMBO = `kind: user
version: v2
metadata:
  name: jimbo
spec:
  roles: ['admin']
`;

describe.skipIf(!adminKubeconfig || !agentKubeconfig)('the seed walkthrough, verbatim with kw and kwctl, on a real kube-apiserver', () => {
  let stack: Stack;
  let agent: KubeAgent;
  let dir: string;
  let secret = '';
  let offset = -10 * 60_000;
  const clock = () => new Date(Date.now() + offset);
  const nextCode = () => {
    offset += 30_000;
    return new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' }).generate({ timestamp: clock().getTime() });
  };
  const kwctl = kwctlIn(() => join(dir, 'auth'));
  const env = () => ({ PATH: process.env['PATH'], HOME: dir, KW_HOME: join(dir, 'kw'), KUBECONFIG: join(dir, 'kubeconfig') });
  const kw = (args: string[], input?: string) => runCommand(process.execPath, [kwBin, ...args], { env: env(), timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });
  const kubectl = (args: string[]) => runCommand('kubectl', args, { env: env(), timeoutMs: 30_000 });
  // The clock steps with each TOTP code; the agent's heartbeat catches up within seconds.
  const agentListed = () => waitUntil(async () => (await stack.auth.store.listPresence('kube_server', clock())).length > 0, 'the agent heartbeat');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-seed-'));
    const config = loadConfig({ env: { KEYWAY_DATA_DIR: join(dir, 'auth'), KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'acme' } });
    stack = await startStack(config, silentLogger(), clock);
    agent = await startTestAgent(stack, { kubeconfig: agentKubeconfig as string, cluster: 'kubernetes', labels: { env: 'dev' }, dir, kwctl });
    await agentListed();
  }, 90_000);

  afterAll(async () => {
    await agent?.close();
    await stack?.close();
  });

  it('runs the walkthrough: create -f, login with TOTP, kube login, kubectl, then edit the role and kubectl as system:masters', async () => {
    writeFileSync(join(dir, 'admin-role.yaml'), ADMIN_ROLE);
    writeFileSync(join(dir, 'jimbo.yaml'), JIMBO);
    expect((await kwctl(['create', '-f', join(dir, 'admin-role.yaml')])).code).toBe(0);
    const created = await kwctl(['create', '-f', join(dir, 'jimbo.yaml')]);
    expect(created.code, created.err).toBe(0);
    expect(created.out).toContain('user "jimbo" has been created');

    const reset = await kwctl(['users', 'reset', 'jimbo']);
    const token = /([0-9a-f]{48})/.exec(reset.out)?.[1] as string;
    expect(token, reset.out + reset.err).toBeTruthy();
    const c = new AuthClient({ address: stack.proxyAddress as string, insecureSkipVerify: true });
    try {
      secret = (await c.call('getUserToken', { token })).totpSecret;
    } finally {
      c.close();
    }
    const signup = await kw(['signup', `--proxy=${stack.proxyAddress}`, `--token=${token}`, '--insecure'], `${PASSWORD}\n${PASSWORD}\n${nextCode()}\n`);
    expect(signup.code, signup.stderr).toBe(0);

    const login = await kw(['login', `--proxy=${stack.proxyAddress}`, '--auth=local', '--user=jimbo', '--insecure'], `${PASSWORD}\n${nextCode()}\n`);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toMatch(/Logged in as:\s+jimbo/);
    await agentListed();
    const kubeLogin = await kw(['kube', 'login', 'kubernetes', '--insecure']);
    expect(kubeLogin.code, kubeLogin.stderr).toBe(0);
    expect(kubeLogin.stdout).toContain('Logged into Kubernetes cluster "kubernetes"');

    // The admin role maps to no Kubernetes group yet: the cluster itself refuses jimbo.
    const before = await kubectl(['get', 'pods', '-n', 'kube-system']);
    expect(before.code).not.toBe(0);
    expect(before.stderr).toMatch(/forbidden/i);

    // kwctl get roles/admin > admin.yaml; add kubernetes_groups; kwctl create -f admin.yaml
    const got = await kwctl(['get', 'roles/admin']);
    expect(got.code, got.err).toBe(0);
    const doc = parseDocument(got.out);
    doc.setIn(['spec', 'allow', 'kubernetes_groups'], ['system:masters']);
    writeFileSync(join(dir, 'admin.yaml'), doc.toString());
    const updated = await kwctl(['create', '-f', join(dir, 'admin.yaml')]);
    expect(updated.code, updated.err).toBe(0);
    expect(updated.out).toContain('role "admin" has been updated');
    expect(readFileSync(join(dir, 'admin.yaml'), 'utf8')).toContain('system:masters');

    // The proxy sees the new role within moments; the same login now acts as system:masters.
    await waitUntil(async () => (await kubectl(['get', 'pods', '-n', 'kube-system'])).code === 0, 'kubectl as system:masters', 15_000);
    const ns = await kubectl(['get', 'namespaces', '-o', 'name']);
    expect(ns.code, ns.stderr).toBe(0);
    expect(ns.stdout).toContain('namespace/kube-system');
  }, 90_000);
});
