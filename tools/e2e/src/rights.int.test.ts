import { mkdtempSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { KUBE_SNI } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { loadKubeconfig } from '@keyway/forwarder';
import { silentLogger } from '@keyway/log';
import { ProxyService } from '@keyway/proxy';
import { PROXY_SERVER_NAME } from '@keyway/tunnel';
import { kwctlIn, startTestAgent, waitUntil } from './harness.js';
import { startProcess, startTcpBalancer, startTestKubeApiServer, type TcpBalancer, type TestKubeApiServer } from '@keyway/testing';

// Issue 10, class 2: a right ends when it ends, on open connections too. Every stream kubectl
// can hold open through Keyway (watch, logs -f, exec, attach, port-forward, idle keep-alive
// connections, HTTP/2 sessions) ends when the user is locked or deleted or the certificate
// expires; strict locking refuses when the proxy's view of locks is stale; and
// max_kubernetes_connections caps the streams a user holds.

const ROLE = (name: string, options = '{}') => `kind: role
version: v7
metadata: {name: ${name}}
spec:
  options: ${options}
  allow:
    kubernetes_labels: {env: [dev]}
    kubernetes_groups: [devs]
    kubernetes_resources:
      - {kind: pod, namespace: default, name: '*', verbs: [get, list, watch, exec, portforward]}
`;
const USER = (name: string, role: string) => `kind: user
version: v2
metadata: {name: ${name}}
spec: {roles: [${role}]}
`;
const RESOURCES = [
  ROLE('devs'),
  ROLE('capped', '{max_kubernetes_connections: 2}'),
  ROLE('strict-devs', '{lock: strict}'),
  ROLE('ops'),
  USER('jimbo', 'devs'),
  USER('dora', 'devs'),
  USER('tess', 'devs'),
  USER('carl', 'capped'),
  USER('sam', 'strict-devs'),
  USER('bea', 'devs'),
  USER('rolf', 'ops'),
  USER('pia', 'devs'),
].join('---\n');

const SPDY = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false', KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' };

