import https from 'node:https';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { runCommand, startProcess, startTestKubeApiServer, startTestOidcProvider, type LongRunning, type TestKubeApiServer, type TestOidcProvider } from '@keyway/testing';
import { kwctlIn, startTestAgent, waitUntil } from './harness.js';

// `kw login --auth=<connector>` as a person runs it: kw prints the provider's URL (--browser=none),
// the person logs in at the provider (its real login and consent forms, filled in over HTTP by
// the test), the provider sends the browser to the proxy's callback, the proxy to kw's; then
// kubectl works as the Kubernetes groups the provider's claims map to.

const kwBin = fileURLToPath(new URL('../../../apps/kw/bin/kw.mjs', import.meta.url));

/** What a browser does with a redirect chain that ends at kw: follows it and reads the last page. */
async function browse(url: string, hops = 5): Promise<{ status: number; body: string; url: string }> {
  const u = new URL(url);
  const client = u.protocol === 'https:' ? https : await import('node:http');
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = client.request(u, { method: 'GET', ...(u.protocol === 'https:' ? { rejectUnauthorized: false } : {}) }, resolve);
    req.on('error', reject);
    req.end();
  });
  let body = '';
  for await (const chunk of res) body += String(chunk);
  const location = res.headers.location;
  if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location && hops > 0) return browse(new URL(location, u).toString(), hops - 1);
  return { status: res.statusCode ?? 0, body, url };
}

async function printedUrl(p: LongRunning): Promise<string> {
  await waitUntil(() => /https?:\/\/\S+/.test(p.stderr()) || p.child.exitCode !== null, 'kw to print the login URL');
  const m = /Open this URL in a browser on this machine to log in:\n\s+(\S+)/.exec(p.stderr());
  if (!m) throw new Error(`kw printed no URL:\n${p.stderr()}`);
  return m[1] as string;
}

