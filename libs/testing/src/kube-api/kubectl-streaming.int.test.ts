/**
 * kubectl exec/attach/port-forward against the test API server over both transports:
 * kubectl 1.32 tries WebSocket first (v5.channel.k8s.io for exec/attach, SPDY tunnelled in
 * WebSocket for port-forward) and SPDY/3.1 when told to (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false,
 * KUBECTL_PORT_FORWARD_WEBSOCKETS=false) or when the WebSocket upgrade fails.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKubectl, startKubectl } from './kubectl.js';
import { startTestKubeApiServer, type TestKubeApiServer } from './server.js';

let server: TestKubeApiServer;
let echo: Server;

beforeAll(async () => {
  // The "container port": an echo server that answers after the client half-closes.
  echo = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  server = await startTestKubeApiServer({
    pods: [
      { name: 'shell', ports: { 8080: (echo.address() as AddressInfo).port } },
      { name: 'attached', attachOutput: 'welcome\n' },
      { name: 'done', phase: 'Succeeded' },
    ],
  });
});

afterAll(async () => {
  await server?.close();
  echo?.close();
});

const transports = [
  { name: 'WebSocket', env: {}, upgrade: 'websocket', protocol: 'v5.channel.k8s.io' },
  { name: 'SPDY/3.1', env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }, upgrade: 'spdy', protocol: 'v5.channel.k8s.io' },
] as const;

describe.each(transports)('exec and attach over $name', ({ env, upgrade, protocol }) => {
  const kubectl = (args: string[], input?: string, kubeconfig = server.adminKubeconfig) =>
    runKubectl(args, { kubeconfig, env, ...(input !== undefined ? { input } : {}) });

  it('runs a command and exits 0', async () => {
    const before = server.requests.length;
    const r = await kubectl(['exec', 'shell', '--', 'echo', 'hi']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('hi\n');
    const upgraded = server.requests.slice(before).filter((q) => q.subresource === 'exec');
    expect(upgraded.map((q) => [q.upgrade, q.protocol, q.status])).toEqual([[upgrade, protocol, 101]]);
    expect(upgraded[0]?.query.getAll('command')).toEqual(['echo', 'hi']);
  });

  it('pipes stdin through `cat` until EOF', async () => {
    const input = 'line one\nline two\n' + 'x'.repeat(200_000) + '\n';
    const r = await kubectl(['exec', '-i', 'shell', '--', 'cat'], input);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(input);
  });

  it('separates stderr and reports the exit code', async () => {
    const r = await kubectl(['exec', 'shell', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toContain('err\n');
    expect(r.stderr).toContain('command terminated with exit code 3');
  });

  it('moves bulk output (8 MiB)', async () => {
    const r = await kubectl(['exec', 'shell', '--', 'sh', '-c', 'head -c 8388608 /dev/zero; echo; echo done']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.length).toBe(8 * 1024 * 1024 + 6);
    expect(r.stdout.endsWith('\ndone\n')).toBe(true);
  });

  it('fails a command that does not exist like a container runtime does', async () => {
    const r = await kubectl(['exec', 'shell', '--', 'no-such-binary']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('executable file not found in $PATH');
  });

  it('refuses exec into a completed pod', async () => {
    const r = await kubectl(['exec', 'done', '--', 'echo', 'hi']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/cannot exec into a container in a completed pod/);
  });

  it('attaches with stdin', async () => {
    const r = await kubectl(['attach', '-i', 'attached'], 'typed into attach\n');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('welcome\ntyped into attach\n');
  });

  it('execs through the impersonating agent only when RBAC allows pods/exec', async () => {
    server.setRbac([{ groups: ['ops'], verbs: ['get', 'create'], resources: ['pods', 'pods/exec'], namespaces: ['default'] }]);
    const as = (groups: string[]) => ['--as', 'dana', ...groups.flatMap((g) => ['--as-group', g])];
    const ok = await kubectl([...as(['ops']), 'exec', 'shell', '--', 'hostname'], undefined, server.agentKubeconfig);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('shell\n');
    const exec = server.requests.filter((q) => q.subresource === 'exec').at(-1);
    expect(exec?.user?.username).toBe('dana');
    expect(exec?.headers['impersonate-user']).toBe('dana');

    server.setRbac([{ groups: ['viewers'], verbs: ['get'], resources: ['pods'], namespaces: ['default'] }]);
    const denied = await kubectl([...as(['viewers']), 'exec', 'shell', '--', 'hostname'], undefined, server.agentKubeconfig);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('pods "shell" is forbidden: User "dana" cannot create resource "pods/exec" in API group "" in the namespace "default"');
    server.setRbac([]);
  });
});

async function roundTrip(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('end', () => {
      sock.end();
      resolve(Buffer.concat(chunks));
    });
    sock.on('error', reject);
    sock.end(payload);
  });
}

describe.each([
  { name: 'WebSocket (SPDY tunnelled)', env: {}, upgrade: 'websocket', protocol: 'SPDY/3.1+portforward.k8s.io' },
  { name: 'SPDY/3.1', env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }, upgrade: 'spdy', protocol: 'portforward.k8s.io' },
])('port-forward over $name', ({ env, upgrade, protocol }) => {
  it('carries bytes both ways, for several connections', async () => {
    const before = server.requests.length;
    const pf = startKubectl(['port-forward', 'pod/shell', ':8080'], { kubeconfig: server.adminKubeconfig, env });
    try {
      const m = await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/, 15_000);
      const localPort = Number(m[1]);
      expect((await roundTrip(localPort, Buffer.from('ping'))).toString()).toBe('ping');
      const big = randomBytes(3 * 1024 * 1024);
      const back = await roundTrip(localPort, big);
      expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
      const results = await Promise.all([1, 2, 3].map((i) => roundTrip(localPort, Buffer.from(`conn ${i}`))));
      expect(results.map(String)).toEqual(['conn 1', 'conn 2', 'conn 3']);
      const pfReqs = server.requests.slice(before).filter((q) => q.subresource === 'portforward');
      expect(pfReqs.map((q) => [q.upgrade, q.protocol, q.status])).toEqual([[upgrade, protocol, 101]]);
    } finally {
      await pf.stop();
    }
  });

  it('reports a port nothing listens on through the error stream', async () => {
    const pf = startKubectl(['port-forward', 'pod/shell', ':9999'], { kubeconfig: server.adminKubeconfig, env });
    try {
      const m = await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 9999/, 15_000);
      const got = await roundTrip(Number(m[1]), Buffer.from('hello')).catch(() => Buffer.alloc(0));
      expect(got.length).toBe(0);
      await expect.poll(() => pf.stderr(), { timeout: 10_000 }).toContain('error forwarding port 9999 to pod shell');
    } finally {
      await pf.stop();
    }
  });
});
