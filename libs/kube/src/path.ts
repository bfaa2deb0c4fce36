import { BadParameterError } from '@keyway/errors';

/**
 * A request target after normalisation. `path` is at once what Keyway authorizes, what it
 * forwards and what the API server will see as the decoded URL path: it contains no `%` at all,
 * so decoding it (as Go's net/url does before kube-apiserver builds its RequestInfo) is the
 * identity. `query` is the raw query string without the `?` (validated, not rewritten); `url`
 * is `path` plus `?query` when there is one, ready to forward.
 */
export interface NormalizedRequestPath {
  path: string;
  query: string;
  url: string;
}

/**
 * Characters a decoded path segment may contain: RFC 3986 `pchar` without `%`, i.e. unreserved,
 * sub-delims, `:` and `@`. None of them needs encoding in a path, so the decoded segment is also
 * its own (only) encoding. Everything else (space, `%`, `?`, `#`, `/`, `\`, non-ASCII, control
 * bytes) is refused rather than re-encoded: Kubernetes names never contain them.
 */
const SEGMENT_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]$/;

/** Characters allowed raw in a query string: `pchar`, `/`, `?` and valid percent-escapes. */
const QUERY_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,=:@/?%]$/;

function describeChar(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  if (code === 0) return 'a NUL byte';
  if (code < 0x20 || code === 0x7f) return `control byte 0x${code.toString(16).padStart(2, '0')}`;
  if (c === '\\') return 'a backslash';
  if (c === ' ') return 'a space';
  if (code > 0x7e) return `non-ASCII character ${JSON.stringify(c)}`;
  return JSON.stringify(c);
}

function fail(raw: string, why: string): never {
  throw new BadParameterError(`invalid request path ${JSON.stringify(raw)}: ${why}`, { path: raw });
}

function hexValue(c: string | undefined): number {
  if (c === undefined) return -1;
  const v = parseInt(c, 16);
  return /^[0-9A-Fa-f]$/.test(c) ? v : -1;
}

/** Decodes one raw segment (percent-escapes once) and checks every decoded byte. */
/** A segment of plain characters only (nothing encoded): the common case, checked at once. */
const PLAIN_SEGMENT = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$/;
/** A query of plain characters only (no percent-encoding). */
const PLAIN_QUERY = /^[A-Za-z0-9\-._~!$&'()*+,=:@/?]*$/;

function decodeSegment(raw: string, segment: string): string {
  if (PLAIN_SEGMENT.test(segment)) {
    if (segment === '.' || segment === '..') fail(raw, `"${segment}" segments (dot segments) are not allowed`);
    return segment;
  }
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    let c = segment[i]!;
    let encoded = false;
    if (c === '%') {
      const hi = hexValue(segment[i + 1]);
      const lo = hexValue(segment[i + 2]);
      if (hi < 0 || lo < 0) fail(raw, `malformed percent-encoding ${JSON.stringify(segment.slice(i, i + 3))}`);
      c = String.fromCharCode(hi * 16 + lo);
      encoded = true;
      i += 2;
    }
    if (!SEGMENT_CHAR.test(c)) {
      if (c === '/') fail(raw, 'an encoded slash (%2F) inside a path segment is not allowed');
      if (c === '%') fail(raw, 'an encoded percent sign (%25) is not allowed (double encoding)');
      fail(raw, `${encoded ? 'encoded ' : ''}${describeChar(c)} is not allowed in a path`);
    }
    out += c;
  }
  if (out === '.' || out === '..') fail(raw, `"${segment}" segments (dot segments) are not allowed`);
  return out;
}

/**
 * Validates a raw query string (without `?`). It is forwarded unchanged, so it only has to be
 * parsed the way Go's `url.ParseQuery` parses it; anything Go would skip or mangle is refused so
 * that both parses agree: `;` (Go drops such pairs), malformed escapes, spaces, control bytes.
 */
export function validateQuery(query: string, raw = query): void {
  if (PLAIN_QUERY.test(query)) return;
  for (let i = 0; i < query.length; i++) {
    const c = query[i]!;
    if (c === '%') {
      if (hexValue(query[i + 1]) < 0 || hexValue(query[i + 2]) < 0) {
        fail(raw, `malformed percent-encoding ${JSON.stringify(query.slice(i, i + 3))} in the query`);
      }
      i += 2;
      continue;
    }
    if (!QUERY_CHAR.test(c)) {
      fail(raw, `${c === ';' ? '";" (Go drops such query parameters)' : describeChar(c)} is not allowed in the query`);
    }
  }
}

