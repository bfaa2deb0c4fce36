import type http from 'node:http';
import type { AuthClient } from '@keyway/client';
import { KeywayError, httpStatusOf } from '@keyway/errors';
import type { Logger } from '@keyway/log';

/**
 * SCIM 2.0 at `/scim/v2/...` (Okta, Entra ID). The proxy only carries: it bounds the body,
 * takes the bearer token from the Authorization header and hands method, path, query, body
 * and token to auth (ScimRequest), whose answer it sends back as application/scim+json. Auth
 * checks the token and decides everything; nothing here is trusted to.
 */

export const SCIM_BODY_MAX = 64 * 1024;
const SCIM_PREFIX = /^\/scim\/v2(?=\/|$)/i;
const MAX_TOKEN_BYTES = 1024;
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const CONTENT_TYPE = 'application/scim+json';

export interface ScimRoutesOptions {
  authClient(): AuthClient;
  logger: Logger;
}

/** Handles the request if it is under /scim/v2; false when it is not. */
export function handleScimRoute(o: ScimRoutesOptions, req: http.IncomingMessage, res: http.ServerResponse, remoteIp: string): boolean {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (!SCIM_PREFIX.test(path)) return false;
  void relay(o, req, res, path.replace(SCIM_PREFIX, '') || '/', q < 0 ? '' : url.slice(q + 1), remoteIp).catch((err: unknown) => {
    o.logger.warn({ err: (err as Error).message }, 'SCIM request failed');
    if (res.headersSent) return void res.destroy();
    const status = err instanceof ScimBodyError ? err.status : httpStatusOf(err);
    // The rest of an oversized body is not read: the answer closes the connection.
    if (status === 413) res.once('finish', () => req.socket.destroy());
    scimError(res, status, err instanceof KeywayError || err instanceof ScimBodyError ? err.message : 'internal error', status === 413);
  });
  return true;
}

async function relay(o: ScimRoutesOptions, req: http.IncomingMessage, res: http.ServerResponse, path: string, query: string, remoteIp: string): Promise<void> {
  const method = String(req.method ?? 'GET').toUpperCase();
  const body = method === 'GET' || method === 'DELETE' || method === 'HEAD' ? (req.resume(), '') : await readBody(req, SCIM_BODY_MAX);
  const client = o.authClient();
  try {
    const r = await client.call('scimRequest', { token: bearerToken(req.headers.authorization), method, path, query, body, remoteIp });
    const status = r.status >= 200 && r.status <= 599 ? r.status : 502;
    const headers: http.OutgoingHttpHeaders = { 'cache-control': 'no-store' };
    if (r.body !== '') headers['content-type'] = CONTENT_TYPE;
    if (status === 401) headers['www-authenticate'] = 'Bearer realm="keyway-scim"';
    if (status === 201) headers['location'] = locationOf(r.body);
    res.writeHead(status, headers);
    res.end(status === 204 ? undefined : r.body);
  } finally {
    client.close();
  }
}

/** The token of `Authorization: Bearer <token>`, or "" (auth answers 401 for that). */
export function bearerToken(header: string | undefined): string {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  const token = m?.[1] ?? '';
  return Buffer.byteLength(token) > MAX_TOKEN_BYTES ? '' : token;
}

function locationOf(body: string): string {
  try {
    const location = (JSON.parse(body) as { meta?: { location?: unknown } }).meta?.location;
    return typeof location === 'string' ? location : '';
  } catch {
    return '';
  }
}

class ScimBodyError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function scimError(res: http.ServerResponse, status: number, detail: string, close = false): void {
  res.writeHead(status, { 'content-type': CONTENT_TYPE, 'cache-control': 'no-store', ...(close ? { connection: 'close' } : {}) });
  res.end(JSON.stringify({ schemas: [ERROR_SCHEMA], status: String(status), detail }));
}

/**
 * The body as UTF-8 text, refused past `max` bytes (counted as it arrives, whatever
 * Content-Length says) and when it is not valid UTF-8, so auth's bound on the decoded text
 * is the same number of bytes.
 */
function readBody(req: http.IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new ScimBodyError(413, `the request body is over ${max} bytes`);
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) return reject(tooLarge());
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > max) {
        req.removeAllListeners('data');
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)));
      } catch {
        reject(new ScimBodyError(400, 'the request body is not UTF-8'));
      }
    });
    req.on('error', reject);
  });
}
