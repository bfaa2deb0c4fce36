/**
 * The wire protocols without kubectl: the WebSocket channel protocols kubectl does not use
 * (v4, base64, legacy port-forward), SPDY through our own client, watch semantics, huge
 * generated lists and logs, and authentication edge cases.
 */
import { once } from 'node:events';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa } from './pki.js';
import { startTestKubeApiServer, type TestKubeApiServer } from './server.js';
import { SpdySession, type SpdyStream } from './spdy.js';

let server: TestKubeApiServer;
let echo: Server;
let admin: { certPem: string; keyPem: string };

beforeAll(async () => {
  echo = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  server = await startTestKubeApiServer({ pods: [{ name: 'p', ports: { 8080: (echo.address() as AddressInfo).port } }] });
  admin = server.issueClientCertificate('test-admin', ['system:masters']);
});

afterAll(async () => {
  await server?.close();
  echo?.close();
});

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  bytes: number;
}

function call(path: string, opts: { method?: string; headers?: Record<string, string | string[]>; body?: string; cert?: { certPem: string; keyPem: string } | null; keepBody?: boolean } = {}): Promise<Response> {
  const cert = opts.cert === undefined ? admin : opts.cert;
  const o: RequestOptions = { method: opts.method ?? 'GET', headers: opts.headers ?? {}, ca: server.caPem, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(server.url + path, o, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (d: Buffer) => {
        bytes += d.length;
        if (opts.keepBody !== false) chunks.push(d);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function wsOpen(path: string, protocols: string[]): Promise<{ ws: WebSocket; messages: Array<Buffer | string>; closed: Promise<number> }> {
  const ws = new WebSocket(server.url.replace('https', 'wss') + path, protocols, { ca: server.caPem, cert: admin.certPem, key: admin.keyPem });
  const messages: Array<Buffer | string> = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => messages.push(isBinary ? Buffer.from(data) : data.toString('utf8')));
  const closed = new Promise<number>((resolve) => ws.on('close', (code: number) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

const channel = (messages: Array<Buffer | string>, ch: number) =>
  Buffer.concat(messages.filter((m): m is Buffer => Buffer.isBuffer(m) && m[0] === ch).map((m) => m.subarray(1))).toString('utf8');

describe('remote command over WebSocket channel protocols', () => {
  it('v4.channel.k8s.io: stdout then a Success status on channel 3, then a normal close', async () => {
    const { ws, messages, closed } = await wsOpen('/api/v1/namespaces/default/pods/p/exec?command=echo&command=v4&stdout=true&stderr=true', ['v4.channel.k8s.io']);
    expect(ws.protocol).toBe('v4.channel.k8s.io');
    expect(await closed).toBe(1000);
    expect(channel(messages, 1)).toBe('v4\n');
    expect(JSON.parse(channel(messages, 3))).toEqual({ metadata: {}, status: 'Success' });
    expect(messages.every((m) => m.length > 0)).toBe(true);
  });

  it('v4: a non-zero exit is a NonZeroExitCode status with an ExitCode cause', async () => {
    const { messages, closed } = await wsOpen(`/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c&command=${encodeURIComponent('echo oops >&2; exit 42')}&stdout=true&stderr=true`, ['v4.channel.k8s.io']);
    await closed;
    expect(channel(messages, 2)).toBe('oops\n');
    const status = JSON.parse(channel(messages, 3));
    expect(status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '42' }] } });
  });

  it('v5.channel.k8s.io: the close signal [255, 0] ends stdin', async () => {
    const { ws, messages, closed } = await wsOpen('/api/v1/namespaces/default/pods/p/exec?command=wc&command=-c&stdin=true&stdout=true&stderr=true', ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
    expect(ws.protocol).toBe('v5.channel.k8s.io');
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.alloc(100_000, 7)]));
    ws.send(Buffer.from([0, ...Buffer.from('tail')]));
    ws.send(Buffer.from([255, 0]));
    expect(await closed).toBe(1000);
    expect(channel(messages, 1)).toBe('100004\n');
  });

  it('v4.base64.channel.k8s.io: text frames, channel digit then base64', async () => {
    const { messages, closed } = await wsOpen('/api/v1/namespaces/default/pods/p/exec?command=echo&command=b64&stdout=true', ['v4.base64.channel.k8s.io']);
    await closed;
    const text = messages.filter((m): m is string => typeof m === 'string');
    expect(text.filter((m) => m[0] === '1').map((m) => Buffer.from(m.slice(1), 'base64').toString())).toEqual(['b64\n']);
    expect(JSON.parse(Buffer.from((text.find((m) => m[0] === '3') as string).slice(1), 'base64').toString())).toEqual({ metadata: {}, status: 'Success' });
  });

  it('tty: resize events reach the command, stderr joins stdout', async () => {
    server.setCommand('report-size', async (_args, io) => {
      const [size] = (await once(io.resize, 'resize')) as [{ width: number; height: number }];
      io.stderr.write(`${size.width}x${size.height}\n`);
      return 0;
    });
    const { ws, messages, closed } = await wsOpen('/api/v1/namespaces/default/pods/p/exec?command=report-size&stdin=true&stdout=true&tty=true', ['v5.channel.k8s.io']);
    ws.send(Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ Width: 120, Height: 40 }))]));
    await closed;
    expect(channel(messages, 1)).toBe('120x40\n');
  });

  it('refuses a WebSocket that offers no supported subprotocol', async () => {
    await expect(wsOpen('/api/v1/namespaces/default/pods/p/exec?command=echo&stdout=true', ['v9.channel.k8s.io'])).rejects.toThrow('upgrade refused: 400');
  });
});

