import net from 'node:net';
import tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, readAll, socketPair, startTestKubeApiServer, type TestCa, type TestKubeApiServer } from '@keyway/testing';
import { TunnelSession, serveTunnel, type KubeRequestHead, type KubeResponse } from '@keyway/tunnel';
import { KubeForwarder } from './forwarder.js';
import type { ClusterCredentials } from './kubeconfig.js';
import type { UpstreamLimits } from './limits.js';

// An API server that is down, untrusted, breaks off or stalls: the client (through the agent's
// tunnel, as in production) gets a Kubernetes Status naming the cluster and the kind of
// failure, and nothing of the API server's address.

const CLUSTER = 'prod-eu';

interface Agent {
  session: TunnelSession;
  close(): void;
}

async function agentFor(creds: ClusterCredentials, limits: Partial<UpstreamLimits> = {}): Promise<Agent> {
  const forwarder = new KubeForwarder([creds], { limits });
  const [agentSide, proxySide] = await socketPair();
  const served = serveTunnel(agentSide, { backend: forwarder, info: () => ({ hostId: 'a', hostname: 'h', version: '1', clusters: [] }) });
  const session = new TunnelSession(proxySide);
  return {
    session,
    close: () => {
      session.destroy();
      served.close();
      forwarder.close();
    },
  };
}

const head = (extra: Partial<KubeRequestHead> = {}): KubeRequestHead => ({
  method: 'GET',
  path: '/api/v1/namespaces/default/pods/web',
  headers: { accept: 'application/json' },
  cluster: CLUSTER,
  user: 'alice',
  groups: ['system:authenticated'],
  ...extra,
});

async function bodyOf(res: KubeResponse): Promise<string> {
  return res.takeWhole?.()?.toString() ?? readAll(res.body);
}

