import type http from 'node:http';
import type { AuthClient } from '@keyway/client';
import { BadParameterError, KeywayError, httpStatusOf } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import { PAGE_HEADERS, htmlPage } from '@keyway/sso';

/**
 * The proxy's part of an SSO console login (Teleport's routes): kw starts it at
 * `POST /v1/webapi/{kind}/login/console`; the provider sends the browser back to
 * `GET /v1/webapi/{github,oidc}/callback` or `POST /v1/webapi/saml/acs[/<connector>]`. The
 * proxy only carries: auth checks everything, and the browser leaves with a redirect to kw's
 * own callback (or a page saying why not). Everything here is anonymous and bounded.
 */

const CONSOLE_BODY_MAX = 64 * 1024;
const ACS_BODY_MAX = 768 * 1024;

export interface SsoRoutesOptions {
  authClient(): AuthClient;
  logger: Logger;
}

/** Handles the request if it is an SSO route; false when it is not one. */
export function handleSsoRoute(o: SsoRoutesOptions, req: http.IncomingMessage, res: http.ServerResponse, remoteIp: string): boolean {
  const path = (req.url ?? '').split('?')[0] ?? '';
  const m = /^\/(?:v1\/)?webapi\/(github|oidc|saml)\/(login\/console|callback|acs(?:\/[^/]+)?)$/.exec(path);
  if (!m) return false;
  const kind = m[1] as string;
  const step = m[2] as string;
  const run = (work: () => Promise<void>) =>
    void work().catch((err: unknown) => {
      o.logger.warn({ err: (err as Error).message, kind, step }, 'SSO route failed');
      if (res.headersSent) return res.destroy();
      if (step === 'login/console') return json(res, httpStatusOf(err), { error: { message: messageOf(err) } });
      return page(res, httpStatusOf(err), 'Login failed', messageOf(err));
    });
  if (step === 'login/console' && req.method === 'POST') run(() => consoleLogin(o, kind, req, res, remoteIp));
  else if (step === 'callback' && req.method === 'GET' && kind !== 'saml') run(() => callback(o, kind, Object.fromEntries(new URL(req.url ?? '/', 'http://x').searchParams), res, remoteIp));
  else if (step.startsWith('acs') && req.method === 'POST' && kind === 'saml') run(async () => callback(o, kind, await formBody(req), res, remoteIp));
  else json(res, 405, { error: { message: `${req.method} is not allowed on ${path}` } });
  return true;
}

async function consoleLogin(o: SsoRoutesOptions, kind: string, req: http.IncomingMessage, res: http.ServerResponse, remoteIp: string): Promise<void> {
  const body = await readBody(req, CONSOLE_BODY_MAX);
  let input: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    input = parsed as Record<string, unknown>;
  } catch {
    throw new BadParameterError('the request body must be a JSON object');
  }
  const str = (k: string) => (typeof input[k] === 'string' ? (input[k] as string) : '');
  // Teleport's cert_ttl is a Go duration: nanoseconds.
  const ttlNs = typeof input['cert_ttl'] === 'number' && Number.isFinite(input['cert_ttl']) ? (input['cert_ttl'] as number) : 0;
  const client = o.authClient();
  try {
    const r = await client.call('createSsoAuthRequest', {
      kind,
      connectorName: str('connector_id'),
      publicKeyPem: str('tls_pub_key') || str('public_key'),
      clientRedirectUrl: str('redirect_url'),
      ttlSeconds: Math.max(0, Math.min(Math.floor(ttlNs / 1e9), 2 ** 31 - 1)),
      kubernetesCluster: str('kube_cluster'),
      testConnectorJson: '',
      remoteIp,
    });
    json(res, 200, { redirect_url: r.redirectUrl });
  } finally {
    client.close();
  }
}

async function callback(o: SsoRoutesOptions, kind: string, params: Record<string, string>, res: http.ServerResponse, remoteIp: string): Promise<void> {
  const client = o.authClient();
  try {
    const r = await client.call('validateSsoCallback', { kind, params, remoteIp });
    if (r.redirectUrl) {
      res.writeHead(302, { location: r.redirectUrl, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
      res.end();
      return;
    }
    page(res, r.success ? 200 : 400, r.success ? 'Login successful' : 'Login failed', r.message);
  } finally {
    client.close();
  }
}

function messageOf(err: unknown): string {
  return err instanceof KeywayError ? err.message : 'internal error';
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** The small page a browser ends on when there is no kw to go back to. */
export function page(res: http.ServerResponse, status: number, title: string, message: string): void {
  res.writeHead(status, PAGE_HEADERS);
  res.end(htmlPage(title, message));
}

/** The body, refused past `max` bytes (counted as it arrives, whatever Content-Length says). */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      req.resume();
      return reject(new BadParameterError(`the request body is over ${max} bytes`));
    }
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > max) {
        req.destroy();
        reject(new BadParameterError(`the request body is over ${max} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function formBody(req: http.IncomingMessage): Promise<Record<string, string>> {
  const type = String(req.headers['content-type'] ?? '');
  if (!/^application\/x-www-form-urlencoded\b/i.test(type)) throw new BadParameterError('the SAML response must be posted as a form (application/x-www-form-urlencoded)');
  const body = await readBody(req, ACS_BODY_MAX);
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(body.toString('utf8'))) {
    if (Object.keys(out).length >= 16) break;
    out[k] = v;
  }
  return out;
}

