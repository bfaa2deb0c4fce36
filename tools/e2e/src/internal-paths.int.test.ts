import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { kwctlIn, startTestAgent } from './harness.js';
import { runCommand, startTestKubeApiServer, type TestKubeApiServer } from '@keyway/testing';

// A user with every Kubernetes right tries to reach the agent's internal /.keyway/ paths
// through the proxy's kube handler, in every spelling the path parser might miss.

const RESOURCES = `kind: role
version: v7
metadata: {name: everything}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: ['system:masters']
    kubernetes_resources: [{kind: '*', namespace: '*', name: '*', verbs: ['*']}]
---
kind: user
version: v2
metadata: {name: jimbo}
spec: {roles: [everything]}
`;

describe('internal paths are not routable from users', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let agent: KubeAgent;
  let dir: string;
  let kubeconfig: string;
  const kwctl = kwctlIn(() => dir);
  const kubectl = (args: string[]) => runCommand('kubectl', ['--kubeconfig', kubeconfig, ...args], { env: { PATH: process.env['PATH'], HOME: dir }, timeoutMs: 20_000 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-internal-'));
    api = await startTestKubeApiServer();
    const config = loadConfig({ env: { KEYWAY_DATA_DIR: dir, KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'acme' } });
    stack = await startStack(config, silentLogger());
    expect((await kwctl(['create', '-f', '-'], RESOURCES)).code).toBe(0);
    agent = await startTestAgent(stack, { kubeconfig: api.agentKubeconfig, cluster: 'kubernetes', labels: { env: 'dev' }, dir, kwctl, logger: silentLogger() });
    kubeconfig = join(dir, 'jimbo.kubeconfig');
    const signed = await kwctl(['auth', 'sign', '--user=jimbo', '--kube-cluster=kubernetes', `--proxy=${stack.proxyAddress}`, `--out=${kubeconfig}`]);
    expect(signed.code, signed.err).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await agent?.close();
    await stack?.close();
    await api?.close();
  });

  it.each(['/.keyway/tunnel/info', '/.KEYWAY/tunnel/info', '//.keyway//tunnel/info', '/%2Ekeyway/tunnel/info', '/%2ekeyway/tunnel/info?x=1'])(
    'kubectl get --raw %s is refused and tells nothing about the agent',
    async (path) => {
      const before = api.requests.length;
      const r = await kubectl(['get', '--raw', path]);
      expect(r.code).not.toBe(0);
      expect(r.stderr + r.stdout).not.toContain(agent.hostId);
      expect(r.stderr + r.stdout).not.toMatch(/"clusters"|hostname/);
      expect(api.requests.slice(before).some((q) => q.path.toLowerCase().includes('keyway'))).toBe(false);
    },
  );

  it('the proxy itself still learns what the agent serves', async () => {
    const r = await kubectl(['get', '--raw', '/version']);
    expect(r.code, r.stderr).toBe(0);
    expect(stack.proxy?.registry.pick('kubernetes')).toBeDefined();
  });
});