/** Asserts a Status of that code and reason, which names the cluster and no address of the upstream. */
function expectStatus(status: number, body: string, code: number, reason: string, port: number): void {
  expect(status, body).toBe(code);
  const parsed = JSON.parse(body) as Record<string, unknown>;
  expect(parsed).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason });
  expect(parsed['message']).toMatch(new RegExp(`cluster "${CLUSTER}"`));
  expect(body).not.toMatch(/127\.0\.0\.1|localhost|::1|\[::/);
  expect(body).not.toContain(String(port));
  expect(body).not.toMatch(/ECONN|UND_ERR|SSL routines|self.signed/i);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function creds(port: number, caPem: string): ClusterCredentials {
  return { name: CLUSTER, server: new URL(`https://127.0.0.1:${port}`), caPem, insecureSkipTlsVerify: false, token: () => 'agent-token' };
}

describe('upstream failures become Kubernetes Status objects without internal addresses', () => {
  let ca: TestCa;
  let server: tls.Server | undefined;
  const sockets = new Set<net.Socket>();
  let agent: Agent | undefined;
  beforeAll(() => {
    ca = createTestCa();
  });
  afterEach(async () => {
    agent?.close();
    agent = undefined;
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  /** A TLS server with a certificate from `ca` that does what `onSocket` says with each connection. */
  async function tlsServer(onSocket: (s: tls.TLSSocket) => void): Promise<number> {
    const cert = ca.issueServer({ ipAddresses: ['127.0.0.1'] });
    server = tls.createServer({ cert: cert.certPem, key: cert.keyPem, ALPNProtocols: ['http/1.1'] }, (s) => {
      s.on('error', () => undefined);
      sockets.add(s);
      onSocket(s);
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
    return (server.address() as net.AddressInfo).port;
  }

  it('API server not running: 503 ServiceUnavailable, retryable', async () => {
    const port = await freePort();
    agent = await agentFor(creds(port, ca.certPem));
    const res = await agent.session.request(head(), null);
    const body = await bodyOf(res);
    expectStatus(res.head.status, body, 503, 'ServiceUnavailable', port);
    expect(res.head.headers['retry-after']).toBeUndefined(); // kubectl fails at once rather than retrying for 50 s
    expect(JSON.parse(body)).toMatchObject({ details: { retryAfterSeconds: 5 } });
    expect(body).toMatch(/not reachable .*connection refused/);
  });

  it('API server not running, for an exec upgrade too', async () => {
    const port = await freePort();
    agent = await agentFor(creds(port, ca.certPem));
    const res = await agent.session.upgrade(head({ method: 'POST', path: '/api/v1/namespaces/default/pods/web/exec?command=ls', upgrade: 'SPDY/3.1' }), Buffer.alloc(0));
    const body = await readAll(res.stream);
    expectStatus(res.head.status, body, 503, 'ServiceUnavailable', port);
  });

  it('TLS mismatch (the API server certificate is not from the configured CA): 502', async () => {
    const api: TestKubeApiServer = await startTestKubeApiServer();
    try {
      agent = await agentFor(creds(api.port, createTestCa('another-ca').certPem));
      const res = await agent.session.request(head(), null);
      const body = await bodyOf(res);
      expectStatus(res.head.status, body, 502, 'InternalError', api.port);
      expect(body).toMatch(/trusted TLS connection/);
      expect(api.requests).toHaveLength(0);
    } finally {
      await api.close();
    }
  });

  it('TLS mismatch (the port speaks plain HTTP): 502', async () => {
    const plain = net.createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
    const port = (plain.address() as net.AddressInfo).port;
    try {
      agent = await agentFor(creds(port, ca.certPem));
      const res = await agent.session.request(head(), null);
      expectStatus(res.head.status, await bodyOf(res), 502, 'InternalError', port);
    } finally {
      plain.close();
    }
  });

  it('connection reset before the response: 502', async () => {
    const port = await tlsServer((s) => s.once('data', () => s.destroy()));
    agent = await agentFor(creds(port, ca.certPem));
    const res = await agent.session.request(head(), null);
    const body = await bodyOf(res);
    expectStatus(res.head.status, body, 502, 'InternalError', port);
    expect(body).toMatch(/closed the connection before answering/);
  });

  it('connection reset mid-response: the body fails with a reason that names no address', async () => {
    const port = await tlsServer((s) =>
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"kind":"PodList","items":[');
        setTimeout(() => s.destroy(), 50);
      }),
    );
    agent = await agentFor(creds(port, ca.certPem));
    const res = await agent.session.request(head({ path: '/api/v1/namespaces/default/pods' }), null);
    expect(res.head.status).toBe(200);
    const err = await readAll(res.body).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err?.message).toMatch(new RegExp(`cluster "${CLUSTER}" ended the response early`));
    expect(err?.message).not.toMatch(/127\.0\.0\.1|ECONNRESET|other side closed/);
    expect(err?.message).not.toContain(String(port));
  });

  it('API server accepts and never answers: 504 Timeout after the configured time', async () => {
    const port = await tlsServer(() => undefined);
    agent = await agentFor(creds(port, ca.certPem), { responseTimeoutMs: 500 });
    const started = Date.now();
    const res = await agent.session.request(head(), null);
    const body = await bodyOf(res);
    console.log(`upstream response timeout (500 ms configured): answered 504 after ${Date.now() - started} ms`);
    expectStatus(res.head.status, body, 504, 'Timeout', port);
  });

  it('API server accepts an exec and never answers: 504 Timeout', async () => {
    const port = await tlsServer(() => undefined);
    agent = await agentFor(creds(port, ca.certPem), { responseTimeoutMs: 500 });
    const res = await agent.session.upgrade(head({ method: 'POST', path: '/api/v1/namespaces/default/pods/web/exec?command=ls', upgrade: 'SPDY/3.1' }), Buffer.alloc(0));
    expectStatus(res.head.status, await readAll(res.stream), 504, 'Timeout', port);
  });

  it('the agent cannot read its own credentials (token file gone): 502 Status without the path', async () => {
    const port = await freePort();
    const gone = (): string => {
      throw Object.assign(new Error("ENOENT: no such file or directory, open '/var/run/secrets/kubernetes.io/serviceaccount/token'"), { code: 'ENOENT' });
    };
    agent = await agentFor({ ...creds(port, ca.certPem), token: gone });
    for (const res of [
      await agent.session.request(head(), null),
      await agent.session.upgrade(head({ method: 'POST', path: '/api/v1/namespaces/default/pods/web/exec?command=ls', upgrade: 'SPDY/3.1' }), Buffer.alloc(0)).then((r) => ({ head: r.head, body: r.stream })),
    ]) {
      const body = 'takeWhole' in res && res.takeWhole ? (res.takeWhole()?.toString() ?? '') : await readAll(res.body);
      expectStatus(res.head.status, body, 502, 'InternalError', port);
      expect(body).not.toMatch(/var\/run|ENOENT/);
    }
  });

  it('a cluster this agent does not serve: 404 Status, not a bare body', async () => {
    const port = await freePort();
    agent = await agentFor(creds(port, ca.certPem));
    const res = await agent.session.request(head({ cluster: 'elsewhere' }), null);
    const body = await bodyOf(res);
    expect(res.head.status).toBe(404);
    expect(JSON.parse(body)).toMatchObject({ kind: 'Status', code: 404, reason: 'NotFound' });
  });

});
