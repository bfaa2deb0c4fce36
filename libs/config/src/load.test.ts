import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './load.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'keyway-config-'));

describe('loadConfig', () => {
  it('runs embedded with defaults and no file', () => {
    const cwd = tmp();
    const cfg = loadConfig({ env: {}, cwd });
    expect(cfg.cluster_name).toBe('keyway');
    expect(cfg.auth_service.listen_addr).toBe('127.0.0.1:3025');
    expect(cfg.proxy_service.listen_addr).toBe('0.0.0.0:3080');
    expect(cfg.storage).toEqual({ type: 'embedded', dataDir: join(cwd, '.keyway') });
    expect(cfg.auth_service.authentication.second_factor).toBe('otp');
    expect(cfg.auth_service.authentication.lockout_duration).toBe(20 * 60_000);
    expect(cfg.caKey).toBeUndefined();
  });

  it('reads keyway.yaml and lets the environment override it', () => {
    const cwd = tmp();
    writeFileSync(
      join(cwd, 'keyway.yaml'),
      'cluster_name: prod\nauth_service:\n  listen_addr: 0.0.0.0:3025\n  authentication: {second_factor: "off", lockout_duration: 5m}\n',
    );
    const cfg = loadConfig({
      file: 'keyway.yaml',
      cwd,
      env: {
        KEYWAY_CLUSTER_NAME: 'staging',
        KEYWAY_DATABASE_URL: 'postgres://db/keyway',
        KEYWAY_PROXY_SERVICE__PUBLIC_ADDR: '[proxy.example.com:443]',
        KEYWAY_CA_KEY: 'secret',
      },
    });
    expect(cfg.cluster_name).toBe('staging');
    expect(cfg.auth_service.listen_addr).toBe('0.0.0.0:3025');
    expect(cfg.auth_service.authentication.second_factor).toBe('off');
    expect(cfg.auth_service.authentication.lockout_duration).toBe(5 * 60_000);
    expect(cfg.storage).toEqual({ type: 'postgres', connString: 'postgres://db/keyway' });
    expect(cfg.proxy_service.public_addr).toEqual(['proxy.example.com:443']);
    expect(cfg.caKey).toBe('secret');
  });

  it('names the field and the file on bad input', () => {
    const cwd = tmp();
    writeFileSync(join(cwd, 'k.yaml'), 'auth_service:\n  listen_addr: nonsense\n  colour: blue\n');
    expect(() => loadConfig({ file: 'k.yaml', cwd, env: {} })).toThrow(/auth_service\.listen_addr: must be host:port/);
    expect(() => loadConfig({ file: 'k.yaml', cwd, env: {} })).toThrow(/colour/);
    expect(() => loadConfig({ file: 'missing.yaml', cwd, env: {} })).toThrow(/cannot read config file/);
  });

  it('reads the CA key from a file', () => {
    const cwd = tmp();
    writeFileSync(join(cwd, 'ca.key'), 'from-file\n');
    writeFileSync(join(cwd, 'k.yaml'), 'auth_service: {ca_key_file: ca.key}\n');
    expect(loadConfig({ file: 'k.yaml', cwd, env: {} }).caKey).toBe('from-file');
  });
});
