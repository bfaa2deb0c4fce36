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

  it('keeps environment values as text unless the field is a number or a boolean', () => {
    const cwd = tmp();
    const cfg = loadConfig({
      cwd,
      env: {
        KEYWAY_CLUSTER_NAME: '2024',
        KEYWAY_KUBERNETES_SERVICE__KUBE_CLUSTER_NAME: 'true',
        KEYWAY_AUTH_SERVICE__CA_KEY_FILE: '',
        KEYWAY_AUTH_SERVICE__AUTHENTICATION__MAX_LOGIN_ATTEMPTS: '3',
        KEYWAY_AUTH_SERVICE__AUTHENTICATION__CONNECTOR_NAME: '0123',
        KEYWAY_PROXY_SERVICE__ENABLED: 'false',
        KEYWAY_KUBERNETES_SERVICE__ENABLED: 'true',
        KEYWAY_KUBERNETES_SERVICE__LABELS: '{env: prod, tier: 1, "on": yes}',
        KEYWAY_KUBERNETES_SERVICE__JOIN_PARAMS__TOKEN_NAME: '007',
        KEYWAY_CA_PIN: '[sha256:ab, 12]',
      },
    });
    expect(cfg.cluster_name).toBe('2024');
    expect(cfg.kubernetes_service.kube_cluster_name).toBe('true');
    expect(cfg.auth_service.authentication.max_login_attempts).toBe(3);
    expect(cfg.auth_service.authentication.connector_name).toBe('0123');
    expect(cfg.proxy_service.enabled).toBe(false);
    expect(cfg.kubernetes_service.enabled).toBe(true);
    expect(cfg.kubernetes_service.labels).toEqual({ env: 'prod', tier: '1', on: 'yes' });
    expect(cfg.kubernetes_service.join_params).toEqual({ token_name: '007', method: 'token' });
    expect(cfg.ca_pin).toEqual(['sha256:ab', '12']);
  });

  it('names the environment variable that set a bad value', () => {
    const cwd = tmp();
    const fail = (env: NodeJS.ProcessEnv, file?: string) => {
      try {
        loadConfig({ cwd, env, ...(file ? { file } : {}) });
      } catch (err) {
        return err as Error & { data: { source: string; problems: string[] } };
      }
      throw new Error('expected loadConfig to fail');
    };

    let err = fail({ KEYWAY_AUTH_SERVICE__AUTHENTICATION__MAX_LOGIN_ATTEMPTS: 'lots' });
    expect(err.message).toMatch(/^invalid configuration \(environment\):\n/);
    expect(err.message).toMatch(/auth_service\.authentication\.max_login_attempts \(set by KEYWAY_AUTH_SERVICE__AUTHENTICATION__MAX_LOGIN_ATTEMPTS\): .*number/i);
    expect(err.message).not.toContain('defaults');
    expect(err.data.source).toBe('environment');

    err = fail({ KEYWAY_CLUSTER_NAME: 'not a name!' });
    expect(err.message).toContain('cluster_name (set by KEYWAY_CLUSTER_NAME): letters, digits');
    err = fail({ KEYWAY_KUBERNETES_SERVICE__IDENTITY_SECRET: 'Agent_0' });
    expect(err.message).toContain('kubernetes_service.identity_secret (set by KEYWAY_KUBERNETES_SERVICE__IDENTITY_SECRET): a Kubernetes object name');
    err = fail({ KEYWAY_PROXY_SERVICE__ENABLED: 'sometimes' });
    expect(err.message).toMatch(/proxy_service\.enabled \(set by KEYWAY_PROXY_SERVICE__ENABLED\): .*boolean/i);
    err = fail({ KEYWAY_AUTH_SERVICE__COLOUR: 'blue' });
    expect(err.message).toContain('auth_service.colour (set by KEYWAY_AUTH_SERVICE__COLOUR): unknown field');
    // A mapping created by one variable is put down to it, also for a field it left out.
    err = fail({ KEYWAY_JOIN_PARAMS__METHOD: 'token' });
    expect(err.message).toContain('join_params.token_name (set by KEYWAY_JOIN_PARAMS__METHOD): ');
    // The duration parser's own checks apply to the environment too.
    err = fail({ KEYWAY_AUTH_SERVICE__AUTHENTICATION__LOCKOUT_DURATION: '99999999999999999h' });
    expect(err.message).toContain('(set by KEYWAY_AUTH_SERVICE__AUTHENTICATION__LOCKOUT_DURATION): invalid duration "99999999999999999h": out of range');
    err = fail({ KEYWAY_AUTH_SERVICE__AUTHENTICATION__LOCKOUT_DURATION: '-5m' });
    expect(err.message).toContain('(set by KEYWAY_AUTH_SERVICE__AUTHENTICATION__LOCKOUT_DURATION): invalid duration "-5m": is negative');

    // File and environment problems together: each line says where it came from.
    writeFileSync(join(cwd, 'k.yaml'), 'auth_service:\n  listen_addr: nonsense\n');
    err = fail({ KEYWAY_PROXY_SERVICE__LISTEN_ADDR: 'also-nonsense' }, 'k.yaml');
    expect(err.message.split('\n')).toEqual([
      `invalid configuration (${join(cwd, 'k.yaml')} and environment):`,
      '  auth_service.listen_addr: must be host:port, e.g. 127.0.0.1:3025 or :3080',
      '  proxy_service.listen_addr (set by KEYWAY_PROXY_SERVICE__LISTEN_ADDR): must be host:port, e.g. 127.0.0.1:3025 or :3080',
    ]);
  });
});
