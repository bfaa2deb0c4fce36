import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { NotFoundError } from '@keyway/errors';
import { endToEndHeaders, pump, type KubeBackend, type KubeRequestHead, type KubeResponseHead } from '@keyway/tunnel';
import type { ClusterCredentials } from './kubeconfig.js';

interface Upstream {
  creds: ClusterCredentials;
  agent: https.Agent;
  hostname: string;
  port: string | number;
  basePath: string;
}

/**
 * Sends authorized requests to the API server with the forwarder's own credentials and
 * the Impersonate-User/Group the proxy computed. Whatever credentials or impersonation the
 * client sent are dropped here too, so a request can only act as the computed identity.
 */
export class KubeForwarder implements KubeBackend {
  private readonly upstreams = new Map<string, Upstream>();

  constructor(clusters: ClusterCredentials[]) {
    for (const creds of clusters) {
      this.upstreams.set(creds.name, {
        creds,
        agent: new UpstreamAgent({
          keepAlive: true,
          maxSockets: 512,
          ...(creds.caPem ? { ca: creds.caPem } : {}),
          ...(creds.clientCertPem ? { cert: creds.clientCertPem } : {}),
          ...(creds.clientKeyPem ? { key: creds.clientKeyPem } : {}),
          ...(creds.tlsServerName ? { servername: creds.tlsServerName } : {}),
          rejectUnauthorized: !creds.insecureSkipTlsVerify,
        }),
        hostname: creds.server.hostname.replace(/^\[|\]$/g, ''),
        port: creds.server.port || 443,
        basePath: creds.server.pathname.replace(/\/$/, ''),
      });
    }
  }

  get clusterNames(): string[] {
    return [...this.upstreams.keys()];
  }

  request(head: KubeRequestHead, body: Readable | null): Promise<{ head: KubeResponseHead; body: Readable }> {
    const req = this.open(head);
    return new Promise((resolve, reject) => {
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => resolve({ head: responseHead(res), body: res }));
      if (body) pump(body, req);
      else req.end();
    });
  }

  upgrade(head: KubeRequestHead, clientHead: Buffer): Promise<{ head: KubeResponseHead; stream: Duplex }> {
    const req = this.open(head);
    return new Promise((resolve, reject) => {
      req.on('error', reject);
      req.on('upgrade', (res: IncomingMessage, socket: Duplex, upstreamHead: Buffer) => {
        if (upstreamHead.length > 0) socket.unshift(upstreamHead);
        if (clientHead.length > 0) socket.write(clientHead);
        resolve({ head: { status: 101, headers: endToEndHeaders(res.headers) }, stream: socket });
      });
      req.on('response', (res: IncomingMessage) => resolve({ head: responseHead(res), stream: res as unknown as Duplex }));
      req.end();
    });
  }

  close(): void {
    for (const u of this.upstreams.values()) u.agent.destroy();
  }

  private open(head: KubeRequestHead) {
    const upstream = this.upstreams.get(head.cluster);
    if (!upstream) throw new NotFoundError(`this agent does not serve cluster "${head.cluster}"`, { cluster: head.cluster });
    const { creds, agent, hostname, port, basePath } = upstream;
    const headers: Record<string, string | string[]> = {
      ...endToEndHeaders(head.headers, (name) => name === 'authorization' || name.startsWith('impersonate-')),
      'impersonate-user': head.user,
      ...(head.groups.length > 0 ? { 'impersonate-group': head.groups } : {}),
    };
    const token = creds.token?.();
    if (token) headers['authorization'] = `Bearer ${token}`;
    if (head.upgrade) {
      headers['connection'] = 'Upgrade';
      headers['upgrade'] = head.upgrade;
      // An upgrade request has no body. Without a length Node would send a POST (SPDY exec,
      // port-forward) chunked, and the closing chunk would land in the upgraded stream.
      headers['content-length'] = '0';
    }
    return https.request({
      protocol: 'https:',
      hostname,
      port,
      method: head.method,
      path: basePath + head.path,
      headers,
      agent: head.upgrade ? false : agent,
      ...(head.upgrade
        ? {
            ...(creds.caPem ? { ca: creds.caPem } : {}),
            ...(creds.clientCertPem ? { cert: creds.clientCertPem } : {}),
            ...(creds.clientKeyPem ? { key: creds.clientKeyPem } : {}),
            ...(creds.tlsServerName ? { servername: creds.tlsServerName } : {}),
            rejectUnauthorized: !creds.insecureSkipTlsVerify,
          }
        : {}),
    });
  }
}

/**
 * The connection pool of one upstream. https.Agent names a pool by every connection option,
 * the PEM-encoded CA, certificate and key included, and builds that multi-kilobyte name
 * three times per request; this agent only ever talks to one server with one set of
 * credentials, so one fixed name is exact and costs nothing.
 */
class UpstreamAgent extends https.Agent {
  override getName(): string {
    return 'upstream';
  }
}

function responseHead(res: IncomingMessage): KubeResponseHead {
  return { status: res.statusCode ?? 502, headers: endToEndHeaders(res.headers) };
}
