import { createHash } from 'node:crypto';

/**
 * Parsing of SCIM 2.0 requests (RFC 7643/7644) as Okta and Entra ID send them, for the
 * deprovisioning Keyway does: everything here is pure, bounded, and throws nothing but
 * ScimError, which becomes a SCIM error document with its status.
 */

export const SCIM_SCHEMAS = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  list: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  error: 'urn:ietf:params:scim:api:messages:2.0:Error',
  patch: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  spc: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
  resourceType: 'urn:ietf:params:scim:schemas:core:2.0:ResourceType',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Schema',
} as const;

export const SCIM_MAX_BODY_BYTES = 64 * 1024;
/** Nesting of a body's JSON: a PATCH is 4 deep; this leaves room for extension attributes. */
export const SCIM_MAX_DEPTH = 16;
export const SCIM_MAX_OPERATIONS = 100;
export const SCIM_MAX_PAGE = 200;
const MAX_USER_NAME_BYTES = 512;

/** A SCIM answer that is an error: status and detail (no secrets), and RFC 7644's scimType. */
export class ScimError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly scimType?: string,
  ) {
    super(detail);
    this.name = 'ScimError';
  }

  document(): Record<string, unknown> {
    return { schemas: [SCIM_SCHEMAS.error], status: String(this.status), detail: this.detail, ...(this.scimType ? { scimType: this.scimType } : {}) };
  }
}