describe('rights end on open connections', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let agent: KubeAgent;
  let dir: string;
  let echo: net.Server;
  let echoPort: number;

  const kwctl = kwctlIn(() => dir);
  const env = (extra: Record<string, string> = {}) => ({ PATH: process.env['PATH'], HOME: dir, ...extra });
  const kubeconfigs = new Map<string, string>();
  const sign = async (user: string, proxy = stack.proxyAddress as string, ttl = '1h') => {
    const file = join(dir, `${user}-${kubeconfigs.size}.kubeconfig`);
    const r = await kwctl(['auth', 'sign', `--user=${user}`, '--kube-cluster=kubernetes', `--proxy=${proxy}`, `--ttl=${ttl}`, `--out=${file}`]);
    expect(r.code, r.err).toBe(0);
    kubeconfigs.set(user, file);
    return file;
  };
  const kubectl = (kubeconfig: string, args: string[], extra: Record<string, string> = {}) => startProcess('kubectl', ['--kubeconfig', kubeconfig, ...args], env(extra));
  /** Milliseconds from `since` until the process exits, or an error after a generous bound. */
  const timeExit = async (p: ReturnType<typeof startProcess>, what: string, since: number, boundMs = 15_000) => {
    const exitedAt = p.exited.then(() => Date.now());
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), boundMs).unref());
    const result = await Promise.race([p.exited, timer]);
    if (result === 'timeout') {
      await p.stop('SIGKILL');
      throw new Error(`${what} still running ${boundMs} ms after the right ended\n${p.stdout()}\n${p.stderr()}`);
    }
    return (await exitedAt) - since;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-rights-'));
    echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    echoPort = (echo.address() as net.AddressInfo).port;
    api = await startTestKubeApiServer();
    api.addPod({ name: 'web', namespace: 'default', logs: 'first line\n', ports: { 8080: echoPort } });
    // What kubectl attach talks to: a process that prints, then runs until the client goes.
    api.addPod({
      name: 'daemon',
      namespace: 'default',
      attach: async (_args, io) => {
        // Again and again: whenever kubectl starts reading, it sees the process is up.
        const tick = setInterval(() => io.stdout.write('attached\n'), 500);
        io.stdout.write('attached\n');
        await new Promise<void>((r) => (io.signal.aborted ? r() : io.signal.addEventListener('abort', () => r())));
        clearInterval(tick);
        return 0;
      },
    });
    api.setRbac([
      { groups: ['devs'], verbs: ['get', 'list', 'watch', 'create'], resources: ['pods', 'pods/log', 'pods/exec', 'pods/attach', 'pods/portforward'], namespaces: ['default'] },
    ]);
    const config = loadConfig({
      env: { KEYWAY_DATA_DIR: dir, KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'acme' },
    });
    stack = await startStack(config, silentLogger());
    const created = await kwctl(['create', '-f', '-'], RESOURCES);
    expect(created.code, created.err).toBe(0);
    agent = await startTestAgent(stack, { kubeconfig: api.agentKubeconfig, cluster: 'kubernetes', labels: { env: 'dev' }, dir, kwctl, logger: silentLogger() });
  }, 60_000);

  afterAll(async () => {
    await agent?.close();
    await stack?.close();
    await api?.close();
    echo?.close();
  });

  it('a lock ends watch, logs -f, exec and port-forward (WebSocket and SPDY) within about a second, exec saying why', async () => {
    const kc = await sign('jimbo');
    const watch = kubectl(kc, ['get', 'pods', '-n', 'default', '-w']);
    const logs = kubectl(kc, ['logs', '-f', 'web', '-n', 'default']);
    const execWs = kubectl(kc, ['exec', 'web', '-n', 'default', '--', 'sh', '-c', 'echo ready; sleep 120']);
    const execSpdy = kubectl(kc, ['exec', 'web', '-n', 'default', '--', 'sh', '-c', 'echo ready; sleep 120'], SPDY);
    const pfWs = kubectl(kc, ['port-forward', '-n', 'default', 'pod/web', ':8080']);
    const pfSpdy = kubectl(kc, ['port-forward', '-n', 'default', 'pod/web', ':8080'], SPDY);
    const attach = kubectl(kc, ['attach', 'daemon', '-n', 'default']);
    // An idle keep-alive connection of the same user.
    const files = join(dir, 'jimbo-tls');
    expect((await kwctl(['auth', 'sign', '--user=jimbo', '--kube-cluster=kubernetes', '--format=tls', `--out=${files}`])).code).toBe(0);
    const [host, port] = (stack.proxyAddress as string).split(':') as [string, string];
    const idleAgent = new https.Agent({ keepAlive: true, cert: readFileSync(`${files}.crt`), key: readFileSync(`${files}.key`), ca: readFileSync(`${files}.cas`), servername: KUBE_SNI });
    const idle = await get(idleAgent, host, Number(port), '/api/v1/namespaces/default/pods');
    expect(idle.status).toBe(200);
    const idleClosed = new Promise<number>((r) => idle.socket.once('close', () => r(Date.now())));
    await attach.waitFor(/attached/, 30_000);
    await watch.waitFor(/web/, 15_000);
    await logs.waitFor(/first line/, 15_000);
    await execWs.waitFor(/ready/, 15_000);
    await execSpdy.waitFor(/ready/, 15_000);
    for (const pf of [pfWs, pfSpdy]) {
      const port = Number((await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/, 15_000))[1]);
      expect(await roundTrip(port, 'before the lock')).toBe('before the lock');
    }
    expect(stack.proxy?.rights.openStreams('jimbo')).toBe(7);

    const lockAt = Date.now();
    const times = Promise.all([
      timeExit(watch, 'kubectl get -w', lockAt),
      timeExit(logs, 'kubectl logs -f', lockAt),
      timeExit(execWs, 'kubectl exec (WebSocket)', lockAt),
      timeExit(execSpdy, 'kubectl exec (SPDY)', lockAt),
      timeExit(pfWs, 'kubectl port-forward (WebSocket)', lockAt),
      timeExit(pfSpdy, 'kubectl port-forward (SPDY)', lockAt),
      timeExit(attach, 'kubectl attach', lockAt),
      withBound(idleClosed, 15_000, 'idle keep-alive connection').then((at) => at - lockAt),
    ]);
    const locked = await kwctl(['lock', '--user=jimbo', '--message=incident 42']);
    expect(locked.code, locked.err).toBe(0);
    const lockedAfter = Date.now() - lockAt;
    const t = await times;
    console.log(`from kwctl lock (returned after ${lockedAfter} ms) to exit: watch ${t[0]} ms, logs -f ${t[1]} ms, exec ws ${t[2]} ms, exec spdy ${t[3]} ms, port-forward ws ${t[4]} ms, spdy ${t[5]} ms, attach ${t[6]} ms, idle keep-alive ${t[7]} ms`);
    idleAgent.destroy();
    console.log(`kubectl exec over WebSocket ended with code ${await execWs.exited}, stderr ${JSON.stringify(execWs.stderr())}; over SPDY ${JSON.stringify(execSpdy.stderr())}`);
    for (const exec of [execWs, execSpdy, attach]) {
      expect(exec.stderr()).toContain('keyway: session closed: user "jimbo" is locked: incident 42');
      expect(await exec.exited).not.toBe(0);
    }
    // The watch ends with an ERROR event saying why, which kubectl prints as a Status row.
    await watch.exited;
    expect(watch.stdout()).toMatch(/Failure\s+Forbidden\s+keyway: user "jimbo" is locked: incident 42/);
    expect(stack.proxy?.rights.held('jimbo')).toBe(0);
    // Each closed stream and connection is audited as Teleport's client.disconnect.
    const disconnects = async () =>
      (await kwctl(['audit', 'search', '--event', 'client.disconnect', '--user', 'jimbo', '--format', 'json', '--limit', '100'])).out
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitUntil(async () => (await disconnects()).length >= 8, 'the client.disconnect events');
    const events = await disconnects();
    expect(events.every((e) => e['code'] === 'T3006I' && String(e['reason']).endsWith('user "jimbo" is locked: incident 42'))).toBe(true);
    expect(events.map((e) => String(e['reason']))).toEqual(expect.arrayContaining([expect.stringMatching(/^exec session closed/), expect.stringMatching(/^attach session closed/), expect.stringMatching(/^portforward session closed/), expect.stringMatching(/^GET .*\/pods closed/), expect.stringMatching(/^connection closed/)]));
    // And nothing new gets through.
    const again = kubectl(kc, ['get', 'pods', '-n', 'default']);
    await again.exited;
    expect(again.stderr()).toMatch(/jimbo" is locked: incident 42/);
  }, 90_000);

  it('a lock on one of the certificate\'s roles ends its streams', async () => {
    const kc = await sign('rolf');
    const exec = kubectl(kc, ['exec', 'web', '-n', 'default', '--', 'sh', '-c', 'echo ready; sleep 120']);
    const watch = kubectl(kc, ['get', 'pods', '-n', 'default', '-w']);
    await exec.waitFor(/ready/, 15_000);
    await watch.waitFor(/web/, 15_000);
    const at = Date.now();
    const times = Promise.all([timeExit(exec, 'kubectl exec', at), timeExit(watch, 'kubectl get -w', at)]);
    expect((await kwctl(['lock', '--role=ops', '--message=role retired'])).code).toBe(0);
    const t = await times;
    console.log(`from kwctl lock --role to exit: exec ${t[0]} ms, watch ${t[1]} ms`);
    expect(exec.stderr()).toContain('keyway: session closed: user "rolf" is locked: role retired');
    expect(watch.stdout()).toContain('is locked: role retired');
  }, 60_000);

  it('deleting the user ends its streams', async () => {
    const kc = await sign('dora');
    const watch = kubectl(kc, ['get', 'pods', '-n', 'default', '-w']);
    const exec = kubectl(kc, ['exec', 'web', '-n', 'default', '--', 'sh', '-c', 'echo ready; sleep 120'], SPDY);
    await watch.waitFor(/web/, 15_000);
    await exec.waitFor(/ready/, 15_000);
    const removeAt = Date.now();
    const times = Promise.all([timeExit(watch, 'kubectl get -w', removeAt), timeExit(exec, 'kubectl exec', removeAt)]);
    const removed = await kwctl(['users', 'rm', 'dora']);
    expect(removed.code, removed.err).toBe(0);
    const t = await times;
    console.log(`from kwctl users rm to exit: watch ${t[0]} ms, exec ${t[1]} ms`);
    expect(exec.stderr()).toContain('keyway: session closed: user "dora" no longer exists');
    expect(watch.stdout()).toContain('user "dora" no longer exists');
  }, 60_000);

  it('a certificate that expires is refused on its keep-alive connection, and its watch ends', async () => {
    const files = join(dir, 'tess-tls');
    const r = await kwctl(['auth', 'sign', '--user=tess', '--kube-cluster=kubernetes', '--format=tls', '--ttl=4s', `--out=${files}`]);
    expect(r.code, r.err).toBe(0);
    const tls = { cert: readFileSync(`${files}.crt`), key: readFileSync(`${files}.key`), ca: readFileSync(`${files}.cas`) };
    const notAfter = new Date(new (await import('node:crypto')).X509Certificate(tls.cert).validTo).getTime();
    const [host, port] = (stack.proxyAddress as string).split(':') as [string, string];
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...tls, servername: KUBE_SNI });
    try {
      const first = await get(agent, host, Number(port), '/api/v1/namespaces/default/pods');
      expect(first.status).toBe(200);
      const watch = await openWatch(agent, host, Number(port));
      const socket = first.socket;
      const socketClosed = new Promise<number>((res) => socket.once('close', () => res(Date.now())));
      const watchEnded = watch.ended.then(() => Date.now());
      const [closedAt, endedAt] = await Promise.all([withBound(socketClosed, 20_000, 'keep-alive socket'), withBound(watchEnded, 20_000, 'watch')]);
      console.log(`after NotAfter: keep-alive connection closed +${closedAt - notAfter} ms, watch ended +${endedAt - notAfter} ms`);
      expect(closedAt).toBeGreaterThanOrEqual(notAfter);
      const after = await get(agent, host, Number(port), '/api/v1/namespaces/default/pods');
      expect(after.status).toBe(401);
      expect(after.body).toMatch(/expired/);
    } finally {
      agent.destroy();
    }
  }, 60_000);

  it('a certificate that expires is refused on its HTTP/2 session, and the session and its streams end', async () => {
    const files = join(dir, 'bea-tls');
    const r = await kwctl(['auth', 'sign', '--user=bea', '--kube-cluster=kubernetes', '--format=tls', '--ttl=4s', `--out=${files}`]);
    expect(r.code, r.err).toBe(0);
    const tls = { cert: readFileSync(`${files}.crt`), key: readFileSync(`${files}.key`), ca: readFileSync(`${files}.cas`) };
    const notAfter = new Date(new (await import('node:crypto')).X509Certificate(tls.cert).validTo).getTime();
    const session = http2.connect(`https://${stack.proxyAddress as string}`, { ...tls, servername: KUBE_SNI });
    session.on('error', () => undefined);
    const h2get = (s: http2.ClientHttp2Session, path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = s.request({ ':path': path });
        let status = 0;
        let body = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
      });
    try {
      expect((await h2get(session, '/api/v1/namespaces/default/pods')).status).toBe(200);
      const watch = session.request({ ':path': '/api/v1/namespaces/default/pods?watch=true' });
      watch.on('error', () => undefined);
      await new Promise<void>((res) => watch.once('data', () => res()));
      const watchEnded = new Promise<number>((res) => watch.once('close', () => res(Date.now())));
      const sessionClosed = new Promise<number>((res) => session.once('close', () => res(Date.now())));
      const [endedAt, closedAt] = await Promise.all([withBound(watchEnded, 20_000, 'HTTP/2 watch'), withBound(sessionClosed, 20_000, 'HTTP/2 session')]);
      console.log(`after NotAfter: HTTP/2 watch ended +${endedAt - notAfter} ms, session closed +${closedAt - notAfter} ms`);
      expect(closedAt).toBeGreaterThanOrEqual(notAfter);
      const fresh = http2.connect(`https://${stack.proxyAddress as string}`, { ...tls, servername: KUBE_SNI });
      fresh.on('error', () => undefined);
      const after = await h2get(fresh, '/api/v1/namespaces/default/pods');
      fresh.close();
      expect(after.status).toBe(401);
      expect(after.body).toMatch(/expired/);
    } finally {
      session.destroy();
    }
  }, 60_000);

  it('over max_kubernetes_connections a stream gets 429 naming the limit; short requests are not counted', async () => {
    const kc = await sign('carl');
    const watches = [kubectl(kc, ['get', 'pods', '-n', 'default', '-w']), kubectl(kc, ['logs', '-f', 'web', '-n', 'default'])];
    await watches[0]?.waitFor(/web/, 15_000);
    await watches[1]?.waitFor(/first line/, 15_000);
    const third = kubectl(kc, ['exec', 'web', '-n', 'default', '--', 'echo', 'hi']);
    expect(await third.exited).not.toBe(0);
    expect(third.stderr()).toMatch(/max_kubernetes_connections: 2/);
    const fourth = kubectl(kc, ['get', 'pods', '-n', 'default', '-w']);
    expect(await fourth.exited).not.toBe(0);
    expect(fourth.stderr()).toMatch(/already has 2 open Kubernetes streams.*max_kubernetes_connections: 2/);
    const plain = kubectl(kc, ['get', 'pods', '-n', 'default']);
    expect(await plain.exited, plain.stderr()).toBe(0);
    await watches[0]?.stop();
    await waitUntil(() => stack.proxy?.rights.openStreams('carl') === 1, 'the watch to be released');
    const exec = kubectl(kc, ['exec', 'web', '-n', 'default', '--', 'echo', 'hi']);
    expect(await exec.exited, exec.stderr()).toBe(0);
    expect(exec.stdout()).toBe('hi\n');
    await watches[1]?.stop();
  }, 60_000);

  describe('locking_mode strict', () => {
    let cuttable: CuttableProxy;

    beforeAll(async () => {
      cuttable = await startCuttableProxy(stack, api);
    }, 30_000);

    afterAll(async () => {
      await cuttable?.close();
    });

    it('a lock ends the user\'s streams on every proxy', async () => {
      const viaFirst = await sign('pia');
      const viaSecond = await sign('pia', cuttable.address);
      const watches = [kubectl(viaFirst, ['get', 'pods', '-n', 'default', '-w']), kubectl(viaSecond, ['get', 'pods', '-n', 'default', '-w'])];
      const execs = [
        kubectl(viaFirst, ['exec', 'web', '-n', 'default', '--', 'sh', '-c', 'echo ready; sleep 120']),
        kubectl(viaSecond, ['exec', 'web', '-n', 'default', '--', 'sh', '-c', 'echo ready; sleep 120'], SPDY),
      ];
      for (const w of watches) await w.waitFor(/web/, 15_000);
      for (const e of execs) await e.waitFor(/ready/, 15_000);
      expect(cuttable.proxy.rights.openStreams('pia')).toBe(2);
      const at = Date.now();
      const times = Promise.all([...watches, ...execs].map((p, i) => timeExit(p, `stream ${i}`, at)));
      expect((await kwctl(['lock', '--user=pia', '--message=left the company'])).code).toBe(0);
      const t = await times;
      console.log(`from kwctl lock to exit, two proxies: watch ${t[0]} / ${t[1]} ms, exec ${t[2]} / ${t[3]} ms`);
      for (const e of execs) expect(e.stderr()).toContain('keyway: session closed: user "pia" is locked: left the company');
      expect(cuttable.proxy.rights.held('pia')).toBe(0);
    }, 60_000);

    it('refuses a strict user with 503 while the view of locks is stale, and ends its streams; best-effort users go on', async () => {
      const { proxy, address: proxyAddress } = cuttable;
      const strict = await sign('sam', proxyAddress);
      const ok = kubectl(strict, ['get', 'pods', '-n', 'default', '-o', 'name']);
      expect(await ok.exited, ok.stderr()).toBe(0);
      const watch = kubectl(strict, ['get', 'pods', '-n', 'default', '-w']);
      await watch.waitFor(/web/, 15_000);
      expect(proxy.cache.lockingMode).toBe('best_effort');
      const cutAt = Date.now();
      await cuttable.cut();
      const ended = await timeExit(watch, 'strict watch', cutAt, 20_000);
      console.log(`watch of auth cut: strict user's watch ended after ${ended} ms (view stale after 3 s)`);
      const refused = kubectl(strict, ['get', 'pods', '-n', 'default']);
      expect(await refused.exited).not.toBe(0);
      expect(refused.stderr()).toMatch(/view of locks .*locking_mode is strict/);
      // A best-effort user is still served from the last view.
      const relaxed = await sign('carl', proxyAddress);
      const served = kubectl(relaxed, ['get', 'pods', '-n', 'default', '-o', 'name']);
      expect(await served.exited, served.stderr()).toBe(0);
      // The line comes back: so does the strict user.
      await cuttable.restore();
      await waitUntil(() => proxy.cache.viewAgeMs() === 0, 'the proxy to watch auth again', 20_000);
      const back = kubectl(strict, ['get', 'pods', '-n', 'default', '-o', 'name']);
      expect(await back.exited, back.stderr()).toBe(0);
    }, 90_000);
  });
});

