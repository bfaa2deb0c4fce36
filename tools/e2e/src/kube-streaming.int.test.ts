import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { kwctlIn, startTestAgent } from './harness.js';
import { runCommand, startProcess, startTestKubeApiServer, type TestKubeApiServer } from '@keyway/testing';

// kubectl through Keyway (proxy + agent) to the test API server, for what a cluster without
// nodes cannot answer: logs, exec and port-forward over WebSocket and SPDY/3.1, and watch.

const RESOURCES = `kind: role
version: v7
metadata: {name: junior-devs}
spec:
  allow:
    kubernetes_labels: {env: [dev, staging]}
    kubernetes_groups: ['{{internal.kubernetes_groups}}']
    kubernetes_resources:
      - {kind: pod, namespace: default, name: '*', verbs: [get, list, watch, exec, portforward]}
---
kind: user
version: v2
metadata: {name: jimbo}
spec:
  roles: ['junior-devs']
  traits: {kubernetes_groups: ['teleport-view']}
`;

describe('kubectl streaming through Keyway', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let agent: KubeAgent;
  let dir: string;
  let kubeconfig: string;
  let echo: net.Server;
  let echoPort: number;

  const kwctl = kwctlIn(() => dir);
  const env = (extra: Record<string, string> = {}) => ({ PATH: process.env['PATH'], HOME: dir, ...extra });
  const kubectl = (args: string[], extra: Record<string, string> = {}, input?: string) =>
    runCommand('kubectl', ['--kubeconfig', kubeconfig, ...args], { env: env(extra), timeoutMs: 20_000, ...(input !== undefined ? { input } : {}) });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-stream-'));
    echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    echoPort = (echo.address() as net.AddressInfo).port;
    api = await startTestKubeApiServer();
    api.addPod({ name: 'web', namespace: 'default', logs: 'line one\nline two\n', ports: { 8080: echoPort } });
    api.setRbac([
      { groups: ['teleport-view'], verbs: ['get', 'list', 'watch', 'create'], resources: ['pods', 'pods/log', 'pods/exec', 'pods/attach', 'pods/portforward'], namespaces: ['default'] },
    ]);
    const config = loadConfig({
      env: { KEYWAY_DATA_DIR: dir, KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'acme' },
    });
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
    echo?.close();
  });

  it('gets pods as jimbo; the API server sees only the impersonated identity', async () => {
    const before = api.requests.length;
    const r = await kubectl(['get', 'pods', '-n', 'default']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/web/);
    const seen = api.requests.slice(before).find((q) => q.resource === 'pods');
    expect(seen?.impersonated).toBe(true);
    expect(seen?.headersDistinct['impersonate-user']).toEqual(['jimbo']);
    expect(seen?.headersDistinct['impersonate-group']).toEqual(expect.arrayContaining(['teleport-view', 'system:authenticated']));
    expect(seen?.headers['authorization']).toBeUndefined();
  });

  it('watches pods until the request times out', async () => {
    const w = startProcess('kubectl', ['--kubeconfig', kubeconfig, 'get', 'pods', '-n', 'default', '-w', '--request-timeout=3s'], env());
    await w.waitFor(/web/, 10_000);
    api.addPod({ name: 'late', namespace: 'default' });
    await w.waitFor(/late/, 10_000);
    await w.exited;
  });

  it('reads logs', async () => {
    const r = await kubectl(['logs', 'web', '-n', 'default']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('line one\nline two\n');
  });

  for (const transport of <{ name: string; env: Record<string, string> }[]>[
    { name: 'WebSocket', env: {} },
    { name: 'SPDY/3.1', env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false', KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' } },
  ]) {
    it(`execs over ${transport.name}`, async () => {
      const r = await kubectl(['exec', 'web', '-n', 'default', '--', 'echo', 'hi'], transport.env);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('hi\n');
      expect(r.code).toBe(0);
      const piped = await kubectl(['exec', '-i', 'web', '-n', 'default', '--', 'cat'], transport.env, 'through the tunnel\n');
      expect(piped.stdout).toBe('through the tunnel\n');
    });

    it(`port-forwards bytes both ways over ${transport.name}`, async () => {
      const pf = startProcess('kubectl', ['--kubeconfig', kubeconfig, 'port-forward', '-n', 'default', 'pod/web', ':8080'], env(transport.env));
      try {
        const port = Number((await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/, 15_000))[1]);
        const reply = await new Promise<string>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => s.write('ping through keyway'));
          let got = '';
          s.on('data', (d: Buffer) => {
            got += d.toString();
            if (got.length >= 'ping through keyway'.length) {
              s.end();
              resolve(got);
            }
          });
          s.on('error', reject);
        });
        expect(reply).toBe('ping through keyway');
      } finally {
        await pf.stop();
      }
    });
  }

  it('audits every request, allowed or denied, as kube.request', async () => {
    const denied = await kubectl(['get', 'secrets', '-n', 'kube-system']);
    expect(denied.code).not.toBe(0);
    const out = (await kwctl(['audit', 'search', '--event', 'kube.request', '--user', 'jimbo', '--format', 'json', '--limit', '1000'])).out;
    const events = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const list = events.find((e) => e['request_path'] === '/api/v1/namespaces/default/pods' && e['response_code'] === 200);
    expect(list).toMatchObject({
      event: 'kube.request',
      code: 'T3009I',
      user: 'jimbo',
      user_roles: ['junior-devs'],
      proto: 'kube',
      verb: 'GET',
      kubernetes_cluster: 'kubernetes',
      kubernetes_users: ['jimbo'],
      kubernetes_labels: { env: 'dev' },
      resource_kind: 'pods',
      resource_namespace: 'default',
      cluster_name: 'acme',
    });
    expect(list?.['kubernetes_groups']).toEqual(expect.arrayContaining(['teleport-view', 'system:authenticated']));
    expect(list?.['server_id']).toEqual(expect.any(String));
    const refused = events.find((e) => e['request_path'] === '/api/v1/namespaces/kube-system/secrets');
    expect(refused).toMatchObject({ response_code: 403, resource_kind: 'secrets', resource_namespace: 'kube-system' });
    expect(refused?.['denied_reason']).toMatch(/jimbo.*junior-devs/);
    const exec = events.find((e) => String(e['request_path']).endsWith('/pods/web/exec') && e['response_code'] === 101);
    expect(exec).toMatchObject({ resource_kind: 'pods/exec', resource_name: 'web' });
    const sessions = (await kwctl(['audit', 'search', '--event', 'session.end', '--user', 'jimbo', '--format', 'json'])).out.trim().split('\n');
    const end = JSON.parse(sessions.at(-1) as string) as Record<string, unknown>;
    expect(end).toMatchObject({ code: 'T2004I', kubernetes_pod_name: 'web', kubernetes_pod_namespace: 'default', command: ['echo', 'hi'], participants: ['jimbo'] });
    const started = (await kwctl(['audit', 'search', '--event', 'session.start', '--format', 'json'])).out;
    expect(started).toContain(String(end['sid']));
    const forwards = (await kwctl(['audit', 'search', '--event', 'port_forward', '--format', 'json'])).out;
    expect(forwards).toMatch(/"code":"T3003I".*"kubernetes_pod_name":"web"|"kubernetes_pod_name":"web".*"code":"T3003I"/);
  });

  it('refuses exec when the role does not allow it', async () => {
    const narrower = RESOURCES.replace('[get, list, watch, exec, portforward]', '[get, list, watch]');
    expect((await kwctl(['create', '--force', '-f', '-'], narrower)).code).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    const r = await kubectl(['exec', 'web', '-n', 'default', '--', 'echo', 'hi']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/jimbo/);
    expect(r.stderr).toMatch(/exec/);
  });
});
