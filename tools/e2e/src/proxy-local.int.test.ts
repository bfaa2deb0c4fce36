import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '@keyway/auth';
import { KUBE_SNI, readIdentityFile } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { kwctlIn } from './harness.js';
import { runCommand, startTestKubeApiServer, type TestKubeApiServer } from '@keyway/testing';

// The seed's "proxy outside the cluster": the proxy serves a cluster from its own kubeconfig,
// no agent, with the same authorization and forwarding. Also the dedicated Kubernetes
// listener and the web API's ping.

const RESOURCES = `kind: role
version: v7
metadata: {name: devs}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: [devs]
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list, exec]}]
---
kind: user
version: v2
metadata: {name: ada}
spec: {roles: [devs]}
`;

describe('proxy serving a cluster itself', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let dir: string;

  const kwctl = kwctlIn(() => dir);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-local-'));
    api = await startTestKubeApiServer();
    api.addPod({ name: 'web', namespace: 'default' });
    api.setRbac([{ groups: ['devs'], verbs: ['get', 'list', 'create'], resources: ['pods', 'pods/exec'], namespaces: ['default'] }]);
    const config = loadConfig({
      env: {
        KEYWAY_DATA_DIR: dir,
        KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_PROXY_SERVICE__KUBERNETES__LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_PROXY_SERVICE__KUBERNETES__KUBECONFIG_FILE: api.agentKubeconfig,
        KEYWAY_CLUSTER_NAME: 'edge',
      },
    });
    stack = await startStack(config, silentLogger());
    expect((await kwctl(['create', '-f', '-'], RESOURCES)).code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await stack?.close();
    await api?.close();
  });

  it('answers kubectl on the shared port and on the dedicated Kubernetes listener', async () => {
    const cluster = stack.proxy?.registry.clusters()[0]?.name as string;
    for (const addr of [stack.proxyAddress, stack.kubeAddress] as string[]) {
      const kubeconfig = join(dir, `ada-${addr.replace(/\W/g, '_')}.kubeconfig`);
      expect((await kwctl(['auth', 'sign', '--user=ada', `--kube-cluster=${cluster}`, `--proxy=${addr}`, `--out=${kubeconfig}`])).code).toBe(0);
      const env = { PATH: process.env['PATH'], HOME: dir };
      const pods = await runCommand('kubectl', ['--kubeconfig', kubeconfig, 'get', 'pods', '-n', 'default', '-o', 'name'], { env });
      expect(pods.stdout, pods.stderr).toBe('pod/web\n');
      const exec = await runCommand('kubectl', ['--kubeconfig', kubeconfig, 'exec', 'web', '-n', 'default', '--', 'echo', 'local'], { env });
      expect(exec.stdout, exec.stderr).toBe('local\n');
    }
    expect(api.requests.filter((r) => r.resource === 'pods').every((r) => r.user?.username === 'ada')).toBe(true);
  });

  it('answers the web API ping', async () => {
    const [host, port] = (stack.proxyAddress as string).split(':');
    const ca = readIdentityFile(join(dir, 'admin-identity.pem')).caPems;
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get({ host, port: Number(port), path: '/v1/webapi/ping', ca, servername: 'localhost' }, (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    expect(JSON.parse(body)).toMatchObject({ cluster_name: 'edge', proxy: { kube: { enabled: true } } });
  });

  // Last: it shuts the stack down.
  it('shuts down at once while kubectl connections sit idle in keep-alive', async () => {
    const cluster = stack.proxy?.registry.clusters()[0]?.name as string;
    const files = join(dir, 'ada-tls');
    expect((await kwctl(['auth', 'sign', '--user=ada', `--kube-cluster=${cluster}`, '--format=tls', `--out=${files}`])).code).toBe(0);
    const [host, port] = (stack.proxyAddress as string).split(':');
    const agent = new https.Agent({ keepAlive: true, cert: readFileSync(`${files}.crt`), key: readFileSync(`${files}.key`), ca: readFileSync(`${files}.cas`), servername: KUBE_SNI });
    const status = await new Promise<number>((resolve, reject) => {
      https
        .get({ host, port: Number(port), path: '/api/v1/namespaces/default/pods', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
    expect(status).toBe(200);
    const started = Date.now();
    await stack.close();
    // Well under the 90 s keep-alive: the idle connection was dropped, not waited for.
    expect(Date.now() - started).toBeLessThan(10_000);
    agent.destroy();
  });
});
