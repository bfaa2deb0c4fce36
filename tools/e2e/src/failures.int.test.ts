import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runCommand, startOwnPostgres, startProcess, type LongRunning, type OwnService } from '@keyway/testing';
import { waitUntil } from './harness.js';

// What a user is told when a part of Keyway is down, with that part really down: a Postgres
// of this test's own (stopped and started), the auth service and the proxy as separate
// processes (killed). Every failure is one sentence naming what is down and what to do.

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = (name: string) => join(root, 'node_modules/.bin', name);
const kwBin = join(root, 'apps/kw/bin/kw.mjs');
const PASSWORD = 'a long enough passphrase 7';

describe('failures a user can meet', () => {
  let pg: OwnService;
  let dir: string;
  let auth: LongRunning | undefined;
  let proxy: LongRunning | undefined;
  let authPort: number;
  let proxyPort: number;
  let token = '';
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ PATH: process.env['PATH'], HOME: dir, KW_HOME: join(dir, 'kw'), KEYWAY_LOG_LEVEL: 'info', ...extra });
  const kwctl = (args: string[], input?: string) => runCommand(bin('kwctl'), ['--data-dir', join(dir, 'auth'), ...args], { env: env(), ...(input ? { input } : {}), timeoutMs: 60_000 });
  const kw = (args: string[], input = '') => runCommand(process.execPath, [kwBin, ...args], { env: env(), input, timeoutMs: 60_000 });
  const login = () => kw(['login', `--proxy=127.0.0.1:${proxyPort}`, '--user=uma', '--insecure'], `${PASSWORD}\n`);
  const startAuth = () =>
    startProcess(
      bin('keyway'),
      ['start', '--data-dir', join(dir, 'auth'), '--auth-listen-addr', `127.0.0.1:${authPort}`],
      env({
        KEYWAY_DATABASE_URL: pg.url,
        KEYWAY_CA_KEY: 'failures-test-key-0123456789',
        KEYWAY_PROXY_SERVICE__ENABLED: 'false',
        KEYWAY_AUTH_SERVICE__AUTHENTICATION__SECOND_FACTOR: 'off',
      }),
    );
  const startProxy = () =>
    startProcess(bin('keyway-proxy'), ['--auth-server', `127.0.0.1:${authPort}`, '--token', token, '--listen-addr', `127.0.0.1:${proxyPort}`, '--data-dir', join(dir, 'proxy')], env());

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-fail-'));
    pg = await startOwnPostgres({ start: false });
    authPort = await freePort();
    proxyPort = await freePort();
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop('SIGKILL');
    await auth?.stop('SIGKILL');
    await pg?.destroy();
  });

  /** The one line kw or kwctl printed on stderr besides kw's --insecure warning. */
  const errorLine = (stderr: string) => stderr.split('\n').filter((l) => l && !l.startsWith('WARNING: --insecure'));
  const dbDown = () => `ERROR: the auth service cannot reach its database (Postgres at 127.0.0.1:${pg.port}): connection refused; try again once it is back`;
  const kwCredentials = () => kw(['kube', 'credentials', '--kube-cluster=nowhere', `--proxy=127.0.0.1:${proxyPort}`]);

  it('keyway start waits for Postgres, saying so, and comes up once it is there', async () => {
    auth = startAuth();
    const waiting = `waiting for Postgres at 127.0.0.1:${pg.port}: connection refused; retrying in `;
    await waitUntil(() => auth?.stderr().includes(waiting) ?? false, 'the wait to be logged', 60_000);
    // It keeps waiting (the same reason is logged once, at warn): still running seconds later.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(auth.child.exitCode).toBeNull();
    await pg.start();
    await auth.waitFor(/auth service \(gRPC, mTLS\):\s+(\S+)/, 60_000);
    expect(auth.stderr()).not.toMatch(/\n\s+at /); // no stack trace
  }, 120_000);

  it('sets up a proxy and a user', async () => {
    token = /The invite token: (\w+)/.exec((await kwctl(['tokens', 'add', '--type=proxy', '--ttl=1h'])).stdout)?.[1] as string;
    proxy = startProxy();
    await proxy.waitFor(/listening on/, 60_000);
    const added = await kwctl(['users', 'add', 'uma', '--roles=access']);
    const signupToken = /^ {2}([0-9a-f]{48})$/m.exec(added.stdout)?.[1] as string;
    const s = await kw(['signup', `--proxy=127.0.0.1:${proxyPort}`, `--token=${signupToken}`, '--insecure'], `${PASSWORD}\n${PASSWORD}\n`);
    expect(s.code, s.stderr).toBe(0);
    const l = await login();
    expect(l.code, l.stderr).toBe(0);
  }, 120_000);

  it('names the database when Postgres is down: kw login, kwctl, kw kube credentials', async () => {
    await pg.stop();
    const l = await login();
    expect(l.code).toBe(1);
    expect(errorLine(l.stderr)).toEqual([dbDown()]);
    const c = await kwctl(['get', 'users']);
    expect(c.code).toBe(1);
    expect(errorLine(c.stderr)).toEqual([dbDown()]);
    const k = await kwCredentials();
    expect(k.code).toBe(1);
    expect(errorLine(k.stderr)).toEqual([dbDown()]);
    await pg.start();
    await waitUntil(async () => (await login()).code === 0, 'a login once Postgres is back', 60_000);
  }, 120_000);

  it('names the auth service when it is down, through the proxy and directly', async () => {
    await auth?.stop('SIGKILL');
    const throughProxy = `ERROR: the Keyway proxy at 127.0.0.1:${proxyPort} is up but could not pass the call on to the auth service (down or restarting); try again shortly, or ask your Keyway administrator to check the auth service`;
    const l = await login();
    expect(l.code).toBe(1);
    expect(errorLine(l.stderr)).toEqual([throughProxy]);
    const k = await kwCredentials();
    expect(k.code).toBe(1);
    expect(errorLine(k.stderr)).toEqual([throughProxy]);
    const c = await kwctl(['get', 'users']);
    expect(c.code).toBe(1);
    expect(errorLine(c.stderr)).toEqual([
      `ERROR: cannot reach the auth service at 127.0.0.1:${authPort}: connection refused; check that it is running and that the address is right, then try again`,
    ]);
    // A proxy that starts (joins) while auth is down waits for it, saying so, and comes up with it.
    const late = startProcess(
      bin('keyway-proxy'),
      ['--auth-server', `127.0.0.1:${authPort}`, '--token', token, '--listen-addr', '127.0.0.1:0', '--data-dir', join(dir, 'proxy-late')],
      env(),
    );
    try {
      const waiting = `waiting for the auth service at 127.0.0.1:${authPort}: connection refused; retrying in `;
      await waitUntil(() => late.stderr().includes(waiting), 'the late proxy to wait for auth', 60_000);
      await new Promise((r) => setTimeout(r, 3_000));
      expect(late.child.exitCode).toBeNull();
      auth = startAuth();
      await auth.waitFor(/auth service \(gRPC, mTLS\):\s+(\S+)/, 60_000);
      await late.waitFor(/listening on/, 60_000);
    } finally {
      await late.stop('SIGKILL');
    }
    await waitUntil(async () => (await login()).code === 0, 'a login once auth is back', 60_000);
  }, 120_000);

  it('names the proxy while it restarts', async () => {
    await proxy?.stop('SIGKILL');
    const down = `ERROR: cannot reach the Keyway proxy at 127.0.0.1:${proxyPort}: connection refused; check that it is running and that the address is right, then try again`;
    const l = await login();
    expect(l.code).toBe(1);
    expect(errorLine(l.stderr)).toEqual([down]);
    const k = await kwCredentials();
    expect(k.code).toBe(1);
    expect(errorLine(k.stderr)).toEqual([down]);
    proxy = startProxy();
    await proxy.waitFor(/listening on/, 60_000);
    await waitUntil(async () => (await login()).code === 0, 'a login once the proxy is back', 60_000);
  }, 120_000);
});
