import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, runCommand, startProcess, type LongRunning, type TestDatabase } from '@keyway/testing';

// The binaries as a user runs them (`npx keyway start`, `npx kwctl ...`), as processes.
const root = fileURLToPath(new URL('../../..', import.meta.url));
const keyway = join(root, 'node_modules/.bin/keyway');
const kwctlBin = join(root, 'node_modules/.bin/kwctl');

const baseEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: process.env['HOME'], KEYWAY_LOG_LEVEL: 'warn' };
  return env;
};

const LISTENING = /auth service \(gRPC, mTLS\):\s+(\S+)/;

// Never the default ports: a developer's `npm start` holds 3025 and 3080 while tests run.
const FREE_PORTS = ['--auth-listen-addr', '127.0.0.1:0', '--proxy-listen-addr', '127.0.0.1:0'];

async function start(env: NodeJS.ProcessEnv, dataDir: string, args = FREE_PORTS): Promise<LongRunning> {
  const p = startProcess(keyway, ['start', '--data-dir', dataDir, ...args], env);
  await p.waitFor(LISTENING, 60_000);
  return p;
}

async function fingerprints(dataDir: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const r = await runCommand(kwctlBin, ['--data-dir', dataDir, 'status'], { env });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return [...r.stdout.matchAll(/^(?:user|host) CA:\s+(\S+)$/gm)].map((m) => m[1] as string);
}

describe('keyway start (embedded default)', () => {
  it('comes up with no configuration, serves kwctl, stops on SIGTERM and keeps its CAs', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'keyway-start-'));
    const env = baseEnv();
    // The proxy's default host (every interface) on a free port: logged as it is bound.
    const first = await start(env, dataDir, ['--auth-listen-addr', '127.0.0.1:0', '--proxy-listen-addr', '0.0.0.0:0']);
    const port = /proxy \(kubectl, agents\):\s+listening on 0\.0\.0\.0:(\d+)\n/.exec(first.stdout())?.[1];
    expect(port, first.stdout()).toBeTruthy();
    expect(first.stdout()).toContain(`npx kw login --proxy=localhost:${port} `);
    expect(first.stdout()).toMatch(/admin identity:\s+.*admin-identity\.pem/);
    expect(first.stdout()).toMatch(/kwctl users add/);
    expect(first.stderr()).toMatch(/generated one into the data dir/);
    const before = await fingerprints(dataDir, env);
    expect(before).toHaveLength(2);
    const add = await runCommand(kwctlBin, ['--data-dir', dataDir, 'users', 'add', 'alice', '--roles=access'], { env });
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/kw signup [0-9a-f]{48}/);
    expect(await first.stop()).toBe(0);

    const second = await start(env, dataDir);
    try {
      expect(await fingerprints(dataDir, env)).toEqual(before);
      const users = await runCommand(kwctlBin, ['--data-dir', dataDir, 'get', 'users', '--format', 'text'], { env });
      expect(users.stdout).toMatch(/alice/);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 120_000);
});

describe('keyway start on Postgres', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase();
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  it('needs a CA key, keeps the CAs across a restart, and refuses a wrong key', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'keyway-pg-'));
    const env = { ...baseEnv(), KEYWAY_DATABASE_URL: tdb.url };

    const noKey = await runCommand(keyway, ['start', '--data-dir', dataDir, ...FREE_PORTS], { env });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/no CA key: set KEYWAY_CA_KEY/);

    const keyed = { ...env, KEYWAY_CA_KEY: 'the-right-key-0123456789' };
    const first = await start(keyed, dataDir);
    const before = await fingerprints(dataDir, keyed);
    expect(await first.stop()).toBe(0);

    const second = await start(keyed, dataDir);
    expect(await fingerprints(dataDir, keyed)).toEqual(before);
    expect(await second.stop()).toBe(0);

    const wrong = await runCommand(keyway, ['start', '--data-dir', dataDir, ...FREE_PORTS], {
      env: { ...env, KEYWAY_CA_KEY: 'a-wrong-key-0123456789' },
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/CA key does not decrypt the stored certificate authorities: wrong KEYWAY_CA_KEY\?/);
  }, 120_000);
});