describe('legacy WebSocket port-forward (v4.channel.k8s.io)', () => {
  it('sends the port prefix on both channels, then relays data channel 0', async () => {
    const { ws, messages, closed } = await wsOpen('/api/v1/namespaces/default/pods/p/portforward?ports=8080', ['v4.channel.k8s.io']);
    await expect.poll(() => messages.length).toBeGreaterThanOrEqual(2);
    const port = Buffer.alloc(2);
    port.writeUInt16LE(8080);
    expect(messages.slice(0, 2)).toEqual([Buffer.concat([Buffer.from([0]), port]), Buffer.concat([Buffer.from([1]), port])]);
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('through the tunnel')]));
    await expect.poll(() => channel(messages.slice(2), 0)).toBe('through the tunnel');
    ws.close();
    await closed;
  });
});

/** Upgrades a TLS connection to SPDY/3.1 by hand and returns our client session. */
async function spdyUpgrade(path: string, protocols: string[]): Promise<{ session: SpdySession; protocol: string }> {
  const sock = tlsConnect({ host: '127.0.0.1', port: server.port, ca: server.caPem, cert: admin.certPem, key: admin.keyPem, servername: 'localhost' });
  await once(sock, 'secureConnect');
  sock.write(
    `POST ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n${protocols.map((p) => `X-Stream-Protocol-Version: ${p}\r\n`).join('')}Content-Length: 0\r\n\r\n`,
  );
  let head = Buffer.alloc(0);
  while (!head.includes('\r\n\r\n')) {
    const [chunk] = (await once(sock, 'data')) as [Buffer];
    head = Buffer.concat([head, chunk]);
  }
  sock.pause();
  const end = head.indexOf('\r\n\r\n') + 4;
  const text = head.subarray(0, end).toString();
  expect(text).toMatch(/^HTTP\/1\.1 101 /);
  if (end < head.length) sock.unshift(head.subarray(end));
  const protocol = /x-stream-protocol-version: (\S+)/i.exec(text)?.[1] ?? '';
  const session = new SpdySession(sock, { server: false });
  sock.resume();
  return { session, protocol };
}

