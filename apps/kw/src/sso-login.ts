import https from 'node:https';
import tls from 'node:tls';
import { THE_PROXY, transportFailure } from '@keyway/client';
import { BadParameterError, ConnectionProblemError, KeywayError, errorOfKind, type ErrorKind } from '@keyway/errors';
import { callbackServer, newSecretKey, openBrowser, type SsoLoginResponse } from '@keyway/sso';

import { SSO_CALLBACK_TIMEOUT_MS } from '@keyway/sso';
export { SSO_CALLBACK_TIMEOUT_MS };

export interface WebTrust {
  /** The cluster's CAs (from --ca-pin); the web route may also have a publicly trusted certificate. */
  caPems?: string[];
  insecure: boolean;
}

/** One request to the proxy's web API; answers the JSON body, or throws its error message typed. */
export function webApi(proxy: string, path: string, trust: WebTrust, body?: unknown): Promise<Record<string, unknown>> {
  const [host, port] = splitProxy(proxy);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host,
        port,
        path,
        method: payload ? 'POST' : 'GET',
        headers: { accept: 'application/json', ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
        ...(trust.insecure ? { rejectUnauthorized: false } : { ca: [...tls.rootCertificates, ...(trust.caPems ?? [])] }),
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > 1024 * 1024) return req.destroy(new Error('the answer is over 1 MiB'));
          chunks.push(c);
        });
        res.on('end', () => {
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          } catch {
            return reject(new ConnectionProblemError(`the proxy at ${proxy} answered ${path} with something that is not JSON (HTTP ${res.statusCode})`));
          }
          if ((res.statusCode ?? 500) >= 400) {
            const message = (parsed['error'] as { message?: unknown } | undefined)?.message;
            return reject(errorOfKind(kindOfStatus(res.statusCode ?? 500), typeof message === 'string' ? message : `HTTP ${res.statusCode}`));
          }
          resolve(parsed);
        });
      },
    );
    req.on('timeout', () => req.destroy(new ConnectionProblemError(`the Keyway proxy at ${proxy} did not answer within 15s: it may be overloaded or unreachable; try again shortly`)));
    req.on('error', (err) =>
      reject(
        err instanceof KeywayError
          ? err
          : /certificate|self[- ]signed|unable to verify|altnames/i.test(err.message)
            ? new ConnectionProblemError(`cannot verify the Keyway proxy at ${proxy}: ${err.message}; check the address and the CA pin`)
            : (transportFailure(err, THE_PROXY, proxy) ?? new ConnectionProblemError(`cannot reach the Keyway proxy at ${proxy}: ${err.message}`)),
      ),
    );
    req.end(payload);
  });
}

/** The login kind and connector for `--auth` (or the cluster's default when it is undefined). */
export async function resolveConnector(proxy: string, auth: string | undefined, trust: WebTrust): Promise<{ kind: 'local' } | { kind: 'github' | 'oidc' | 'saml'; name: string; display: string }> {
  if (auth === 'local') return { kind: 'local' };
  const ping = await webApi(proxy, auth === undefined ? '/v1/webapi/ping' : `/v1/webapi/ping/${encodeURIComponent(auth)}`, trust);
  const a = (ping['auth'] ?? {}) as Record<string, unknown>;
  const type = a['type'];
  if (type === 'github' || type === 'oidc' || type === 'saml') {
    const c = (a[type] ?? {}) as { name?: unknown; display?: unknown };
    return { kind: type, name: String(c.name ?? auth ?? type), display: typeof c.display === 'string' ? c.display : '' };
  }
  return { kind: 'local' };
}

/**
 * Teleport's console login: a loopback callback with a secret only this process knows, the
 * proxy's login/console to get the provider URL, the browser (or a printed URL), then the
 * sealed certificates on the callback.
 */
export async function ssoLogin(o: {
  proxy: string;
  trust: WebTrust;
  kind: 'github' | 'oidc' | 'saml';
  connector: string;
  publicKeyPem: string;
  ttlMs: number;
  browser: string;
  say(line: string): void;
  timeoutMs?: number;
}): Promise<SsoLoginResponse> {
  const secretKey = newSecretKey();
  const callback = await callbackServer(secretKey, o.timeoutMs ?? SSO_CALLBACK_TIMEOUT_MS);
  try {
    const started = await webApi(o.proxy, `/v1/webapi/${o.kind}/login/console`, o.trust, {
      connector_id: o.connector,
      redirect_url: `http://127.0.0.1:${callback.port}/callback?secret_key=${secretKey}`,
      tls_pub_key: o.publicKeyPem,
      cert_ttl: o.ttlMs * 1e6,
      kube_cluster: '',
    });
    const url = started['redirect_url'];
    if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw new ConnectionProblemError('the proxy did not say where to log in');
    if (o.browser === 'none') {
      o.say(`Open this URL in a browser on this machine to log in:\n  ${url}\n`);
    } else {
      o.say(`If the browser does not open, visit:\n  ${url}\n`);
      openBrowser(url, o.browser);
    }
    return JSON.parse(await callback.result) as SsoLoginResponse;
  } finally {
    callback.close();
  }
}

function splitProxy(proxy: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(proxy);
  if (!m) throw new BadParameterError(`--proxy ${proxy} is not host[:port]`);
  return [m[1] as string, m[2] ? Number(m[2]) : 443];
}

function kindOfStatus(status: number): ErrorKind {
  if (status === 400) return 'BadParameter';
  if (status === 401 || status === 403) return 'AccessDenied';
  if (status === 404) return 'NotFound';
  if (status === 429) return 'LimitExceeded';
  return 'ConnectionProblem';
}
