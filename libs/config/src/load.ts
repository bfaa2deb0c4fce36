import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { BadParameterError } from '@keyway/errors';
import { configSchema, type ParsedConfig } from './schema.js';

export const DEFAULT_DATA_DIR = '.keyway';

/** Configuration with every default applied and paths resolved. */
export interface KeywayConfig extends ParsedConfig {
  /** Absolute data directory (auth_service.storage.data_dir, data_dir or ./.keyway). */
  dataDir: string;
  /** Where the store lives: embedded PGlite under dataDir, or an external Postgres. */
  storage: { type: 'embedded'; dataDir: string } | { type: 'postgres'; connString: string };
  /** The CA key-encryption secret, when one was given (KEYWAY_CA_KEY or ca_key_file). */
  caKey?: string;
  /** Where this configuration came from, for messages. */
  source: string;
}

/** Named shortcuts on top of the generic KEYWAY_<PATH>__<TO>__<FIELD> form. */
const SHORTCUTS: Record<string, string[]> = {
  KEYWAY_DATA_DIR: ['data_dir'],
  KEYWAY_DATABASE_URL: ['auth_service', 'storage', 'conn_string'],
  KEYWAY_REDIS_URL: ['auth_service', 'redis_url'],
  KEYWAY_AUTH_LISTEN_ADDR: ['auth_service', 'listen_addr'],
  KEYWAY_PROXY_LISTEN_ADDR: ['proxy_service', 'listen_addr'],
  KEYWAY_CLUSTER_NAME: ['cluster_name'],
  KEYWAY_AUTH_SERVER: ['auth_server'],
  KEYWAY_CA_PIN: ['ca_pin'],
};

const NOT_CONFIG = new Set(['KEYWAY_CA_KEY', 'KEYWAY_LOG_LEVEL', 'KEYWAY_CONFIG']);

export interface LoadConfigOptions {
  /** Path of keyway.yaml; none means defaults plus environment. */
  file?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Base for relative paths; defaults to the current directory. */
  cwd?: string;
}

export function loadConfig(options: LoadConfigOptions = {}): KeywayConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const file = options.file ?? env['KEYWAY_CONFIG'];
  let raw: unknown = {};
  let source = 'defaults';
  if (file) {
    source = resolve(cwd, file);
    let text: string;
    try {
      text = readFileSync(source, 'utf8');
    } catch (err) {
      throw new BadParameterError(`cannot read config file ${source}: ${(err as Error).message}`, { file: source });
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (err) {
      throw new BadParameterError(`config file ${source} is not valid YAML: ${(err as Error).message}`, { file: source });
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw new BadParameterError(`config file ${source} must hold a YAML mapping`, { file: source });
    }
  }
  const merged = applyEnv(structuredClone(raw) as Record<string, unknown>, env);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new BadParameterError(`invalid configuration (${source}):\n  ${problems.join('\n  ')}`, { source, problems });
  }
  const parsed = result.data;
  const dataDir = resolve(cwd, parsed.auth_service.storage.data_dir ?? parsed.data_dir ?? DEFAULT_DATA_DIR);
  const { type, conn_string } = parsed.auth_service.storage;
  let storage: KeywayConfig['storage'];
  if (type === 'postgres' || (type === undefined && conn_string)) {
    if (!conn_string) {
      throw new BadParameterError('auth_service.storage.type is postgres but no conn_string (or KEYWAY_DATABASE_URL) is set');
    }
    storage = { type: 'postgres', connString: conn_string };
  } else {
    storage = { type: 'embedded', dataDir };
  }
  const caKey = readCaKey(env, parsed.auth_service.ca_key_file, cwd);
  return { ...parsed, dataDir, storage, ...(caKey ? { caKey } : {}), source };
}

function readCaKey(env: NodeJS.ProcessEnv, file: string | undefined, cwd: string): string | undefined {
  const fromEnv = env['KEYWAY_CA_KEY'];
  if (fromEnv) return fromEnv;
  if (!file) return undefined;
  const path = resolve(cwd, file);
  try {
    const key = readFileSync(path, 'utf8').trim();
    if (!key) throw new Error('file is empty');
    return key;
  } catch (err) {
    throw new BadParameterError(`cannot read auth_service.ca_key_file ${path}: ${(err as Error).message}`, { file: path });
  }
}

/**
 * Every field can be set from the environment: KEYWAY_AUTH_SERVICE__LISTEN_ADDR sets
 * auth_service.listen_addr; values are read as YAML scalars, so `[a, b]` is a list.
 */
function applyEnv(target: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const entries = Object.entries(env).filter(([k, v]) => k.startsWith('KEYWAY_') && v !== undefined && v !== '');
  for (const [key, value] of entries) {
    if (NOT_CONFIG.has(key)) continue;
    const path = SHORTCUTS[key] ?? (key.includes('__') ? key.slice('KEYWAY_'.length).toLowerCase().split('__') : undefined);
    if (!path) continue;
    setPath(target, path, parseScalar(value as string));
  }
  return target;
}

function parseScalar(value: string): unknown {
  try {
    const v: unknown = parseYaml(value);
    return v === null ? value : v;
  } catch {
    return value;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const segment of path.slice(0, -1)) {
    const next = node[segment];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[segment] = {};
    node = node[segment] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}
