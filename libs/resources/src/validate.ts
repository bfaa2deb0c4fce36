import { BadParameterError } from '@keyway/errors';
import type { z } from 'zod';
import { KIND_NAMES, SUPPORTED_VERSIONS, TELEPORT_ONLY_VERSIONS, lookupKind, type ResourceKind } from './kinds.js';
import { RESOURCE_LIMITS, labelProblems, shapeProblem } from './limits.js';
import { lookupForeignKind } from './foreign-kinds.js';
import { schemaFor } from './schemas.js';
import {
  IGNORED_TELEPORT_FIELDS,
  STORED_TELEPORT_FIELDS,
  UNSUPPORTED_TELEPORT_FIELDS,
  forEachField,
  isEmptyDeep,
  type PathSegment,
} from './teleport-fields.js';
import type { Resource } from './types.js';

/**
 * What is wrong with one field of one document.
 * - `unsupported`: a Teleport field (or value) that Keyway does not support yet;
 * - `unknown`: a field that neither Keyway nor Teleport has (often a typo);
 * - `invalid`: a known field with a bad value.
 */
export interface FieldProblem {
  path: string;
  message: string;
  code: 'unsupported' | 'unknown' | 'invalid';
}

export interface ValidationResult {
  resource?: Resource;
  /** The kind as resolved, or as written when it could not be resolved. */
  kind?: string;
  name?: string;
  problems: FieldProblem[];
  /**
   * Sentences for the person creating it (kwctl prints them): Teleport fields stored without
   * effect yet, or why a Teleport document is skipped.
   */
  notes: string[];
  /** A Teleport kind Keyway does not store, checked and not to be written (the note says why). */
  skipped?: boolean;
}

export const UNSUPPORTED_MESSAGE = 'is a Teleport field Keyway does not support yet';

/** The label Teleport puts on the roles it creates itself. */
const TELEPORT_PRESET_LABEL = 'teleport.internal/resource-type';

const ALLOWED_TOP_LEVEL = new Set(['kind', 'version', 'metadata', 'spec']);

/** Teleport's system roles that a provision token can carry, by lower-case name. */
const TELEPORT_TOKEN_ROLES = new Map(
  [
    'Auth',
    'Node',
    'Proxy',
    'Kube',
    'App',
    'Db',
    'WindowsDesktop',
    'LinuxDesktop',
    'Bot',
    'Instance',
    'Discovery',
    'Okta',
    'MDM',
    'AccessGraph',
    'Relay',
    'Trusted_cluster',
    'TrustedCluster',
    'RemoteProxy',
    'Signup',
    'Nop',
    'Admin',
    // Keyway's own (SCIM bearer tokens), see the token schema.
    'Scim',
  ].map((r) => [r.toLowerCase(), r]),
);
const KEYWAY_TOKEN_ROLES = new Set(['Kube', 'Proxy', 'Scim']);

const TELEPORT_JOIN_METHODS = new Set([
  'token',
  'ec2',
  'iam',
  'github',
  'gitlab',
  'circleci',
  'kubernetes',
  'azure',
  'azure_devops',
  'gcp',
  'spacelift',
  'tpm',
  'terraform_cloud',
  'bitbucket',
  'oracle',
  'bound_keypair',
  'env0',
]);

/** `spec.allow.rules[0].where`, `metadata.labels["team/a"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep copy that treats `key: null` as an absent key, as Teleport's decoder does. */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === null || x === undefined) continue;
      Object.defineProperty(out, k, { value: withoutNulls(x), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}

const article = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

const EXPECTED: Record<string, string> = { object: 'mapping', array: 'list', record: 'mapping' };

/** Turns zod's wording into field-level sentences. */
const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'invalid_type') {
    if (iss.input === undefined) return 'is required';
    const expected = EXPECTED[iss.expected] ?? iss.expected;
    return `must be ${article(expected)}, not ${typeName(iss.input)}`;
  }
  if (iss.code === 'too_small' && iss.minimum === 1) return 'must not be empty';
  return undefined;
};

/**
 * Validates one resource object (already decoded from YAML or JSON) and returns it typed and
 * defaulted, or every problem found. Never throws for bad input.
 */
