import type { IncomingMessage } from 'node:http';
import http from 'node:http';
import https from 'node:https';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { runKwctl } from '@keyway/kwctl';
import { silentLogger } from '@keyway/log';
import { captureStream, runCommand, startProcess, startTestKubeApiServer, type LongRunning, type RunResult, type TestKubeApiServer, type TestRbacRule } from '@keyway/testing';
import { kwctlIn, startTestAgent, waitUntil } from './harness.js';

// Shared by the SSO end-to-end suites: `keyway start` (auth + proxy in one process, test
// providers allowed over http), an agent in front of the project's test API server, kw and
// kubectl as a person runs them, and a "browser" that follows redirects and posts forms.

export const kwBin = fileURLToPath(new URL('../../../apps/kw/bin/kw.mjs', import.meta.url));

export interface SsoStack {
  stack: Stack;
  proxy: string;
  api: TestKubeApiServer;
  /** kw's home ($KW_HOME) for the person: profiles and cached kube certificates. */
  kwHome: string;
  kw(args: string[], input?: string): Promise<RunResult>;
  kubectl(args: string[]): Promise<RunResult>;
  kwctl(args: string[], input?: string): Promise<{ code: number | null; out: string; err: string }>;
  /** `kw login --auth=… --browser=none`, running until the browser comes back. */
  login(auth: string, extra?: string[]): LongRunning;
  /** The environment kw and kubectl run with (a terminal test starts them itself). */
  env(): NodeJS.ProcessEnv;
  /** kwctl running in this process, its output readable while it runs (kwctl sso test). */
  kwctlLive(args: string[], stdin?: string): { err(): string; out(): string; done: Promise<number> };
  close(): Promise<void>;
}

export async function startSsoStack(rbac: TestRbacRule[], o: { ssoRecheckIntervalMs?: number; configEnv?: Record<string, string> } = {}): Promise<SsoStack & { startAgent(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'kw-sso-'));
  const api = await startTestKubeApiServer();
  api.addPod({ name: 'web', namespace: 'default' });
  api.setRbac(rbac);
  const config = loadConfig({
    env: { KEYWAY_DATA_DIR: join(dir, 'auth'), KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'acme', ...o.configEnv },
  });
  // Test providers speak plain http on loopback; production drivers refuse that.
  const stack = await startStack(config, silentLogger(), undefined, { allowHttpSsoProviders: true, ...(o.ssoRecheckIntervalMs !== undefined ? { ssoRecheckIntervalMs: o.ssoRecheckIntervalMs } : {}) });
  const proxy = stack.proxyAddress as string;
  const env = () => ({ PATH: process.env['PATH'], HOME: dir, KW_HOME: join(dir, 'kw'), KUBECONFIG: join(dir, 'kubeconfig') });
  const kwctl = kwctlIn(() => join(dir, 'auth'));
  let agent: KubeAgent | undefined;
  return {
    stack,
    proxy,
    api,
    kwHome: join(dir, 'kw'),
    kw: (args, input) => runCommand(process.execPath, [kwBin, ...args], { env: env(), timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) }),
    kubectl: (args) => runCommand('kubectl', args, { env: env(), timeoutMs: 30_000 }),
    kwctl,
    kwctlLive(args, stdin) {
      const out = captureStream();
      const err = captureStream();
      const done = runKwctl({ argv: ['--data-dir', join(dir, 'auth'), ...args], out, err, env: {}, ...(stdin !== undefined ? { stdin: Readable.from([stdin]) } : {}) });
      return { out: () => out.text(), err: () => err.text(), done };
    },
    login: (auth, extra = []) => startProcess(process.execPath, [kwBin, 'login', `--proxy=${proxy}`, `--auth=${auth}`, '--browser=none', '--insecure', ...extra], env()),
    env,
    async startAgent() {
      agent = await startTestAgent(stack, { kubeconfig: api.agentKubeconfig, cluster: 'kubernetes', labels: { env: 'dev' }, dir, kwctl, logger: silentLogger() });
      await waitUntil(async () => (await stack.auth.store.listPresence('kube_server', new Date())).length > 0, 'the agent heartbeat');
    },
    async close() {
      await agent?.close();
      await stack.close();
      await api.close();
    },
  };
}

/** A role for one Kubernetes group: every cluster, pods in default (what these suites' users get). */
export function podReaderRole(name: string, groups: string): string {
  return `kind: role
version: v7
metadata: {name: ${name}}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: [${groups}]
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list]}]
`;
}

/** A local user signed up with a password (a stack started with second_factor off). */
export async function addLocalUser(s: SsoStack, name: string, roles: string, password: string): Promise<void> {
  const added = await s.kwctl(['users', 'add', name, `--roles=${roles}`]);
  const token = /^ {2}([0-9a-f]{48})$/m.exec(added.out)?.[1];
  expect(token, added.out + added.err).toBeTruthy();
  const signup = await s.kw(['signup', `--proxy=${s.proxy}`, `--token=${token}`, '--insecure'], `${password}\n${password}\n`);
  expect(signup.code, signup.stderr).toBe(0);
}

/** The provider URL kw printed (with --browser=none). */
export async function printedUrl(p: LongRunning): Promise<string> {
  await waitUntil(() => /Open this URL/.test(p.stderr()) || p.child.exitCode !== null, 'kw to print the login URL');
  const m = /Open this URL in a browser on this machine to log in:\n\s+(\S+)/.exec(p.stderr());
  if (!m) throw new Error(`kw printed no URL:\n${p.stderr()}`);
  return m[1] as string;
}

export interface Page {
  status: number;
  body: string;
  url: string;
}

/** What a browser does: requests the URL, follows redirects, reads the last page. */
export async function browse(url: string, o: { method?: string; form?: Record<string, string> } = {}, hops = 5): Promise<Page> {
  const u = new URL(url);
  const body = o.form ? new URLSearchParams(o.form).toString() : undefined;
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const options = {
      method: o.method ?? (body ? 'POST' : 'GET'),
      headers: body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {},
    };
    const req = u.protocol === 'https:' ? https.request(u, { ...options, rejectUnauthorized: false }, resolve) : http.request(u, options, resolve);
    req.on('error', reject);
    req.end(body);
  });
  let text = '';
  for await (const chunk of res) text += String(chunk);
  const location = res.headers.location;
  if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location && hops > 0) return browse(new URL(location, u).toString(), {}, hops - 1);
  return { status: res.statusCode ?? 0, body: text, url };
}

/** kw's page after a good login, and kw's own account of it. */
export async function expectLoggedIn(p: LongRunning, page: Page, user: string, roles: string): Promise<void> {
  expect(page.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback\?response=/);
  expect(page.body).toContain('Login successful');
  expect(await p.exited, p.stderr()).toBe(0);
  expect(p.stdout()).toMatch(new RegExp(`Logged in as:\\s+${user.replace(/[.]/g, '\\.')}`));
  expect(p.stdout()).toMatch(new RegExp(`Roles:\\s+${roles}`));
}
