import { BadParameterError } from '@keyway/errors';
import { RESOURCE_LIMITS } from '@keyway/resources';

/**
 * Bounds on every string of every request, by field name (array indices dropped): names,
 * tokens, passwords, kinds, times and the like are short. A long one must not reach the store:
 * Postgres refuses an index entry over 8 KiB, and a login with a 2 MB user name, copied into
 * an audit event's indexed user column, wedged the audit writer (it retries the batch forever).
 * A new RPC with a field that is legitimately longer (an assertion, a document) adds it here.
 */
export const MAX_REQUEST_STRING_BYTES = 2048;
const LARGER_FIELDS: Record<string, number> = {
  // Resource documents: bounded again, before parsing, to the resource size.
  'resources.json': 2 * RESOURCE_LIMITS.maxResourceBytes,
  // Audit events from proxies, session recording chunks: bounded by the message size.
  events: Number.POSITIVE_INFINITY,
  // An exec'd command's arguments (`sh -c '<script>'`) as a recording lists them.
  'session.command': 64 * 1024,
  publicKeyPem: 16 * 1024,
  message: 16 * 1024,
  // An SSO callback: a SAML response (bounded again by the SAML driver) and OAuth parameters.
  'params.SAMLResponse': 768 * 1024,
  'params.code': 4096,
  'params.error_description': 4096,
  clientRedirectUrl: 4096,
  testConnectorJson: 2 * RESOURCE_LIMITS.maxResourceBytes,
  // A SCIM request's JSON body (ScimRequest), bounded by the proxy to the same size.
  body: 64 * 1024,
};

/**
 * The first string field that breaks a bound, with why, or undefined. NUL is refused in every
 * string: Postgres stores no NUL in text or JSON. (Protobuf has already turned invalid UTF-8
 * into U+FFFD, so NUL is the one character left that the store cannot take.)
 */
export function requestStringProblem(value: unknown): { field: string; problem: string } | undefined {
  const stack: [unknown, string, string, number][] = [[value, '', '', 0]];
  while (stack.length > 0) {
    const [v, at, key, depth] = stack.pop() as [unknown, string, string, number];
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return { field: at, problem: 'contains a NUL character' };
      const limit = LARGER_FIELDS[key] ?? MAX_REQUEST_STRING_BYTES;
      // Length first: a UTF-16 unit is at most 3 UTF-8 bytes, so most strings need no count.
      if (v.length * 3 > limit && Buffer.byteLength(v, 'utf8') > limit) return { field: at, problem: `is longer than the limit of ${limit} bytes` };
    } else if (typeof v === 'object' && v !== null && depth < 32 && !Buffer.isBuffer(v)) {
      if (Array.isArray(v)) {
        v.forEach((x, i) => stack.push([x, `${at}[${i}]`, key, depth + 1]));
        continue;
      }
      for (const [k, x] of Object.entries(v)) {
        const shown = `${at ? `${at}.` : ''}${k.length > 40 ? `${k.slice(0, 40)}…` : k}`;
        // Map keys (labels, traits) are strings of the request too.
        if (k.includes('\u0000')) return { field: shown, problem: 'has a key with a NUL character' };
        if (Buffer.byteLength(k, 'utf8') > MAX_REQUEST_STRING_BYTES) return { field: shown, problem: `has a key longer than the limit of ${MAX_REQUEST_STRING_BYTES} bytes` };
        stack.push([x, shown, key === '' ? k : `${key}.${k}`, depth + 1]);
      }
    }
  }
  return undefined;
}

/** Refuses a request with a string over its bound or with a NUL character, naming the field. */
export function checkRequestStrings(request: unknown): void {
  const found = requestStringProblem(request);
  if (found) throw new BadParameterError(`${found.field || 'request'} ${found.problem}`, { field: found.field });
}