/** The name a SCIM token is stored under: the SHA-256 of its value, so the store holds no usable secret. */
export function scimTokenName(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** The body as JSON, refused past SCIM_MAX_BODY_BYTES or SCIM_MAX_DEPTH before JSON.parse sees it. */
export function parseScimJson(text: string): unknown {
  if (Buffer.byteLength(text, 'utf8') > SCIM_MAX_BODY_BYTES) throw new ScimError(413, `the request body is over ${SCIM_MAX_BODY_BYTES} bytes`);
  if (text.trim() === '') throw new ScimError(400, 'the request needs a JSON body', 'invalidSyntax');
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > SCIM_MAX_DEPTH) throw new ScimError(400, `the request body nests deeper than ${SCIM_MAX_DEPTH} levels`, 'invalidSyntax');
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ScimError(400, 'the request body is not JSON', 'invalidSyntax');
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A key of an object, matched case-insensitively as SCIM attribute names are. */
function attr(o: Record<string, unknown>, name: string): unknown {
  const lower = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

/** `active` as a boolean; Entra ID has sent it as the strings "True"/"False". */
function activeValue(v: unknown, where: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  throw new ScimError(400, `${where} must be true or false`, 'invalidValue');
}

/** What a request changes that Keyway acts on: only whether the user is active. */
export interface ScimChange {
  active?: boolean;
}

/**
 * A PATCH (RFC 7644 §3.5.2): `{op: replace, path: active, value: false}` (Okta) or
 * `{op: replace, value: {active: false}}` (Entra ID). Other attributes (names, emails) are
 * accepted and ignored: Keyway keeps no profile; the last `active` wins.
 */
export function parsePatch(body: unknown): ScimChange {
  if (!isObject(body)) throw new ScimError(400, 'a PATCH body must be a JSON object', 'invalidSyntax');
  const schemas = attr(body, 'schemas');
  if (schemas !== undefined && !(Array.isArray(schemas) && schemas.includes(SCIM_SCHEMAS.patch))) {
    throw new ScimError(400, `a PATCH body's schemas must include ${SCIM_SCHEMAS.patch}`, 'invalidSyntax');
  }
  const ops = attr(body, 'Operations');
  if (!Array.isArray(ops) || ops.length === 0) throw new ScimError(400, 'a PATCH body needs a non-empty Operations array', 'invalidSyntax');
  if (ops.length > SCIM_MAX_OPERATIONS) throw new ScimError(400, `a PATCH may hold at most ${SCIM_MAX_OPERATIONS} operations`, 'tooMany');
  const change: ScimChange = {};
  ops.forEach((op: unknown, i) => {
    const where = `Operations[${i}]`;
    if (!isObject(op)) throw new ScimError(400, `${where} must be an object`, 'invalidSyntax');
    const kind = attr(op, 'op');
    if (typeof kind !== 'string' || !['add', 'replace', 'remove'].includes(kind.toLowerCase())) {
      throw new ScimError(400, `${where}.op must be add, replace or remove`, 'invalidSyntax');
    }
    const path = attr(op, 'path');
    if (path !== undefined && typeof path !== 'string') throw new ScimError(400, `${where}.path must be a string`, 'invalidPath');
    const value = attr(op, 'value');
    const targetsActive = typeof path === 'string' && /^(urn:ietf:params:scim:schemas:core:2\.0:User:)?active$/i.test(path.trim());
    if (kind.toLowerCase() === 'remove') {
      if (targetsActive) throw new ScimError(400, `${where}: active cannot be removed; replace it with false`, 'mutability');
      return;
    }
    if (targetsActive) change.active = activeValue(value, `${where}.value`);
    else if (path === undefined) {
      if (!isObject(value)) throw new ScimError(400, `${where}: an operation without a path needs an object value`, 'invalidValue');
      const active = attr(value, 'active');
      if (active !== undefined) change.active = activeValue(active, `${where}.value.active`);
    }
  });
  return change;
}

/** The userName of a body, when it has one: a bounded string without control characters. */
function userNameOf(body: Record<string, unknown>, required: boolean): string | undefined {
  const name = attr(body, 'userName');
  if (name === undefined && !required) return undefined;
  if (typeof name !== 'string' || name.trim() === '') throw new ScimError(400, 'userName must be a non-empty string', 'invalidValue');
  if (Buffer.byteLength(name) > MAX_USER_NAME_BYTES || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new ScimError(400, `userName must be at most ${MAX_USER_NAME_BYTES} bytes without control characters`, 'invalidValue');
  }
  return name;
}

/** A PUT (replace): userName may not change (it is the id); `active` absent changes nothing. */
export function parseReplace(body: unknown, id: string): ScimChange {
  if (!isObject(body)) throw new ScimError(400, 'a PUT body must be a JSON object', 'invalidSyntax');
  const name = userNameOf(body, false);
  if (name !== undefined && name !== id) throw new ScimError(400, `userName "${name}" is not the id "${id}": Keyway users cannot be renamed`, 'mutability');
  const active = attr(body, 'active');
  return active === undefined ? {} : { active: activeValue(active, 'active') };
}

/** A POST (create): the userName, and whether it starts out active (default true). */
export function parseCreate(body: unknown): { userName: string; active: boolean } {
  if (!isObject(body)) throw new ScimError(400, 'a POST body must be a JSON object', 'invalidSyntax');
  const userName = userNameOf(body, true) as string;
  const active = attr(body, 'active');
  return { userName, active: active === undefined ? true : activeValue(active, 'active') };
}

/** `userName eq "x"`, the one filter Okta and Entra ID send for users: the name, or undefined without a filter. */
export function parseFilter(filter: string | null): string | undefined {
  if (filter === null || filter.trim() === '') return undefined;
  const m = /^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i.exec(filter);
  if (!m) throw new ScimError(400, 'the only filter supported is userName eq "<name>"', 'invalidFilter');
  try {
    return JSON.parse(`"${m[1] as string}"`) as string;
  } catch {
    throw new ScimError(400, 'the filter value is not a valid string', 'invalidFilter');
  }
}

/** startIndex (1-based) and count, clamped as RFC 7644 §3.4.2.4 says (below 1 is 1, negative count is 0). */
export function parsePaging(q: URLSearchParams): { startIndex: number; count: number } {
  const num = (k: string, dflt: number): number => {
    const v = q.get(k);
    if (v === null || v === '') return dflt;
    if (!/^-?\d{1,9}$/.test(v.trim())) throw new ScimError(400, `${k} must be an integer`, 'invalidValue');
    return Number(v.trim());
  };
  return { startIndex: Math.max(1, num('startIndex', 1)), count: Math.min(Math.max(0, num('count', 100)), SCIM_MAX_PAGE) };
}

export type ScimRoute =
  | { kind: 'users' }
  | { kind: 'user'; id: string }
  | { kind: 'spc' }
  | { kind: 'resourceTypes'; id?: string }
  | { kind: 'schemas'; id?: string };

/** The path after /scim/v2; the user id is the Keyway user name, URL-encoded. */
export function parseRoute(path: string): ScimRoute {
  const p = path.replace(/\/+$/, '');
  if (/^\/Users$/i.test(p)) return { kind: 'users' };
  if (/^\/ServiceProviderConfigs?$/i.test(p)) return { kind: 'spc' };
  const one = /^\/(Users|ResourceTypes|Schemas)(?:\/([^/]+))?$/i.exec(p);
  if (!one) throw new ScimError(404, `no SCIM endpoint at ${path.slice(0, 200)}`);
  const what = (one[1] as string).toLowerCase();
  let id: string | undefined;
  if (one[2] !== undefined) {
    try {
      id = decodeURIComponent(one[2]);
    } catch {
      throw new ScimError(400, 'the id in the path is not valid percent-encoding', 'invalidValue');
    }
  }
  if (what === 'users') return { kind: 'user', id: id as string };
  return what === 'schemas' ? { kind: 'schemas', ...(id ? { id } : {}) } : { kind: 'resourceTypes', ...(id ? { id } : {}) };
}
