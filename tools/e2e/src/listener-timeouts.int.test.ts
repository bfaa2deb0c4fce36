import { mkdtempSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '@keyway/auth';
import { KUBE_SNI } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { startTestKubeApiServer, type TestKubeApiServer } from '@keyway/testing';
import { GRPC_ALPN, PROXY_SERVER_NAME, TUNNEL_ALPN, peekClientHello } from '@keyway/tunnel';
import { kwctlIn } from './harness.js';

// Attacks on the proxy's listeners by clients that connect and then stall, at every stage:
// before the ClientHello, inside the TLS handshake, after it, inside the request headers
// (slowloris), as an agent that never speaks, and through the relay to auth. Each must be
// dropped after the configured (here: small) time, while authenticated long-lived streams
// stay open past every one of those times.

const T = { clientHello: 800, handshake: 800, unauthenticated: 800, headers: 1_500, idle: 1_500, webRequest: 2_000, webIdle: 1_000, tunnelHello: 800, relayFirstByte: 800, authIdle: 1_500 };

const RESOURCES = `kind: role
version: v7
metadata: {name: watchers}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: [devs]
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list, watch]}]
---
kind: user
version: v2
metadata: {name: ada}
spec: {roles: [watchers]}
`;

describe('listener timeouts under attack', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let dir: string;
  let host: string;
  let port: number;
  let kubePort: number;
  let ada: { cert: Buffer; key: Buffer; ca: Buffer };
  const kwctl = kwctlIn(() => dir);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-timeouts-'));
    api = await startTestKubeApiServer();
    api.addPod({ name: 'web', namespace: 'default' });
    api.setRbac([{ groups: ['devs'], verbs: ['get', 'list', 'watch'], resources: ['pods'], namespaces: ['default'] }]);
    const ms = (v: number) => `${v}ms`;
    const config = loadConfig({
      env: {
        KEYWAY_DATA_DIR: dir,
        KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_PROXY_SERVICE__KUBERNETES__LISTEN_ADDR: '127.0.0.1:0',
        KEYWAY_PROXY_SERVICE__KUBERNETES__KUBECONFIG_FILE: api.agentKubeconfig,
        KEYWAY_PROXY_SERVICE__TIMEOUTS__CLIENT_HELLO: ms(T.clientHello),
        KEYWAY_PROXY_SERVICE__TIMEOUTS__HANDSHAKE: ms(T.handshake),
        KEYWAY_PROXY_SERVICE__TIMEOUTS__UNAUTHENTICATED: ms(T.unauthenticated),
        KEYWAY_PROXY_SERVICE__TIMEOUTS__HEADERS: ms(T.headers),
        KEYWAY_PROXY_SERVICE__TIMEOUTS__IDLE: ms(T.idle),
        KEYWAY_PROXY_SERVICE__TIMEOUTS__WEB_REQUEST: ms(T.webRequest),
        KEYWAY_PROXY_SERVICE__TIMEOUTS__WEB_IDLE: ms(T.webIdle),
        KEYWAY_PROXY_SERVICE__TIMEOUTS__TUNNEL_HELLO: ms(T.tunnelHello),
        KEYWAY_PROXY_SERVICE__TIMEOUTS__RELAY_FIRST_BYTE: ms(T.relayFirstByte),
        KEYWAY_AUTH_SERVICE__GRPC__MAX_CONNECTION_IDLE: ms(T.authIdle),
        KEYWAY_CLUSTER_NAME: 'edge',
      },
    });
    stack = await startStack(config, silentLogger());
    [host, port] = hostPort(stack.proxyAddress as string);
    kubePort = hostPort(stack.kubeAddress as string)[1];
    expect((await kwctl(['create', '-f', '-'], RESOURCES)).code).toBe(0);
    const cluster = stack.proxy?.registry.clusters()[0]?.name as string;
    const files = join(dir, 'ada');
    expect((await kwctl(['auth', 'sign', '--user=ada', `--kube-cluster=${cluster}`, '--format=tls', `--out=${files}`])).code).toBe(0);
    ada = { cert: readFileSync(`${files}.crt`), key: readFileSync(`${files}.key`), ca: readFileSync(`${files}.cas`) };
  }, 60_000);

  afterAll(async () => {
    await stack?.close();
    await api?.close();
  });

  it('drops a raw TCP connection that sends nothing (no ClientHello)', async () => {
    const socket = net.connect(port, host);
    const { ms } = await closed(socket);
    report('raw TCP, nothing sent', ms, T.clientHello);
  });

  it('drops a ClientHello trickled a byte at a time', async () => {
    const hello = await captureClientHello({ servername: 'localhost' });
    const socket = net.connect(port, host);
    let i = 0;
    const trickle = setInterval(() => i < hello.length && socket.write(hello.subarray(i, ++i)), 100);
    const { ms } = await closed(socket);
    clearInterval(trickle);
    expect(i).toBeLessThan(hello.length);
    report('ClientHello trickled', ms, T.clientHello);
  });

  for (const route of [
    { name: 'a kube', hello: { servername: KUBE_SNI, ALPNProtocols: ['h2', 'http/1.1'] } },
    { name: 'a web', hello: { servername: 'localhost' } },
    { name: 'an agent tunnel (ALPN keyway-tunnel/2)', hello: { servername: PROXY_SERVER_NAME, ALPNProtocols: [TUNNEL_ALPN] } },
  ]) {
    it(`drops ${route.name} connection that sends its ClientHello and never finishes the handshake`, async () => {
      const hello = await captureClientHello(route.hello);
      const socket = net.connect(port, host, () => socket.write(hello));
      socket.resume();
      const { ms } = await closed(socket);
      report(`${route.name}: handshake stalled`, ms, T.handshake);
    });
  }

  it('drops a stalled handshake on the dedicated kube listener, and a connection that sends nothing there', async () => {
    const silent = net.connect(kubePort, host);
    report('kube listener: nothing sent', (await closed(silent)).ms, T.handshake);
    const hello = await captureClientHello({ servername: KUBE_SNI });
    const stalled = net.connect(kubePort, host, () => stalled.write(hello));
    stalled.resume();
    report('kube listener: handshake stalled', (await closed(stalled)).ms, T.handshake);
  });

  it('drops a kube connection without a client certificate that completes TLS and sends nothing', async () => {
    for (const p of [port, kubePort]) {
      const socket = tls.connect({ host, port: p, servername: KUBE_SNI, ca: ada.ca, ALPNProtocols: ['http/1.1'] });
      await new Promise((r) => socket.once('secureConnect', r));
      report(`kube (port ${p === port ? 'shared' : 'dedicated'}), no certificate: TLS then nothing`, (await closed(socket)).ms, T.unauthenticated);
    }
  });

  it('drops a kube connection without a client certificate that keeps sending 401-answered requests', async () => {
    const socket = tls.connect({ host, port, servername: KUBE_SNI, ca: ada.ca, ALPNProtocols: ['http/1.1'] });
    await new Promise((r) => socket.once('secureConnect', r));
    let answers = '';
    socket.on('data', (d: Buffer) => (answers += d.toString()));
    const ask = setInterval(() => socket.writable && socket.write('GET /api HTTP/1.1\r\nHost: x\r\n\r\n'), 100);
    const { ms } = await closed(socket);
    clearInterval(ask);
    expect(answers).toMatch(/401 Unauthorized/);
    report('kube, no certificate, requests every 100 ms', ms, T.unauthenticated);
  });

  it('drops an authenticated slowloris (request headers a byte every 100 ms)', async () => {
    const socket = tls.connect({ host, port, servername: KUBE_SNI, ...ada, ALPNProtocols: ['http/1.1'] });
    await new Promise((r) => socket.once('secureConnect', r));
    expect(socket.authorized).toBe(true);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    const head = Buffer.from('GET /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\n' + 'X-Slow: a\r\n'.repeat(200));
    let i = 0;
    const trickle = setInterval(() => socket.writable && i < head.length && socket.write(head.subarray(i, ++i)), 100);
    const { ms } = await closed(socket);
    clearInterval(trickle);
    expect(answer).not.toMatch(/200 OK/);
    report('authenticated slowloris', ms, T.headers);
  });

  it('drops an authenticated HTTP/2 slowloris (a header block continued a byte every 300 ms, never ended)', async () => {
    const socket = tls.connect({ host, port, servername: KUBE_SNI, ...ada, ALPNProtocols: ['h2'] });
    await new Promise((r) => socket.once('secureConnect', r));
    expect(socket.alpnProtocol).toBe('h2');
    socket.resume();
    const frame = (type: number, flags: number, id: number, payload: Buffer) => {
      const h = Buffer.alloc(9);
      h.writeUIntBE(payload.length, 0, 3);
      h[3] = type;
      h[4] = flags;
      h.writeUInt32BE(id, 5);
      return Buffer.concat([h, payload]);
    };
    // Preface, empty SETTINGS, HEADERS without END_HEADERS (":method GET", ":scheme https" from HPACK's static table).
    socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0, 1, Buffer.from([0x82, 0x87]))]));
    // CONTINUATION frames of one byte each ("accept-encoding: gzip, deflate"), never END_HEADERS;
    // few and slow (Node's HTTP/2 closes at once on a CONTINUATION flood): the idle timer's case.
    let sent = 0;
    const trickle = setInterval(() => socket.writable && sent++ < 6 && socket.write(frame(9, 0, 1, Buffer.from([0x90]))), 300);
    const { ms } = await closed(socket);
    clearInterval(trickle);
    report('authenticated HTTP/2 slowloris', ms, T.idle);
  });

  it('drops a web API slowloris and an idle web connection', async () => {
    const socket = tls.connect({ host, port, servername: 'localhost', ca: ada.ca });
    await new Promise((r) => socket.once('secureConnect', r));
    const head = Buffer.from('GET /v1/webapi/ping HTTP/1.1\r\nHost: x\r\n' + 'X-Slow: a\r\n'.repeat(200));
    let i = 0;
    const trickle = setInterval(() => socket.writable && i < head.length && socket.write(head.subarray(i, ++i)), 100);
    const { ms } = await closed(socket);
    clearInterval(trickle);
    report('web slowloris', ms, T.unauthenticated);
    const idle = tls.connect({ host, port, servername: 'localhost', ca: ada.ca });
    await new Promise((r) => idle.once('secureConnect', r));
    report('web: TLS then nothing', (await closed(idle)).ms, T.unauthenticated);
  });

  it('drops an agent with a valid host certificate that completes TLS and never speaks the tunnel protocol', async () => {
    const creds = stack.auth.issueHostCredentials('Kube', [], ['127.0.0.1']);
    const socket = tls.connect({ host, port, servername: PROXY_SERVER_NAME, ALPNProtocols: [TUNNEL_ALPN], cert: creds.certPem, key: creds.privateKeyPem, ca: creds.hostCaPems });
    await new Promise((r) => socket.once('secureConnect', r));
    expect(socket.alpnProtocol).toBe(TUNNEL_ALPN);
    socket.resume(); // it reads (the proxy's question arrives) and never answers
    report('agent tunnel: TLS then silence', (await closed(socket)).ms, T.tunnelHello);
  });

  it('drops a relay to auth whose client sends its ClientHello and then nothing, or completes TLS and then nothing', async () => {
    const hello = await captureClientHello({ servername: 'localhost', ALPNProtocols: ['h2', GRPC_ALPN] });
    expect(peekClientHello(hello)).toMatchObject({ done: true, hello: { alpn: ['h2', GRPC_ALPN] } });
    const stalled = net.connect(port, host, () => stalled.write(hello));
    stalled.resume();
    report('auth relay: ClientHello then nothing', (await closed(stalled)).ms, T.relayFirstByte);
    const quiet = tls.connect({ host, port, servername: 'auth.keyway.cluster.local', ALPNProtocols: ['h2', GRPC_ALPN], ca: ada.ca });
    await new Promise((resolve, reject) => {
      quiet.once('secureConnect', resolve);
      quiet.once('error', reject);
    });
    quiet.resume();
    // Past the handshake the relay cannot tell silence from a quiet call: auth closes a connection without calls.
    report('auth relay: TLS then nothing (auth max_connection_idle)', (await closed(quiet)).ms, T.authIdle);
  });

  it('drops an authenticated kube connection that completes TLS and sends nothing', async () => {
    for (const alpn of ['http/1.1', 'h2']) {
      const socket = tls.connect({ host, port, servername: KUBE_SNI, ...ada, ALPNProtocols: [alpn] });
      await new Promise((r) => socket.once('secureConnect', r));
      expect(socket.authorized).toBe(true);
      socket.resume();
      report(`authenticated kube (${alpn}): TLS then nothing`, (await closed(socket)).ms, alpn === 'h2' ? T.idle : T.headers);
    }
  });

  it('keeps authenticated watches open past every timeout, on HTTP/2 and HTTP/1.1', async () => {
    const wait = Math.max(T.headers, T.idle, T.unauthenticated) * 2;
    // HTTP/2
    const session = http2.connect(`https://${host}:${port}`, { servername: KUBE_SNI, ...ada });
    session.on('error', () => undefined);
    const stream = session.request({ ':path': '/api/v1/namespaces/default/pods?watch=true', accept: 'application/json' });
    let h2Events = '';
    stream.on('data', (d: Buffer) => (h2Events += d.toString()));
    // HTTP/1.1
    let h1Events = '';
    const agent = new https.Agent({ ...ada, servername: KUBE_SNI });
    const req = https.get({ host, port, path: '/api/v1/namespaces/default/pods?watch=true', agent, headers: { accept: 'application/json' } }, (res) => {
      expect(res.statusCode).toBe(200);
      res.on('data', (d: Buffer) => (h1Events += d.toString()));
    });
    req.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, wait));
    api.addPod({ name: `late-${Date.now()}`, namespace: 'default' });
    await until(() => h2Events.includes('late-') && h1Events.includes('late-'), 'both watches to see the new pod');
    console.log(`authenticated watches (HTTP/2 and HTTP/1.1) still delivered events after ${wait} ms quiet (idle ${T.idle} ms, headers ${T.headers} ms)`);
    stream.close();
    session.close();
    req.destroy();
    agent.destroy();
  });
});

function hostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

/** Resolves when the socket closes, with how long it was open. */
function closed(socket: net.Socket): Promise<{ ms: number }> {
  const started = Date.now();
  socket.on('error', () => undefined);
  return new Promise((resolve) => socket.once('close', () => resolve({ ms: Date.now() - started })));
}

function report(what: string, ms: number, configured: number): void {
  console.log(`${what}: dropped after ${ms} ms (configured ${configured} ms)`);
}

/** The bytes of a real ClientHello with these settings (sent to a local listener that only records them). */
async function captureClientHello(o: tls.ConnectionOptions): Promise<Buffer> {
  let chunks = Buffer.alloc(0);
  const got = new Promise<Buffer>((resolve) => {
    const server = net.createServer((s) => {
      s.on('data', (d: Buffer) => {
        chunks = Buffer.concat([chunks, d]);
        if (peekClientHello(chunks).done) {
          s.destroy();
          server.close();
          resolve(chunks);
        }
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const client = tls.connect({ ...o, host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, rejectUnauthorized: false });
      client.on('error', () => undefined);
    });
  });
  return got;
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