describe('locking_mode strict cluster-wide (auth_service.authentication.locking_mode)', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let cuttable: CuttableProxy;
  let dir: string;
  const kwctl = kwctlIn(() => dir);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-rights-strict-'));
    api = await startTestKubeApiServer();
    api.addPod({ name: 'web', namespace: 'default' });
    api.setRbac([{ groups: ['devs'], verbs: ['get', 'list', 'watch'], resources: ['pods'], namespaces: ['default'] }]);
    const config = loadConfig({
      env: {
        KEYWAY_DATA_DIR: dir,
        KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_CLUSTER_NAME: 'acme',
        KEYWAY_AUTH_SERVICE__AUTHENTICATION__LOCKING_MODE: 'strict',
      },
    });
    stack = await startStack(config, silentLogger());
    expect((await kwctl(['create', '-f', '-'], [ROLE('devs'), USER('una', 'devs')].join('---\n'))).code).toBe(0);
    cuttable = await startCuttableProxy(stack, api);
  }, 60_000);

  afterAll(async () => {
    await cuttable?.close();
    await stack?.close();
    await api?.close();
  });

  it('every user is refused with 503 while the view is stale, though no role asks for strict', async () => {
    expect(cuttable.proxy.cache.lockingMode).toBe('strict');
    const kc = join(dir, 'una.kubeconfig');
    expect((await kwctl(['auth', 'sign', '--user=una', '--kube-cluster=kubernetes', `--proxy=${cuttable.address}`, `--out=${kc}`])).code).toBe(0);
    const run = (args: string[]) => startProcess('kubectl', ['--kubeconfig', kc, ...args], { PATH: process.env['PATH'], HOME: dir });
    const ok = run(['get', 'pods', '-n', 'default', '-o', 'name']);
    expect(await ok.exited, ok.stderr()).toBe(0);
    await cuttable.cut();
    await waitUntil(() => cuttable.proxy.cache.viewAgeMs() > 3_000, 'the view to go stale', 20_000);
    const refused = run(['get', 'pods', '-n', 'default']);
    expect(await refused.exited).not.toBe(0);
    expect(refused.stderr()).toMatch(/view of locks is \d+s old .*locking_mode is strict for user "una"/);
  }, 60_000);
});