async function readAll(stream: SpdyStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream.iterator({ destroyOnReturn: false })) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('SPDY/3.1 with our own client', () => {
  it('exec: streams by streamType, stdin half-close, Status on the error stream', async () => {
    const { session, protocol } = await spdyUpgrade('/api/v1/namespaces/default/pods/p/exec?command=cat&stdin=true&stdout=true&stderr=true', ['v4.channel.k8s.io']);
    expect(protocol).toBe('v4.channel.k8s.io');
    const error = await session.openStream({ streamtype: 'error' });
    const stdin = await session.openStream({ streamtype: 'stdin' });
    const stdout = await session.openStream({ streamtype: 'stdout' });
    const stderr = await session.openStream({ streamtype: 'stderr' });
    await session.ping();
    const out = readAll(stdout);
    stdin.end('echoed over spdy');
    expect(await out).toBe('echoed over spdy');
    expect(await readAll(stderr)).toBe('');
    expect(JSON.parse(await readAll(error))).toEqual({ metadata: {}, status: 'Success' });
    session.close();
  });

  it('port-forward: an error and a data stream per requestID', async () => {
    const { session } = await spdyUpgrade('/api/v1/namespaces/default/pods/p/portforward', ['portforward.k8s.io']);
    const error = await session.openStream({ streamtype: 'error', port: '8080', requestid: '0' });
    error.end();
    const data = await session.openStream({ streamtype: 'data', port: '8080', requestid: '0' });
    const back = readAll(data);
    data.end('spdy port-forward');
    expect(await back).toBe('spdy port-forward');
    expect(await readAll(error)).toBe('');
    session.close();
  });
});

describe('watch semantics', () => {
  it('replays events after resourceVersion, then streams live ones, until timeoutSeconds', async () => {
    const start = JSON.parse((await call('/api/v1/namespaces/default/configmaps')).body).metadata.resourceVersion as string;
    server.createObject('configmaps', { metadata: { name: 'w1', labels: { watch: 'me' } } }, { namespace: 'default' });
    server.createObject('configmaps', { metadata: { name: 'w-other' } }, { namespace: 'default' });
    const watching = call(`/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${start}&labelSelector=watch%3Dme&timeoutSeconds=2`);
    await new Promise((r) => setTimeout(r, 300));
    server.updateObject('configmaps', { metadata: { name: 'w1', labels: { watch: 'me' } }, data: { a: 'b' } }, { namespace: 'default' });
    server.deleteObject('configmaps', 'default', 'w1');
    const res = await watching;
    expect(res.headers['content-type']).toBe('application/json');
    const events = res.body.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string } } });
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['ADDED w1', 'MODIFIED w1', 'DELETED w1']);
  });

  it('sendInitialEvents: ADDED for what exists, then the initial-events-end bookmark', async () => {
    const res = await call('/api/v1/namespaces/default/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1');
    const events = res.body.trim().split('\n').map((l) => JSON.parse(l));
    expect(events[0]).toMatchObject({ type: 'ADDED', object: { kind: 'Pod', metadata: { name: 'p' } } });
    expect(events.at(-1)).toMatchObject({ type: 'BOOKMARK', object: { metadata: { annotations: { 'k8s.io/initial-events-end': 'true' } } } });
  });

  it('Table watch events carry rows (columns in the first event only)', async () => {
    const res = await call('/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1', { headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' } });
    const [first] = res.body.trim().split('\n').map((l) => JSON.parse(l));
    expect(first.object.kind).toBe('Table');
    expect(first.object.columnDefinitions.map((c: { name: string }) => c.name).slice(0, 5)).toEqual(['Name', 'Ready', 'Status', 'Restarts', 'Age']);
    expect(first.object.rows[0].cells.slice(0, 3)).toEqual(['p', '1/1', 'Running']);
  });
});

