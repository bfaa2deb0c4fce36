import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { runKw } from '@keyway/kw';
import { silentLogger } from '@keyway/log';
import { kwctlIn, startTestAgent, waitUntil } from './harness.js';
import { captureStream, runCommand, startTestKubeApiServer, type TestKubeApiServer } from '@keyway/testing';

// Exec session recording end to end: kubectl exec through Keyway over WebSocket and SPDY,
// the proxy records stdin/stdout with timing into the auth service, kwctl and kw list the
// sessions, kw play dumps the events, and the exec event carries the exit code.

const RESOURCES = `kind: role
version: v7
metadata: {name: junior-devs}
spec:
  allow:
    kubernetes_labels: {env: [dev, staging]}
    kubernetes_groups: ['{{internal.kubernetes_groups}}']
    kubernetes_resources:
      - {kind: pod, namespace: default, name: '*', verbs: [get, list, watch, exec]}
---
kind: user
version: v2
metadata: {name: jimbo}
spec:
  roles: ['junior-devs']
  traits: {kubernetes_groups: ['teleport-view']}
---
kind: user
version: v2
metadata: {name: alice}
spec:
  roles: ['auditor']
---
kind: user
version: v2
metadata: {name: carol}
spec:
  roles: ['junior-devs']
`;

interface Session {
  id: string;
  user: string;
  pod: string;
  command: string[];
  started: string;
  ended: string;
}

interface Event {
  t: number;
  type: string;
  data?: string;
}