/**
 * Normalises a request target (`/api/v1/namespaces/default/pods?watch=1`) so that what Keyway
 * authorizes and what it forwards cannot differ:
 *
 * - the path must start with `/`; `#` fragments are refused;
 * - each segment's percent-escapes are decoded once (`%61` → `a`), as Go does before
 *   kube-apiserver parses the path; the decoded segment must consist of URL-safe characters;
 * - refused, with BadParameterError: encoded slashes (`%2F`, which Kubernetes would decode into a
 *   separator), `.` and `..` segments raw or encoded, `%25` (double encoding), NUL and control
 *   bytes, backslashes, spaces, non-ASCII;
 * - empty segments (`//`) are collapsed; one trailing slash is kept (Kubernetes trims it when
 *   parsing, so it changes nothing for authorization);
 * - the query string is kept apart, validated but not rewritten (see `validateQuery`).
 *
 * Applying it to its own output gives the same output.
 */
export function normalizeRequestPath(rawPath: string): NormalizedRequestPath {
  if (typeof rawPath !== 'string' || rawPath === '') fail(String(rawPath), 'empty');
  if (rawPath.includes('#')) fail(rawPath, 'a "#" fragment is not allowed');
  const q = rawPath.indexOf('?');
  const rawPathPart = q < 0 ? rawPath : rawPath.slice(0, q);
  const query = q < 0 ? '' : rawPath.slice(q + 1);
  if (!rawPathPart.startsWith('/')) fail(rawPath, 'must start with "/"');

  const segments: string[] = [];
  for (const segment of rawPathPart.split('/')) {
    if (segment === '') continue;
    segments.push(decodeSegment(rawPath, segment));
  }
  validateQuery(query, rawPath);
  if (isInternalSegment(segments[0])) {
    fail(rawPath, `paths under "${INTERNAL_PATH_PREFIX}" are Keyway's own (between proxy and agent) and cannot be requested`);
  }

  const trailing = segments.length > 0 && rawPathPart.endsWith('/') ? '/' : '';
  const path = `/${segments.join('/')}${trailing}`;
  return { path, query, url: query === '' ? path : `${path}?${query}` };
}

/**
 * Paths under `/.keyway/` are Keyway's own, spoken between a proxy and an agent over the tunnel
 * (`/.keyway/tunnel/info`); no Kubernetes API path starts with a dot. A user's request may
 * never reach one: normalizeRequestPath refuses them (the proxy's side), and the agent serves
 * them only to the proxy itself, not to a request that carries a user (see isInternalPath).
 */
export const INTERNAL_PATH_PREFIX = '/.keyway/';

function isInternalSegment(segment: string | undefined): boolean {
  return segment !== undefined && segment.toLowerCase() === '.keyway';
}

/**
 * Whether a path (raw or normalised) names one of Keyway's internal paths. Decodes and collapses
 * as normalizeRequestPath does, and treats anything it cannot parse as internal, so that an
 * encoding the check did not foresee fails closed.
 */
export function isInternalPath(rawPath: string): boolean {
  const q = rawPath.indexOf('?');
  const pathPart = q < 0 ? rawPath : rawPath.slice(0, q);
  const first = pathPart.split('/').find((s) => s !== '');
  if (first === undefined) return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(first);
  } catch {
    return true;
  }
  return isInternalSegment(decoded) || decoded.includes('%') || decoded.includes('/');
}

/** Decodes one query component as Go's `url.QueryUnescape` does (`+` is a space). */
function queryUnescape(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '%') {
      const hi = hexValue(s[i + 1]);
      const lo = hexValue(s[i + 2]);
      if (hi < 0 || lo < 0) throw new BadParameterError(`malformed percent-encoding in query component ${JSON.stringify(s)}`, { query: s });
      bytes.push(hi * 16 + lo);
      i += 2;
    } else if (c === '+') {
      bytes.push(0x20);
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Parses a raw query string as Go's `url.ParseQuery` does for the queries `validateQuery`
 * accepts: pairs split on `&`, key and value split on the first `=`, both unescaped with `+` as
 * space; empty pairs skipped; values kept in order per key.
 */
export function parseQuery(query: string): Map<string, string[]> {
  const q = query.startsWith('?') ? query.slice(1) : query;
  validateQuery(q);
  const out = new Map<string, string[]>();
  for (const pair of q.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = queryUnescape(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : queryUnescape(pair.slice(eq + 1));
    const list = out.get(key);
    if (list) list.push(value);
    else out.set(key, [value]);
  }
  return out;
}
