import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { BadParameterError } from '@keyway/errors';
import { configSchema, type ParsedConfig } from './schema.js';
import { fromTeleport } from './teleport.js';

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
  /** Teleport settings and sections Keyway does not implement, one sentence each, for the log. */
  warnings: string[];
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
  // Teleport's spellings become Keyway's before the environment (which uses Keyway's) overrides.
  const mapping = fromTeleport(raw as Record<string, unknown>);
  const merged = mapping.config;
  const fileTree = structuredClone(merged);
  const fromEnv = applyEnv(merged, env);
  const result = configSchema.safeParse(merged);
  if (!result.success || mapping.problems.length > 0) {
    const sources = new Set<string>(mapping.problems.length > 0 ? [source] : []);
    const issues = result.success ? [] : result.error.issues;
    const problems = [...mapping.problems, ...issues.flatMap((issue) => {
      // An unknown key is reported on its parent; name each key so it can be traced to its origin.
      const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
      return paths.map((path) => {
        const variable = envVariableFor(fromEnv, fileTree, path);
        sources.add(variable ? 'environment' : source);
        const where = (variable ? path.map(String).join('.') : asWritten(path.map(String), mapping.renamed)) || '(root)';
        const message = issue.code === 'unrecognized_keys' ? `unknown field` : issue.message;
        return variable ? `${where} (set by ${variable}): ${message}` : `${where}: ${message}`;
      });
    })];
    const from = [...sources].join(' and ');
    throw new BadParameterError(`invalid configuration (${from}):\n  ${problems.join('\n  ')}`, { source: from, problems });
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
  return { ...parsed, dataDir, storage, ...(caKey ? { caKey } : {}), source, warnings: mapping.warnings };
}

/** A Keyway path as the file spelled it (proxy_service.listen_addr → proxy_service.web_listen_addr). */
function asWritten(path: string[], renamed: [string, string][]): string {
  const joined = path.join('.');
  let best: [string, string] | undefined;
  for (const r of renamed) {
    if ((joined === r[0] || joined.startsWith(`${r[0]}.`)) && r[0].length > (best?.[0].length ?? -1)) best = r;
  }
  return best ? best[1] + joined.slice(best[0].length) : joined;
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
 * auth_service.listen_addr. A value is read according to the field it sets: a number or a
 * boolean field reads it as a YAML scalar (`5`, `true`), a list or mapping field as YAML (`[a, b]`,
 * `{env: prod}`, with the leaves read the same way), and every other field keeps the text as it
 * is, so `KEYWAY_CLUSTER_NAME=2024` is the string "2024". Returns which variable set which path.
 */
function applyEnv(target: Record<string, unknown>, env: NodeJS.ProcessEnv): Map<string, EnvOrigin> {
  const origins = new Map<string, EnvOrigin>();
  const entries = Object.entries(env).filter(([k, v]) => k.startsWith('KEYWAY_') && v !== undefined && v !== '');
  for (const [key, value] of entries) {
    if (NOT_CONFIG.has(key)) continue;
    const path = SHORTCUTS[key] ?? (key.includes('__') ? key.slice('KEYWAY_'.length).toLowerCase().split('__') : undefined);
    if (!path) continue;
    setPath(target, path, readEnvValue(value as string, fieldSchema(path)));
    origins.set(path.join('.'), { variable: key, path });
  }
  return origins;
}

interface EnvOrigin {
  variable: string;
  path: string[];
}

/**
 * The variable that set `path` (or a mapping it is in), if any. A problem inside a mapping that
 * the file does not have, such as a missing join_params.token_name when only
 * KEYWAY_JOIN_PARAMS__METHOD is set, is put down to the variables that created the mapping.
 */
function envVariableFor(origins: Map<string, EnvOrigin>, file: unknown, path: readonly PropertyKey[]): string | undefined {
  const keys = path.map(String);
  for (let n = keys.length; n > 0; n--) {
    const origin = origins.get(keys.slice(0, n).join('.'));
    if (origin) return origin.variable;
  }
  let node = file;
  for (let n = 0; n < keys.length; n++) {
    const key = keys[n] as string;
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) {
      const missing = keys.slice(0, n + 1);
      const variables = [...origins.values()]
        .filter((o) => missing.every((k, i) => o.path[i] === k))
        .map((o) => o.variable)
        .sort();
      return variables.length > 0 ? variables.join(', ') : undefined;
    }
    node = (node as Record<string, unknown>)[key];
  }
  return undefined;
}

type Schema = z.core.$ZodTypes;

/** Looks through optional, default, prefault and pipes (durations) to the type of the value. */
function unwrap(schema: unknown): Schema | undefined {
  let s = schema as Schema | undefined;
  for (let i = 0; s && i < 32; i++) {
    const def = s._zod.def;
    if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default' || def.type === 'prefault' || def.type === 'readonly') {
      s = def.innerType as Schema;
    } else if (def.type === 'pipe') {
      s = def.in as Schema;
    } else {
      return s;
    }
  }
  return undefined;
}

/** The schema of the field at `path`, or undefined for a field the schema does not have. */
function fieldSchema(path: readonly string[]): Schema | undefined {
  let s: Schema | undefined = unwrap(configSchema);
  for (const segment of path) {
    s = childSchema(s, segment);
    if (!s) return undefined;
  }
  return s;
}

function childSchema(s: Schema | undefined, key: string | number): Schema | undefined {
  const def = s?._zod.def;
  if (def?.type === 'object') return typeof key === 'string' && Object.hasOwn(def.shape, key) ? unwrap(def.shape[key]) : undefined;
  if (def?.type === 'record') return unwrap(def.valueType);
  if (def?.type === 'array') return unwrap(def.element);
  return undefined;
}

function readEnvValue(value: string, schema: Schema | undefined): unknown {
  const type = schema?._zod.def.type;
  if (type === 'object' || type === 'record' || type === 'array') {
    let tree: unknown;
    try {
      // The failsafe schema reads every scalar as a string; coerce() then types the leaves.
      tree = parseYaml(value, { schema: 'failsafe' });
    } catch {
      return value;
    }
    return tree === null || typeof tree !== 'object' ? value : coerce(tree, schema);
  }
  return coerce(value, schema);
}

/** Types the string leaves of a value read from the environment by the schema of each field. */
function coerce(value: unknown, schema: Schema | undefined): unknown {
  if (Array.isArray(value)) return value.map((v) => coerce(v, childSchema(schema, 0)));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, { value: coerce(v, childSchema(schema, k)), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  if (typeof value !== 'string') return value;
  const type = schema?._zod.def.type;
  if (type === 'number' || type === 'boolean') {
    let scalar: unknown;
    try {
      scalar = parseYaml(value);
    } catch {
      return value;
    }
    // Anything else stays a string, so the schema's message says what was expected.
    if (type === 'boolean' ? typeof scalar === 'boolean' : typeof scalar === 'number') return scalar;
  }
  return value;
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