describe('SSO login through OIDC, end to end', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let agent: KubeAgent;
  let idp: TestOidcProvider;
  let dir: string;
  let proxy: string;
  const env = () => ({ PATH: process.env['PATH'], HOME: dir, KW_HOME: join(dir, 'kw'), KUBECONFIG: join(dir, 'kubeconfig') });
  const kw = (args: string[]) => runCommand(process.execPath, [kwBin, ...args], { env: env(), timeoutMs: 30_000 });
  const kwctl = kwctlIn(() => join(dir, 'auth'));
  const login = (auth: string) => startProcess(process.execPath, [kwBin, 'login', `--proxy=${proxy}`, `--auth=${auth}`, '--browser=none', '--insecure'], env());

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-sso-'));
    api = await startTestKubeApiServer();
    api.addPod({ name: 'web', namespace: 'default' });
    api.setRbac([{ groups: ['devs'], verbs: ['get', 'list', 'watch'], resources: ['pods'], namespaces: ['default'] }]);
    const config = loadConfig({
      env: { KEYWAY_DATA_DIR: join(dir, 'auth'), KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_CLUSTER_NAME: 'acme' },
    });
    // The test provider speaks plain http on loopback; production drivers refuse that.
    stack = await startStack(config, silentLogger(), undefined, { allowHttpSsoProviders: true });
    proxy = stack.proxyAddress as string;
    const callback = `https://${proxy}/v1/webapi/oidc/callback`;
    idp = await startTestOidcProvider({
      clients: [{ client_id: 'keyway', client_secret: 'oidc-s3cret', redirect_uris: [callback] }],
      accounts: {
        ada: { password: 'ada-password', claims: { email: 'ada@example.com', email_verified: true, groups: ['devs'] } },
        eve: { password: 'eve-password', claims: { email: 'eve@example.com', email_verified: true, groups: ['contractors'] } },
      },
    });
    const resources = `kind: role
version: v7
metadata: {name: sso-dev}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: ['{{external.groups}}']
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list, watch]}]
---
kind: oidc
version: v3
metadata: {name: okta}
spec:
  issuer_url: ${idp.issuer}
  client_id: keyway
  client_secret: oidc-s3cret
  redirect_url: ${callback}
  claims_to_roles: [{claim: groups, value: devs, roles: [sso-dev]}]
`;
    const created = await kwctl(['create', '-f', '-'], resources);
    expect(created.code, created.err).toBe(0);
    agent = await startTestAgent(stack, { kubeconfig: api.agentKubeconfig, cluster: 'kubernetes', labels: { env: 'dev' }, dir, kwctl, logger: silentLogger() });
    await waitUntil(async () => (await stack.auth.store.listPresence('kube_server', new Date())).length > 0, 'the agent heartbeat');
  }, 90_000);

  afterAll(async () => {
    await agent?.close();
    await stack?.close();
    await idp?.close();
    await api?.close();
  });

  it('logs ada in through the provider and kubectl runs as the groups her claims map to', async () => {
    const p = login('okta');
    const url = await printedUrl(p);
    expect(url.startsWith(idp.issuer)).toBe(true);
    const atProxy = await idp.loginWithoutBrowser(url, 'ada', 'ada-password');
    expect(atProxy.toString().startsWith(`https://${proxy}/v1/webapi/oidc/callback?`)).toBe(true);
    const page = await browse(atProxy.toString());
    expect(page.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback\?response=/);
    expect(page.body).toContain('Login successful');
    expect(await p.exited, p.stderr()).toBe(0);
    expect(p.stdout()).toMatch(/Logged in as:\s+ada@example\.com/);
    expect(p.stdout()).toMatch(/Roles:\s+sso-dev/);

    const users = await kwctl(['get', 'users/ada@example.com', '--format=json']);
    expect(users.code, users.err).toBe(0);
    expect(users.out).toContain('"connector"');
    const kube = await kw(['kube', 'login', 'kubernetes', '--insecure']);
    expect(kube.code, kube.stderr).toBe(0);
    const before = api.requests.length;
    const pods = await runCommand('kubectl', ['get', 'pods', '-o', 'name', '-n', 'default'], { env: env(), timeoutMs: 30_000 });
    expect(pods.code, pods.stderr).toBe(0);
    expect(pods.stdout).toContain('pod/web');
    const seen = api.requests.slice(before).find((r) => r.path === '/api/v1/namespaces/default/pods');
    expect(seen?.headersDistinct['impersonate-group']).toEqual(expect.arrayContaining(['devs']));
    expect(seen?.headers['impersonate-user']).toBe('ada@example.com');

    const events = await kwctl(['audit', 'search', '--event', 'user.login', '--user', 'ada@example.com', '--format', 'json']);
    expect(events.out).toMatch(/"code":"T1001I"/);
  });

  it('refuses eve, whose claims map to no role, saying so on the page and in kw', async () => {
    const p = login('okta');
    const url = await printedUrl(p);
    const page = await browse((await idp.loginWithoutBrowser(url, 'eve', 'eve-password')).toString());
    expect(page.body).toContain('Login failed');
    expect(page.body).toMatch(/okta/);
    expect(await p.exited).not.toBe(0);
    expect(p.stderr()).toMatch(/login failed: oidc connector "okta"/);
    const events = await kwctl(['audit', 'search', '--event', 'user.login', '--format', 'json']);
    expect(events.out).toMatch(/"code":"T1001W"/);
  });

  it('refuses a replayed callback: the login request is used once', async () => {
    const p = login('okta');
    const atProxy = await idp.loginWithoutBrowser(await printedUrl(p), 'ada', 'ada-password');
    expect((await browse(atProxy.toString())).body).toContain('Login successful');
    expect(await p.exited).toBe(0);
    const again = await browse(atProxy.toString());
    expect(again.status).toBe(400);
    expect(again.body).toContain('unknown, expired or already used');
  });

  it('names an unknown connector and lists the ones there are', async () => {
    const r = await kw(['login', `--proxy=${proxy}`, '--auth=nope', '--browser=none', '--insecure']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no SSO connector named "nope" \(there are: okta\)/);
  });
});