interface CuttableProxy {
  proxy: ProxyService;
  address: string;
  /** Cuts the proxy's line to auth (its watch breaks and cannot reconnect). */
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** A second proxy, serving the test API server itself, whose line to auth runs through a balancer the test can cut. */
async function startCuttableProxy(stack: Stack, api: TestKubeApiServer): Promise<CuttableProxy> {
  let balancer: TcpBalancer = await startTcpBalancer([stack.authAddress]);
  const port = Number(balancer.address.slice(balancer.address.lastIndexOf(':') + 1));
  const [creds] = loadKubeconfig(api.agentKubeconfig);
  const proxy = new ProxyService({
    clusterName: 'acme',
    listenAddr: '127.0.0.1:0',
    publicAddrs: [],
    authAddr: balancer.address,
    credentials: stack.auth.issueHostCredentials('Proxy', [PROXY_SERVER_NAME, '*.keyway.cluster.local', 'localhost'], ['127.0.0.1']),
    localClusters: [{ creds: { ...(creds as NonNullable<typeof creds>), name: 'kubernetes' }, labels: { env: 'dev' } }],
    audit: stack.auth.audit,
    logger: silentLogger(),
  });
  const { address } = await proxy.serve();
  return {
    proxy,
    address,
    cut: () => balancer.close(),
    restore: async () => {
      balancer = await startTcpBalancer([stack.authAddress], { port });
    },
    close: async () => {
      await proxy.close();
      await balancer.close();
    },
  };
}

function roundTrip(port: number, text: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
}

function get(agent: https.Agent, host: string, port: number, path: string): Promise<{ status: number; body: string; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host, port, path, agent }, (res) => {
        const socket = res.socket as TLSSocket;
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, socket }));
      })
      .on('error', reject);
  });
}

function openWatch(agent: https.Agent, host: string, port: number): Promise<{ ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host, port, path: '/api/v1/namespaces/default/pods?watch=true', agent }, (res) => {
      const ended = new Promise<void>((r) => {
        res.on('close', () => r());
        res.on('error', () => r());
      });
      res.once('data', () => resolve({ ended }));
      res.on('data', () => undefined);
    });
    req.on('error', (err) => reject(err));
  });
}

async function withBound<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, bound]);
  } finally {
    clearTimeout(timer);
  }
}