export function validateResourceObject(raw: unknown): ValidationResult {
  const problems: FieldProblem[] = [];
  const notes: string[] = [];
  const reported: string[] = [];
  const add = (path: readonly PathSegment[], message: string, code: FieldProblem['code']) => {
    const p = formatPath(path);
    problems.push({ path: p, message, code });
    reported.push(p);
  };

  const shape = shapeProblem(raw);
  if (shape) {
    add([], `the document ${shape}`, 'invalid');
    return { problems, notes };
  }
  if (!isPlainObject(raw)) {
    add([], `a resource must be a mapping with kind, version, metadata and spec, not ${typeName(raw)}`, 'invalid');
    return { problems, notes };
  }
  const doc = withoutNulls(raw) as Record<string, unknown>;
  const meta = doc['metadata'];
  const name = isPlainObject(meta) && typeof meta['name'] === 'string' ? meta['name'] : undefined;

  const rawKind = doc['kind'];
  if (typeof rawKind !== 'string' || rawKind === '') {
    add(['kind'], `is required (one of: ${KIND_NAMES.join(', ')})`, 'invalid');
    return { name, problems, notes };
  }
  const kind = lookupKind(rawKind);
  const foreign = kind ? undefined : lookupForeignKind(rawKind);
  if (foreign) {
    const { rule } = foreign;
    const label = `${foreign.kind} ${name ?? '(unnamed)'}`;
    if (typeof doc['version'] !== 'string' || name === undefined) {
      add([], `a Teleport ${foreign.kind} needs version and metadata.name`, 'invalid');
    } else if (rule.action === 'refuse' || (foreign.kind === 'namespace' && name !== 'default')) {
      add(['kind'], `${label} ${rule.why}`, 'unsupported');
    } else {
      const summary = isPlainObject(doc['spec']) ? rule.summary?.(doc['spec'], name) : undefined;
      notes.push(`skipped: ${label} ${rule.why}${summary ? ` (it has ${summary})` : ''}`);
      return { kind: foreign.kind, name, problems, notes, skipped: true };
    }
    return { kind: foreign.kind, name, problems, notes };
  }
  if (!kind) {
    add(['kind'], `unknown kind ${JSON.stringify(rawKind)}; expected one of: ${KIND_NAMES.join(', ')}`, 'invalid');
    return { kind: rawKind, name, problems, notes };
  }
  doc['kind'] = kind;
  const labels = isPlainObject(meta) && isPlainObject(meta['labels']) ? meta['labels'] : {};
  if (kind === 'role' && labels[TELEPORT_PRESET_LABEL] === 'preset') {
    // Teleport writes its presets itself (and rewrites them on upgrade); Keyway has its own
    // editor, access and auditor. Importing Teleport's would overwrite those with rules for
    // resources Keyway does not have, so a dump's presets are left out, saying so.
    notes.push(
      `skipped: role ${name ?? '(unnamed)'} is a Teleport preset role (${TELEPORT_PRESET_LABEL}: preset); Keyway keeps its own presets (editor, access, auditor), and users that have other Teleport presets need a Keyway role of that name`,
    );
    return { kind, name, problems, notes, skipped: true };
  }

  const supported = SUPPORTED_VERSIONS[kind];
  const version = doc['version'];
  if (typeof version !== 'string' || !supported.includes(version)) {
    const list = supported.join(', ');
    if (version === undefined) {
      add(['version'], `is required (${kind} supports ${list})`, 'invalid');
    } else if (typeof version === 'string' && TELEPORT_ONLY_VERSIONS[kind]?.includes(version)) {
      add(['version'], `${kind} ${version} is a Teleport version Keyway does not support; convert it to ${list}`, 'unsupported');
    } else {
      add(['version'], `${JSON.stringify(version)} is not a supported ${kind} version (${list})`, 'invalid');
    }
    // Go on with the current version so that every other problem is reported too.
    doc['version'] = supported[0];
  }

  for (const key of Object.keys(doc)) {
    if (!ALLOWED_TOP_LEVEL.has(key) && !UNSUPPORTED_TELEPORT_FIELDS[kind].some((r) => r.path === key) && !IGNORED_TELEPORT_FIELDS[kind].includes(key)) {
      add([key], 'unknown field', 'unknown');
      delete doc[key];
    }
  }

  for (const path of IGNORED_TELEPORT_FIELDS[kind]) {
    forEachField(doc, path, (parent, key) => {
      delete (parent as Record<PathSegment, unknown>)[key];
    });
  }
  for (const rule of STORED_TELEPORT_FIELDS[kind] ?? []) {
    forEachField(doc, rule.path, (parent, key, at) => {
      if (!(rule.inert ?? isEmptyDeep)((parent as Record<PathSegment, unknown>)[key])) {
        notes.push(`${formatPath(at)} is stored as written; it takes effect when Keyway has ${rule.note ?? 'the service it belongs to'}`);
      }
    });
  }
  for (const rule of UNSUPPORTED_TELEPORT_FIELDS[kind]) {
    forEachField(doc, rule.path, (parent, key, at) => {
      const value = (parent as Record<PathSegment, unknown>)[key];
      if (!(rule.inert ?? isEmptyDeep)(value)) {
        add(at, `${UNSUPPORTED_MESSAGE}${rule.note ? ` (${rule.note})` : ''}`, 'unsupported');
      }
      delete (parent as Record<PathSegment, unknown>)[key];
    });
  }
  prepareKind(kind, doc, add);

  const result = schemaFor(kind, doc['version'] as string).safeParse(doc, { error: errorMap });
  if (!result.success) {
    for (const issue of result.error.issues) {
      const base = issue.path as PathSegment[];
      const entries: [PathSegment[], string, FieldProblem['code']][] =
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((k) => [[...base, k], 'unknown field', 'unknown'])
          : [[base, issue.message, 'invalid']];
      for (const [path, message, code] of entries) {
        const p = formatPath(path);
        // A field already reported (or one inside it) is not reported twice.
        if (reported.some((r) => r === p || r.startsWith(`${p}.`) || r.startsWith(`${p}[`) || p.startsWith(`${r}.`) || p.startsWith(`${r}[`))) {
          continue;
        }
        add(path, message, code);
      }
    }
  }
  if (problems.length > 0 || !result.success) return { kind, name, problems, notes };
  for (const p of labelProblems((result.data as Resource).metadata.labels, 'metadata.labels')) problems.push({ ...p, code: 'invalid' });
  const bytes = Buffer.byteLength(JSON.stringify(result.data), 'utf8');
  if (bytes > RESOURCE_LIMITS.maxResourceBytes) {
    problems.push({ path: '', message: `the resource is ${bytes} bytes, more than the limit of ${RESOURCE_LIMITS.maxResourceBytes} bytes`, code: 'invalid' });
  }
  if (problems.length > 0) return { kind, name, problems, notes };
  return { resource: result.data, kind, name, problems, notes };
}

