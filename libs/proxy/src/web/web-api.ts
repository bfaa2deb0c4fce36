import type http from 'node:http';
import type { AuthClient } from '@keyway/client';
import { KeywayError, httpStatusOf } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import { AuthSettingsCache, authSection } from './ping.js';
import { handleScimRoute } from './scim-routes.js';
import { handleSsoRoute } from './sso-routes.js';

export interface WebApiOptions {
  version: string;
  clusterName(): string;
  publicAddr(): string;
  kubePublicAddr(): string;
  kubeListenAddr(): string;
  authClient(): AuthClient;
  logger: Logger;
}

/**
 * The proxy's anonymous web API: `/v1/webapi/ping[/<connector>]` (what kw needs to know to log
 * in), the SSO console login routes and SCIM (`/scim/v2`, see scim-routes.ts). Errors are
 * Teleport's JSON shape, `{error: {message}}`; SCIM's are SCIM's.
 */
export function webApiHandler(o: WebApiOptions): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const settings = new AuthSettingsCache(() => o.authClient());
  return (req, res) => {
    const ping = /^\/(?:v1\/)?webapi\/ping(?:\/([^/?]+))?$/.exec(req.url ?? '');
    if (req.method === 'GET' && ping) {
      settings
        .get()
        .then((s) => {
          const body = {
            cluster_name: o.clusterName(),
            server_version: o.version,
            proxy: {
              kube: { enabled: true, public_addr: o.kubePublicAddr(), listen_addr: o.kubeListenAddr() },
              public_addr: o.publicAddr(),
              tls_routing_enabled: true,
            },
            auth: authSection(s, ping[1] === undefined ? undefined : safeDecode(ping[1])),
          };
          json(res, 200, body);
        })
        .catch((err: unknown) => json(res, httpStatusOf(err), { error: { message: err instanceof KeywayError ? err.message : 'internal error' } }));
      return;
    }
    if (handleSsoRoute({ authClient: o.authClient, logger: o.logger }, req, res, req.socket.remoteAddress ?? '')) return;
    if (handleScimRoute({ authClient: o.authClient, logger: o.logger }, req, res, req.socket.remoteAddress ?? '')) return;
    json(res, 404, { error: { message: `not found: ${String(req.method).slice(0, 10)} ${String(req.url).slice(0, 200)}` } });
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