describe('large responses are generated while streaming', () => {
  it('streams a synthetic list of 64 MiB and pages through it with limit/continue', async () => {
    server.setSyntheticList({ namespace: 'default', count: 64 * 1024, itemBytes: 1024 });
    try {
      const full = await call('/api/v1/namespaces/default/configmaps', { keepBody: false });
      expect(full.status).toBe(200);
      expect(full.bytes).toBeGreaterThan(60 * 1024 * 1024);

      const page = JSON.parse((await call('/api/v1/namespaces/default/configmaps?limit=1000')).body);
      expect(page.items).toHaveLength(1000);
      expect(page.metadata.remainingItemCount).toBeGreaterThan(60_000);
      const next = JSON.parse((await call(`/api/v1/namespaces/default/configmaps?limit=1000&continue=${encodeURIComponent(page.metadata.continue)}`)).body);
      const lastOfFirst = page.items.at(-1).metadata.name as string;
      expect(next.items[0].metadata.name > lastOfFirst).toBe(true);
    } finally {
      server.setSyntheticList(null);
    }
  });

  it('generates a log of exactly N bytes, honouring limitBytes', async () => {
    server.addPod({ name: 'loud', logs: { bytes: 20 * 1024 * 1024 + 7 } });
    const all = await call('/api/v1/namespaces/default/pods/loud/log', { keepBody: false });
    expect(all.bytes).toBe(20 * 1024 * 1024 + 7);
    const some = await call('/api/v1/namespaces/default/pods/loud/log?limitBytes=250');
    expect(some.body).toHaveLength(250);
    expect(some.body.startsWith('line 0000000001 x')).toBe(true);
  });
});

describe('authentication edge cases', () => {
  it('answers 401 without a client certificate, or with one from another CA', async () => {
    const none = await call('/api/v1/namespaces/default/pods', { cert: null });
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body)).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    const stranger = createTestCa().issueClient('test-admin', ['system:masters']);
    expect((await call('/api/v1/namespaces/default/pods', { cert: stranger })).status).toBe(401);
  });

  it('accepts bearer tokens registered with addToken', async () => {
    server.addToken('s3cret', { username: 'system:serviceaccount:kube-system:keyway-agent', groups: ['system:serviceaccounts'] });
    server.setRbac([{ users: ['system:serviceaccount:kube-system:keyway-agent'], verbs: ['list'], resources: ['namespaces'] }]);
    const r = await call('/api/v1/namespaces', { cert: null, headers: { authorization: 'Bearer s3cret' } });
    expect(r.status).toBe(200);
    expect((await call('/api/v1/namespaces', { cert: null, headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    server.setRbac([]);
  });

  it('records Impersonate-Uid and Impersonate-Extra-*, and rejects groups without a user', async () => {
    const agent = server.issueClientCertificate('keyway-agent');
    const before = server.requests.length;
    const r = await call('/api/v1/namespaces/default/pods', {
      cert: agent,
      headers: { 'impersonate-user': 'erin', 'impersonate-group': ['a', 'b'], 'impersonate-uid': 'u-1', 'impersonate-extra-scopes': ['view', 'edit'] },
    });
    expect(r.status).toBe(403);
    const rec = server.requests[before];
    expect(rec?.user).toEqual({ username: 'erin', groups: ['a', 'b', 'system:authenticated'], uid: 'u-1', extra: { scopes: ['view', 'edit'] } });
    const noUser = await call('/api/v1/namespaces/default/pods', { cert: agent, headers: { 'impersonate-group': 'a' } });
    expect(noUser.status).toBe(500);
    expect(JSON.parse(noUser.body).message).toContain('without impersonating a user');
  });
});

describe('upgrade hygiene', () => {
  it('refuses an upgrade request that carries a chunked body (its terminator would corrupt the stream)', async () => {
    const sock = tlsConnect({ host: '127.0.0.1', port: server.port, ca: server.caPem, cert: admin.certPem, key: admin.keyPem, servername: 'localhost' });
    await once(sock, 'secureConnect');
    sock.write('POST /api/v1/namespaces/default/pods/p/exec?command=echo&stdout=true HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    let text = '';
    for await (const c of sock) text += (c as Buffer).toString();
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toContain('must not have a body');
  });
});