describe('exec session recording', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let agent: KubeAgent;
  let dir: string;
  let kubeconfig: string;

  const kwctl = kwctlIn(() => dir);
  const env = (extra: Record<string, string> = {}) => ({ PATH: process.env['PATH'], HOME: dir, ...extra });
  const kubectl = (args: string[], extra: Record<string, string> = {}) =>
    runCommand('kubectl', ['--kubeconfig', kubeconfig, ...args], { env: env(extra), timeoutMs: 20_000 });
  const kw = async (args: string[]) => {
    const out = captureStream();
    const err = captureStream();
    const code = await runKw({ argv: args, out, err });
    return { code, out: out.text(), err: err.text() };
  };

  /** `kubectl exec -i web -- cat`, typing two lines 300 ms apart; resolves with stdout. */
  const typeIntoCat = (extra: Record<string, string>) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn('kubectl', ['--kubeconfig', kubeconfig, 'exec', '-i', 'web', '-n', 'default', '--', 'cat'], { env: env(extra) });
      let out = '';
      let err = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out === 'first line\n') setTimeout(() => child.stdin.end('second line\n'), 300);
      });
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`kubectl exited with ${code}: ${err}`));
      });
      child.stdin.write('first line\n');
    });

  const sessions = async (): Promise<Session[]> => {
    const r = await kwctl(['recordings', 'ls', '--format', 'json']);
    expect(r.code, r.err).toBe(0);
    return r.out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Session);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-rec-'));
    api = await startTestKubeApiServer();
    api.addPod({ name: 'web', namespace: 'default' });
    api.setRbac([{ groups: ['teleport-view'], verbs: ['get', 'list', 'create'], resources: ['pods', 'pods/exec'], namespaces: ['default'] }]);
    const config = loadConfig({
      env: { KEYWAY_DATA_DIR: dir, KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'acme' },
    });
    stack = await startStack(config, silentLogger());
    const created = await kwctl(['create', '-f', '-'], RESOURCES);
    expect(created.code, created.err).toBe(0);
    agent = await startTestAgent(stack, { kubeconfig: api.agentKubeconfig, cluster: 'kubernetes', labels: { env: 'dev' }, dir, kwctl, logger: silentLogger() });
    kubeconfig = join(dir, 'jimbo.kubeconfig');
    const signed = await kwctl(['auth', 'sign', '--user=jimbo', '--kube-cluster=kubernetes', `--proxy=${stack.proxyAddress}`, `--out=${kubeconfig}`]);
    expect(signed.code, signed.err).toBe(0);
    process.env['KW_HOME'] = await kwHomeFor('alice');
  }, 60_000);

  /** A kw home with a profile for `user`, as `kw login` would leave it. */
  const kwHomeFor = async (user: string): Promise<string> => {
    const files = join(dir, user);
    const tls = await kwctl(['auth', 'sign', `--user=${user}`, '--format=tls', `--out=${files}`]);
    expect(tls.code, tls.err).toBe(0);
    const proxy = stack.proxyAddress as string;
    const kwHome = join(dir, `kw-${user}`);
    const profileDir = join(kwHome, 'profiles', proxy.replace(/[^A-Za-z0-9._-]/g, '_'));
    mkdirSync(join(profileDir, 'kube'), { recursive: true });
    writeFileSync(join(profileDir, 'profile.json'), JSON.stringify({ proxy, user, cluster: 'acme', insecure: false }));
    writeFileSync(join(profileDir, 'key.pem'), readFileSync(`${files}.key`));
    writeFileSync(join(profileDir, 'cert.pem'), readFileSync(`${files}.crt`));
    writeFileSync(join(profileDir, 'cas.pem'), readFileSync(`${files}.cas`));
    writeFileSync(join(kwHome, 'current-profile'), `${proxy}\n`);
    return kwHome;
  };

  afterAll(async () => {
    await agent?.close();
    await stack?.close();
    await api?.close();
  });

  for (const transport of <{ name: string; env: Record<string, string> }[]>[
    { name: 'WebSocket', env: {} },
    { name: 'SPDY/3.1', env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' } },
  ]) {
    it(`records typed input and output over ${transport.name}`, async () => {
      const before = new Set((await sessions()).map((s) => s.id));
      expect(await typeIntoCat(transport.env)).toBe('first line\nsecond line\n');
      let session: Session | undefined;
      await waitUntil(async () => {
        session = (await sessions()).find((s) => !before.has(s.id) && s.ended !== '');
        return session !== undefined;
      }, 'the recording to end');
      expect(session).toMatchObject({ user: 'jimbo', pod: 'web', namespace: 'default', cluster: 'kubernetes', command: ['cat'] });

      const listed = await kwctl(['recordings', 'ls']);
      expect(listed.out).toMatch(new RegExp(`${session!.id}\\s+jimbo\\s+kubernetes\\s+default/web`));
      const kwListed = await kw(['recordings', 'ls']);
      expect(kwListed.code, kwListed.err).toBe(0);
      expect(kwListed.out).toContain(session!.id);

      const played = await kw(['play', session!.id, '--format', 'json']);
      expect(played.code, played.err).toBe(0);
      const events = played.out.trim().split('\n').map((l) => JSON.parse(l) as Event);
      const text = (type: string) => events.filter((e) => e.type === type).map((e) => e.data ?? '').join('');
      expect(text('stdin')).toBe('first line\nsecond line\n');
      expect(text('stdout')).toBe('first line\nsecond line\n');
      expect(events.some((e) => e.type === 'observer')).toBe(false);
      expect(events.at(-1)?.type).toBe('close');
      const typed = events.filter((e) => e.type === 'stdin');
      const second = typed.find((e) => e.data?.includes('second'));
      expect(second!.t - typed[0]!.t).toBeGreaterThanOrEqual(250);
      for (let i = 1; i < events.length; i++) expect(events[i]!.t).toBeGreaterThanOrEqual(events[i - 1]!.t);

      const replay = await kw(['play', session!.id, '--speed', '100']);
      expect(replay.code, replay.err).toBe(0);
      expect(replay.out).toBe('first line\nsecond line\n');
    });
  }

  it('shows a user without the session rule only their own sessions', async () => {
    const all = await sessions();
    const jimbos = all.filter((x) => x.user === 'jimbo');
    expect(jimbos.length).toBeGreaterThan(0);
    const auditorHome = process.env['KW_HOME'];
    try {
      process.env['KW_HOME'] = await kwHomeFor('jimbo');
      const own = await kw(['recordings', 'ls', '--format', 'json']);
      expect(own.code, own.err).toBe(0);
      expect((JSON.parse(own.out) as Session[]).map((x) => x.id).sort()).toEqual(jimbos.map((x) => x.id).sort());
      expect((await kw(['play', jimbos[0]!.id, '--format', 'json'])).code).toBe(0);

      process.env['KW_HOME'] = await kwHomeFor('carol');
      const none = await kw(['recordings', 'ls', '--format', 'json']);
      expect(none.code, none.err).toBe(0);
      expect(JSON.parse(none.out)).toEqual([]);
      const other = await kw(['play', jimbos[0]!.id]);
      expect(other.code).not.toBe(0);
      expect(other.err).toMatch(/not found/);
    } finally {
      process.env['KW_HOME'] = auditorHome;
    }
  });

  it('puts the exit code on the exec event', async () => {
    const ok = await kubectl(['exec', 'web', '-n', 'default', '--', 'echo', 'hi']);
    expect(ok.stdout).toBe('hi\n');
    const failed = await kubectl(['exec', 'web', '-n', 'default', '--', 'sh', '-c', 'exit 3'], { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' });
    expect(failed.code).toBe(3);
    let events: Record<string, unknown>[] = [];
    await waitUntil(async () => {
      const out = (await kwctl(['audit', 'search', '--event', 'exec', '--user', 'jimbo', '--format', 'json'])).out;
      events = out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      return events.some((e) => JSON.stringify(e['command']) === '["sh","-c","exit 3"]');
    }, 'the exec events');
    const echo = events.find((e) => JSON.stringify(e['command']) === '["echo","hi"]');
    expect(echo).toMatchObject({ event: 'exec', code: 'T3002I', exitCode: '0' });
    const exit3 = events.find((e) => JSON.stringify(e['command']) === '["sh","-c","exit 3"]');
    expect(exit3).toMatchObject({ event: 'exec', code: 'T3002E', exitCode: '3', error: expect.stringMatching(/exit code/) });
  });
});