/** Kind-specific Teleport compatibility that is about values rather than fields. */
function prepareKind(
  kind: ResourceKind,
  doc: Record<string, unknown>,
  add: (path: readonly PathSegment[], message: string, code: FieldProblem['code']) => void,
): void {
  const spec = doc['spec'];
  if (!isPlainObject(spec)) return;
  if (kind === 'user') {
    // Teleport prints spec.expires on every user, as Go's zero time when unset. A real expiry
    // is the same thing as metadata.expires, which is where Keyway keeps it.
    const expires = spec['expires'];
    delete spec['expires'];
    if (typeof expires === 'string' && !/^0001-01-01T00:00:00/.test(expires)) {
      const meta = isPlainObject(doc['metadata']) ? doc['metadata'] : undefined;
      if (meta && meta['expires'] === undefined) meta['expires'] = expires;
    } else if (expires !== undefined && typeof expires !== 'string') {
      add(['spec', 'expires'], `must be an RFC 3339 timestamp, not ${typeName(expires)}`, 'invalid');
    }
  }
  if (kind === 'token') {
    const method = spec['join_method'];
    if (typeof method === 'string' && method.toLowerCase() !== 'token' && TELEPORT_JOIN_METHODS.has(method.toLowerCase())) {
      add(['spec', 'join_method'], `${JSON.stringify(method)} is a Teleport join method Keyway does not support yet (use "token")`, 'unsupported');
    } else if (typeof method === 'string') {
      spec['join_method'] = method.toLowerCase();
    }
    const roles = spec['roles'];
    if (Array.isArray(roles)) {
      spec['roles'] = roles.map((r, i) => {
        if (typeof r !== 'string') return r;
        const canonical = TELEPORT_TOKEN_ROLES.get(r.toLowerCase());
        if (canonical === undefined) {
          add(['spec', 'roles', i], `unknown role ${JSON.stringify(r)}; Keyway join tokens support: ${[...KEYWAY_TOKEN_ROLES].join(', ')}`, 'invalid');
        } else if (!KEYWAY_TOKEN_ROLES.has(canonical)) {
          add(['spec', 'roles', i], `${JSON.stringify(canonical)} is a Teleport role Keyway join tokens do not support yet (use "Kube" or "Proxy")`, 'unsupported');
        }
        return canonical ?? r;
      });
    }
  }
}

/**
 * Validates one resource object and returns it, or throws one BadParameterError such as
 * `role junior-devs: spec.allow.logins is a Teleport field Keyway does not support yet`.
 * Use parseResourceDocuments for YAML/JSON text.
 */
export function parseResource(raw: unknown): Resource {
  const r = validateResourceObject(raw);
  if (r.resource) return r.resource;
  const who = `${r.kind ?? 'resource'} ${r.name ?? '(unnamed)'}`;
  const lines = r.problems.map((p) => `${who}: ${problemText(p)}`);
  throw new BadParameterError(lines.join('\n'), {
    problems: r.problems.map((p) => ({ kind: r.kind, name: r.name, path: p.path, message: p.message, code: p.code })),
  });
}

/**
 * One problem as a sentence: `unknown field spec.allow.foo`,
 * `spec.allow.logins is a Teleport field Keyway does not support yet (…)`,
 * `spec.options.max_session_ttl: invalid duration "8x": …`.
 */
export function problemText(p: { path: string; message: string; code: string }): string {
  if (p.path === '') return p.message;
  if (p.code === 'unknown') return `unknown field ${p.path}`;
  if (p.message.startsWith('is ')) return `${p.path} ${p.message}`;
  return `${p.path}: ${p.message}`;
}
