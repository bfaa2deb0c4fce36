import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOTP, Secret } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '@keyway/auth';
import { AuthClient } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { kwctlIn } from './harness.js';
import { startTerminal } from './pty.js';

// kw signup and kw login as a person runs them: the real kw binary on a real pseudo-terminal
// (readline in terminal mode, raw input, no echo for secrets), not on pipes. They used to end
// with "ERROR: output.removeListener is not a function" and exit 1 even after a successful
// login, and that error replaced the real reason of a failed one.

const kwBin = fileURLToPath(new URL('../../../apps/kw/bin/kw.mjs', import.meta.url));
const PASSWORD = 'terminal-typed passphrase 42';

describe('kw on a real terminal', () => {
  let stack: Stack;
  let dir: string;
  let proxy: string;
  let secret = '';
  // Each login uses the next TOTP window, on a clock ten minutes back (as in kw.int.test).
  let offset = -10 * 60_000;
  const clock = () => new Date(Date.now() + offset);
  const nextCode = () => {
    offset += 30_000;
    return new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' }).generate({ timestamp: clock().getTime() });
  };
  const kwctl = kwctlIn(() => join(dir, 'auth'));
  const kw = (args: string[]) => startTerminal(process.execPath, [kwBin, ...args], { PATH: process.env['PATH'] ?? '', HOME: dir, KW_HOME: join(dir, 'kw'), TERM: 'xterm' });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-tty-'));
    const config = loadConfig({ env: { KEYWAY_DATA_DIR: join(dir, 'auth'), KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0' } });
    stack = await startStack(config, silentLogger(), clock);
    proxy = stack.proxyAddress as string;
  }, 90_000);

  afterAll(async () => {
    await stack?.close();
  });

  it('signs up: passwords are not echoed, the code is, and it ends with success', async () => {
    const added = await kwctl(['users', 'add', 'tess', '--roles=access']);
    const token = /^ {2}([0-9a-f]{48})$/m.exec(added.out)?.[1] as string;
    expect(token, added.out + added.err).toBeTruthy();
    const c = new AuthClient({ address: proxy, insecureSkipVerify: true });
    try {
      secret = (await c.call('getUserToken', { token })).totpSecret;
    } finally {
      c.close();
    }
    const t = kw(['signup', `--proxy=${proxy}`, `--token=${token}`, '--insecure']);
    await t.waitFor(/Password: $/);
    t.type(`${PASSWORD}\r`);
    await t.waitFor(/Confirm password: $/);
    t.type(`${PASSWORD}\r`);
    await t.waitFor(/Code from the app: $/);
    const code = nextCode();
    t.type(`${code}\r`);
    expect(await t.exited).toBe(0);
    const out = t.text();
    expect(out).toContain('User "tess" is ready to log in.');
    expect(out).not.toContain(PASSWORD);
    expect(out).toContain(code); // the code is echoed, as a terminal does
    expect(out).not.toContain('ERROR');
  }, 60_000);

  it('logs in: the password is not echoed, and it ends with the profile and exit 0', async () => {
    const t = kw(['login', `--proxy=${proxy}`, '--user=tess', '--insecure']);
    await t.waitFor(/Enter password for Keyway user tess:\n$/);
    t.type(`${PASSWORD}\r`);
    await t.waitFor(/Enter your OTP token:\n$/);
    t.type(`${nextCode()}\r`);
    expect(await t.exited).toBe(0);
    const out = t.text();
    expect(out).toMatch(/Logged in as:\s+tess/);
    expect(out).not.toContain(PASSWORD);
    expect(out).not.toContain('ERROR');
  }, 60_000);

  it('says why a login with a wrong password failed, and nothing else', async () => {
    const t = kw(['login', `--proxy=${proxy}`, '--user=tess', '--insecure']);
    await t.waitFor(/Enter password for Keyway user tess:\n$/);
    t.type('not the password at all\r');
    await t.waitFor(/Enter your OTP token:\n$/);
    t.type(`${nextCode()}\r`);
    expect(await t.exited).toBe(1);
    const errors = t.text().split('\n').filter((l) => l.startsWith('ERROR'));
    expect(errors).toEqual(['ERROR: invalid username, password or second factor']);
    expect(t.text()).not.toContain('not the password at all');
  }, 60_000);

  it('ends a prompt on Ctrl-C, without echoing what was typed', async () => {
    const t = kw(['login', `--proxy=${proxy}`, '--user=tess', '--insecure']);
    await t.waitFor(/Enter password for Keyway user tess:\n$/);
    t.type('half a pass\x03');
    expect(await t.exited).not.toBe(0);
    expect(t.text()).not.toContain('half a pass');
    expect(t.text()).toContain('ERROR: interrupted');
  }, 60_000);
});
