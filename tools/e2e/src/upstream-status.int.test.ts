import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { KUBE_SNI } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { createTestCa, runCommand, startTestKubeApiServer, type TestKubeApiServer } from '@keyway/testing';
import { kwctlIn, startTestAgent } from './harness.js';

// What kubectl prints when the API server behind an agent is down, or presents a certificate
// the agent does not trust: Kubernetes' own "Error from server (<reason>)" line naming the
// cluster, and nothing of the API server's address (which only the agent's log has).

const RESOURCES = `kind: role
version: v7
metadata: {name: devs}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: [devs]
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list]}]
---
kind: user
version: v2
metadata: {name: ada}
spec: {roles: [devs]}
`;

type Kubeconfig = { clusters: { cluster: Record<string, unknown> }[] };

describe('upstream failures reach kubectl as Status lines without internal addresses', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let dir: string;
  let downPort: number;
  const agents: KubeAgent[] = [];
  const kwctl = kwctlIn(() => dir);

  /** The API server's kubeconfig for the agent, with one change to its cluster entry. */
  const variant = (name: string, change: (cluster: Record<string, unknown>) => void): string => {
    const kc = parseYaml(readFileSync(api.agentKubeconfig, 'utf8')) as Kubeconfig;
    for (const c of kc.clusters) change(c.cluster);
    const file = join(dir, `${name}.kubeconfig`);
    writeFileSync(file, toYaml(kc));
    return file;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-upstream-'));
    api = await startTestKubeApiServer();
    api.setRbac([{ groups: ['devs'], verbs: ['get', 'list'], resources: ['pods'], namespaces: ['default'] }]);
    downPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const config = loadConfig({ env: { KEYWAY_DATA_DIR: dir, KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'up' } });
    stack = await startStack(config, silentLogger());
    expect((await kwctl(['create', '-f', '-'], RESOURCES)).code).toBe(0);
    const otherCa = Buffer.from(createTestCa('not-the-api-servers-ca').certPem).toString('base64');
    const down = variant('down', (c) => (c['server'] = `https://127.0.0.1:${downPort}`));
    const untrusted = variant('untrusted', (c) => {
      delete c['certificate-authority'];
      c['certificate-authority-data'] = otherCa;
    });
    for (const [cluster, kubeconfig] of [
      ['down', down],
      ['untrusted', untrusted],
    ] as const) {
      agents.push(await startTestAgent(stack, { kubeconfig, cluster, labels: {}, dir, kwctl }));
    }
  }, 90_000);

  afterAll(async () => {
    for (const a of agents) await a.close();
    await stack?.close();
    await api?.close();
  });

  const getAs = async (cluster: string, path: string): Promise<{ status: number; body: string }> => {
    const out = join(dir, `ada-${cluster}-tls`);
    expect((await kwctl(['auth', 'sign', '--user=ada', `--kube-cluster=${cluster}`, '--format=tls', `--out=${out}`])).code).toBe(0);
    const [host, port] = (stack.proxyAddress as string).split(':');
    return new Promise((resolve, reject) => {
      https
        .get({ host, port: Number(port), path, servername: KUBE_SNI, cert: readFileSync(`${out}.crt`), key: readFileSync(`${out}.key`), ca: readFileSync(`${out}.cas`) }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
  };

  const kubectlAs = async (cluster: string, args: string[]) => {
    const kubeconfig = join(dir, `ada-${cluster}.kubeconfig`);
    expect((await kwctl(['auth', 'sign', '--user=ada', `--kube-cluster=${cluster}`, `--proxy=${stack.proxyAddress}`, `--out=${kubeconfig}`])).code).toBe(0);
    return runCommand('kubectl', ['--kubeconfig', kubeconfig, ...args], { env: { PATH: process.env['PATH'], HOME: dir } });
  };

  // kubectl reports failed discovery with client-go's own sentence for the reason (as for an
  // unavailable APIService); a client that reads the Status (client-go, curl) gets the message.
  it('API server stopped: 503 ServiceUnavailable at once, naming the cluster, not the address', async () => {
    const started = Date.now();
    const r = await kubectlAs('down', ['get', 'pods', '-n', 'default']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Error from server \(ServiceUnavailable\)/);
    expect(r.stderr).not.toContain(String(downPort));
    console.log(`kubectl, API server stopped, after ${Date.now() - started} ms: ${r.stderr.trim().split('\n').at(-1)}`);
    const res = await getAs('down', '/api/v1/namespaces/default/pods');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', code: 503, reason: 'ServiceUnavailable', message: 'keyway: the Kubernetes API server of cluster "down" is not reachable from its agent (connection refused); try again shortly' });
    expect(res.body).not.toContain(String(downPort));
  });

  it('API server certificate not trusted: 502, naming the cluster, not the address', async () => {
    const r = await kubectlAs('untrusted', ['get', 'pods', '-n', 'default']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Error from server \(InternalError\)/);
    expect(r.stderr).not.toContain(String(api.port));
    console.log(`kubectl, TLS mismatch: ${r.stderr.trim().split('\n').at(-1)}`);
    const res = await getAs('untrusted', '/api/v1/namespaces/default/pods');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', code: 502, reason: 'InternalError', message: expect.stringMatching(/could not set up a trusted TLS connection to the Kubernetes API server of cluster "untrusted"/) });
    expect(res.body).not.toContain(String(api.port));
    expect(api.requests.filter((q) => q.user?.username === 'ada')).toEqual([]);
  });
});
