import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { PassThrough, Readable, type Duplex } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { NotFoundError } from '@keyway/errors';
import { endToEndHeaders, pump, type KubeBackend, type KubeRequestHead, type KubeResponse, type KubeResponseHead } from '@keyway/tunnel';
import type { ClusterCredentials } from './kubeconfig.js';

/** Bodies up to this size with a Content-Length are read whole before they are passed on (a single object; lists and watches stream). */
const WHOLE_BODY_MAX = 16 * 1024;

interface Upstream {
  creds: ClusterCredentials;
  /** Plain requests: undici's pool costs the agent far less CPU per request than node:https. */
  pool: Pool;
  /** For upgrades (exec, attach, port-forward): node:https, which hands over the raw socket. */
  tls: https.RequestOptions;
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
      const tls = {
        ...(creds.caPem ? { ca: creds.caPem } : {}),
        ...(creds.clientCertPem ? { cert: creds.clientCertPem } : {}),
        ...(creds.clientKeyPem ? { key: creds.clientKeyPem } : {}),
        ...(creds.tlsServerName ? { servername: creds.tlsServerName } : {}),
        rejectUnauthorized: !creds.insecureSkipTlsVerify,
      };
      this.upstreams.set(creds.name, {
        creds,
        pool: new Pool(creds.server.origin, {
          connect: tls,
          connections: 512,
          // Watches and `logs -f` stay open, silent, for as long as the client wants.
          headersTimeout: 0,
          bodyTimeout: 0,
          keepAliveTimeout: 30_000,
        }),
        tls,
        hostname: creds.server.hostname.replace(/^\[|\]$/g, ''),
        port: creds.server.port || 443,
        basePath: creds.server.pathname.replace(/\/$/, ''),
      });
    }
  }

  get clusterNames(): string[] {
    return [...this.upstreams.keys()];
  }

  async request(head: KubeRequestHead, body: Readable | null): Promise<KubeResponse> {
    const upstream = this.upstream(head);
    // undici destroys the body stream it was given once the request is done; the body here
    // is often one side of a tunnel stream whose other side still carries the response.
    let own: PassThrough | null = null;
    if (body) {
      own = new PassThrough();
      pump(body, own);
    }
    const res = await upstream.pool.request({
      method: head.method as Dispatcher.HttpMethod,
      path: upstream.basePath + head.path,
      headers: this.headers(upstream, head),
      body: own,
    });
    const responseHead = { status: res.statusCode, headers: endToEndHeaders(res.headers as Record<string, string | string[]>) };
    // A small body of known length (most API answers) is read whole and handed over as one
    // buffer: cheaper than piping it a chunk at a time.
    const length = Number(res.headers['content-length'] ?? NaN);
    if (length <= WHOLE_BODY_MAX) {
      const whole = Buffer.from(await res.body.arrayBuffer());
      return { head: responseHead, body: Readable.from([]), takeWhole: () => whole };
    }
    return { head: responseHead, body: res.body };
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
    for (const u of this.upstreams.values()) void u.pool.destroy();
  }

  private upstream(head: KubeRequestHead): Upstream {
    const upstream = this.upstreams.get(head.cluster);
    if (!upstream) throw new NotFoundError(`this agent does not serve cluster "${head.cluster}"`, { cluster: head.cluster });
    return upstream;
  }

  /** The client's end-to-end headers without its credentials, plus ours and the computed identity. */
  private headers(upstream: Upstream, head: KubeRequestHead): Record<string, string | string[]> {
    const headers: Record<string, string | string[]> = {
      // Expect: 100-continue was answered by the proxy already (and undici refuses it).
      ...endToEndHeaders(head.headers, (name) => name === 'authorization' || name === 'expect' || name.startsWith('impersonate-')),
      'impersonate-user': head.user,
      ...(head.groups.length > 0 ? { 'impersonate-group': head.groups } : {}),
    };
    const token = upstream.creds.token?.();
    if (token) headers['authorization'] = `Bearer ${token}`;
    return headers;
  }

  private open(head: KubeRequestHead) {
    const upstream = this.upstream(head);
    const { hostname, port, basePath } = upstream;
    const headers = this.headers(upstream, head);
    headers['connection'] = 'Upgrade';
    headers['upgrade'] = head.upgrade ?? '';
    // An upgrade request has no body. Without a length Node would send a POST (SPDY exec,
    // port-forward) chunked, and the closing chunk would land in the upgraded stream.
    headers['content-length'] = '0';
    return https.request({
      protocol: 'https:',
      hostname,
      port,
      method: head.method,
      path: basePath + head.path,
      headers,
      agent: false,
      ...upstream.tls,
    });
  }
}

function responseHead(res: IncomingMessage): KubeResponseHead {
  return { status: res.statusCode ?? 502, headers: endToEndHeaders(res.headers) };
}
