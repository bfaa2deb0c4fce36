import type { z } from 'zod';
import { lookupKind } from './kinds.js';
import { schemaFor } from './schemas.js';
import type { Resource } from './types.js';

/*
 * Canonical key order for printing resources. Stored resources come back from Postgres jsonb
 * with their keys in jsonb's order (shorter keys first: `deny` before `allow`, `kind` before
 * `namespace`), which is not how Teleport prints them. The order here is the zod schemas'
 * declaration order (zod 4 object shapes keep it), which follows Teleport's:
 *
 * - top level `kind, version, metadata, spec`; metadata `name, description, labels, expires, revision`;
 * - role spec `options, allow, deny`; allow/deny `kubernetes_groups, kubernetes_labels,
 *   kubernetes_resources, kubernetes_users, rules`; kubernetes_resources entries
 *   `kind, namespace, name, verbs, api_group`; rules `resources, verbs`.
 *
 * Keys a schema does not declare keep their input order, after the declared ones. Map-valued
 * fields (labels, traits, kubernetes_labels) are sorted by key, as Go prints maps.
 */

type Schema = z.core.$ZodTypes;

const STRUCTURAL = new Set(['object', 'record', 'array', 'union']);

/** Looks through wrappers (optional, default, pipe, …) to the schema that gives the value its shape. */
function unwrap(schema: unknown, depth = 0): Schema | undefined {
  const s = schema as Schema | undefined;
  const def = s?._zod?.def;
  if (!def || depth > 32) return undefined;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return unwrap(def.innerType, depth + 1);
    case 'pipe': {
      // A transform keeps the input's shape (metadata, specs); a pipe into another schema
      // (oidc redirect_url) has the output's.
      const input = unwrap(def.in, depth + 1);
      if (input && STRUCTURAL.has(input._zod.def.type) && input._zod.def.type !== 'union') return input;
      return unwrap(def.out, depth + 1) ?? input;
    }
    case 'lazy':
      return unwrap(def.getter(), depth + 1);
    default:
      return s;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets a key without ever touching the prototype (a label may be called `__proto__`). */
function put(out: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A deep copy of `value` with object keys in the order `schema` declares them. */
export function orderBySchema(value: unknown, schema: unknown): unknown {
  let s = unwrap(schema);
  if (s?._zod.def.type === 'union') {
    // The option that matches the value's shape, if any (a label value is a string or a list).
    s = s._zod.def.options
      .map((o) => unwrap(o))
      .find((o) => (Array.isArray(value) ? o?._zod.def.type === 'array' : isPlainObject(value) && (o?._zod.def.type === 'object' || o?._zod.def.type === 'record')));
  }
  const def = s?._zod.def;
  if (Array.isArray(value)) {
    const element = def?.type === 'array' ? def.element : undefined;
    return value.map((v) => orderBySchema(v, element));
  }
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  if (def?.type === 'object') {
    const shape = def.shape;
    const declared = Object.keys(shape).filter((k) => Object.hasOwn(value, k));
    const rest = Object.keys(value).filter((k) => !Object.hasOwn(shape, k));
    for (const k of declared) put(out, k, orderBySchema(value[k], shape[k]));
    for (const k of rest) put(out, k, orderBySchema(value[k], undefined));
  } else if (def?.type === 'record') {
    for (const k of Object.keys(value).sort()) put(out, k, orderBySchema(value[k], def.valueType));
  } else {
    for (const k of Object.keys(value)) put(out, k, orderBySchema(value[k], undefined));
  }
  return out;
}

/**
 * A copy of the resource with its keys in Teleport's order (see above), for printing. A resource
 * of an unknown kind still gets `kind, version, metadata, spec` first.
 */
export function canonicalOrder(resource: Resource): Record<string, unknown> {
  const r = resource as unknown as Record<string, unknown>;
  const kind = typeof r['kind'] === 'string' ? lookupKind(r['kind']) : undefined;
  const schema = kind ? schemaFor(kind, String(r['version'])) : undefined;
  const ordered = orderBySchema(r, schema) as Record<string, unknown>;
  if (kind) return ordered;
  const out: Record<string, unknown> = {};
  for (const k of ['kind', 'version', 'metadata', 'spec']) if (Object.hasOwn(ordered, k)) put(out, k, ordered[k]);
  for (const [k, v] of Object.entries(ordered)) if (!Object.hasOwn(out, k)) put(out, k, v);
  return out;
}
