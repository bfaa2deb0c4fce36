import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { PassThrough, Readable, type Duplex } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { NotFoundError } from '@keyway/errors';
import { endToEndHeaders, pumpBody, type KubeBackend, type KubeRequestHead, type KubeResponse, type KubeResponseHead } from '@keyway/tunnel';
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
    // undici destroys the body stream it was given once the request is done, which can be
    // before the body ended (the API server answers once it has Content-Length bytes); the
    // body here is often one side of a tunnel stream whose other side still carries the
    // response, so it is never handed over itself, and its rest is dropped (see pumpBody).
    let own: PassThrough | null = null;
    if (body) {
      own = new PassThrough();
      pumpBody(body, own);
    }
    return new Promise((resolve, reject) => {
      upstream.pool.dispatch(
        { method: head.method as Dispatcher.HttpMethod, path: upstream.basePath + head.path, headers: this.headers(upstream, head), body: own },
        new ResponseHandler(resolve, reject),
      );
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

/**
 * Takes undici's response callbacks straight into a KubeResponse: a small body of known
 * length (most API answers) is gathered and handed over whole; any other body (lists,
 * watches, logs) streams through a Readable that pauses the upstream connection while the
 * reader is behind. Cheaper per request than undici's request(), whose body stream and
 * consumers we would only unwrap again.
 */
class ResponseHandler implements Dispatcher.DispatchHandler {
  private whole: Buffer[] | undefined;
  private body: Readable | undefined;
  private head: KubeResponseHead | undefined;
  private ended = false;

  constructor(
    private readonly resolve: (res: KubeResponse) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  /** Present so undici uses these (current) callbacks rather than its legacy ones. */
  onRequestStart(): void {}

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx: the final answer follows
    this.head = { status: statusCode, headers: endToEndHeaders(headers) };
    const length = Number(headers['content-length'] ?? NaN);
    if (length <= WHOLE_BODY_MAX) {
      this.whole = [];
      return;
    }
    const body = new Readable({
      read: () => controller.resume(),
      destroy: (err, done) => {
        if (!controller.aborted && !this.ended) controller.abort(err ?? new Error('response body abandoned'));
        done(err);
      },
    });
    this.body = body;
    this.resolve({ head: this.head, body });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.whole) this.whole.push(chunk);
    else if (this.body && !this.body.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.ended = true;
    if (this.whole && this.head) {
      const whole = this.whole.length === 1 ? (this.whole[0] as Buffer) : Buffer.concat(this.whole);
      // The body stream is made only for a caller that reads it instead of takeWhole().
      this.resolve({
        head: this.head,
        takeWhole: () => whole,
        get body() {
          return Readable.from([whole]);
        },
      });
    } else {
      this.body?.push(null);
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.body) this.body.destroy(err);
    else this.reject(err);
  }
}

function responseHead(res: IncomingMessage): KubeResponseHead {
  return { status: res.statusCode ?? 502, headers: endToEndHeaders(res.headers) };
}
