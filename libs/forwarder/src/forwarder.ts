import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { PassThrough, Readable, type Duplex } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { NotFoundError } from '@keyway/errors';
import { kubeStatus } from '@keyway/kube';
import type { Logger } from '@keyway/log';
import { endToEndHeaders, pumpBody, type KubeBackend, type KubeRequestHead, type KubeResponse, type KubeResponseHead } from '@keyway/tunnel';
import { FairShare, type Release } from './fair-share.js';
import type { ClusterCredentials } from './kubeconfig.js';
import { DEFAULT_UPSTREAM_LIMITS, isLongRunning, type UpstreamLimits } from './limits.js';
import { failureResponse, truncatedResponseError, upstreamFailure, upstreamTimeoutError } from './upstream-errors.js';

/** Bodies up to this size with a Content-Length are read whole before they are passed on (a single object; lists and watches stream). */
const WHOLE_BODY_MAX = 16 * 1024;

interface Upstream {
  creds: ClusterCredentials;
  /** Short requests: undici's pool costs the agent far less CPU per request than node:https. */
  pool: Pool;
  /**
   * Long-running requests (watch, logs, proxy) on connections of their own, so open streams
   * never take the connections short requests need (HTTP/1.1 holds a connection per stream).
   */
  streamPool: Pool;
  /** Fair shares of each pool, per user, so that no user can exhaust a cluster for the others. */
  requests: FairShare;
  streams: FairShare;
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
export interface KubeForwarderOptions {
  /** Upstream failures are logged here with their details (addresses, TLS reasons), which the client never sees. */
  logger?: Logger;
  limits?: Partial<UpstreamLimits>;
}

export class KubeForwarder implements KubeBackend {
  private readonly upstreams = new Map<string, Upstream>();
  private readonly limits: UpstreamLimits;
  private readonly logger: Logger | undefined;

  constructor(clusters: ClusterCredentials[], options: KubeForwarderOptions = {}) {
    this.limits = { ...DEFAULT_UPSTREAM_LIMITS, ...options.limits };
    this.logger = options.logger;
    const l = this.limits;
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
          connect: { ...tls, timeout: l.connectTimeoutMs },
          connections: l.maxRequests,
          headersTimeout: l.responseTimeoutMs,
          bodyTimeout: l.responseTimeoutMs,
          keepAliveTimeout: 30_000,
        }),
        streamPool: new Pool(creds.server.origin, {
          connect: { ...tls, timeout: l.connectTimeoutMs },
          connections: l.maxStreams,
          headersTimeout: l.responseTimeoutMs,
          // Watches and `logs -f` stay open, silent, for as long as the client wants.
          bodyTimeout: 0,
          keepAliveTimeout: 30_000,
        }),
        requests: new FairShare({ capacity: l.maxRequests, perUser: l.maxRequestsPerUser, queuePerUser: l.queuedRequestsPerUser, maxWaitMs: l.queueTimeoutMs }),
        // A stream is held for minutes or hours: waiting for one to end is no use, refuse at once.
        streams: new FairShare({ capacity: l.maxStreams, perUser: l.maxStreamsPerUser, queuePerUser: 0, maxWaitMs: 0 }),
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
    const upstream = this.upstreams.get(head.cluster);
    if (!upstream) {
      body?.resume();
      return notServed(head.cluster);
    }
    const long = isLongRunning(head);
    let release: Release;
    try {
      release = await (long ? upstream.streams : upstream.requests).acquire(fairShareKey(head));
    } catch (err) {
      body?.resume(); // the refusal answers now: drain what the client still sends
      return this.failed(err, head, long ? 'stream' : 'request');
    }
    // undici destroys the body stream it was given once the request is done, which can be
    // before the body ended (the API server answers once it has Content-Length bytes); the
    // body here is often one side of a tunnel stream whose other side still carries the
    // response, so it is never handed over itself, and its rest is dropped (see pumpBody).
    let own: PassThrough | null = null;
    if (body) {
      own = new PassThrough();
      pumpBody(body, own);
    }
    const pool = long ? upstream.streamPool : upstream.pool;
    return new Promise((resolve) => {
      const onError = (err: Error, started: boolean): Error => {
        release();
        if (!started) {
          resolve(this.failed(err, head, long ? 'stream' : 'request'));
          return err;
        }
        this.logger?.warn({ err: err.message, code: (err as { code?: unknown }).code, cluster: head.cluster, path: head.path.split('?')[0] }, 'the API server broke off a response');
        return truncatedResponseError(head.cluster);
      };
      try {
        pool.dispatch(
          { method: head.method as Dispatcher.HttpMethod, path: upstream.basePath + head.path, headers: this.headers(upstream, head), body: own },
          new ResponseHandler(resolve, onError, release),
        );
      } catch (err) {
        // e.g. the service account token cannot be read: a Status too, its path only in the log.
        own?.destroy();
        onError(err as Error, false);
      }
    });
  }

  upgrade(head: KubeRequestHead, clientHead: Buffer): Promise<{ head: KubeResponseHead; stream: Duplex }> {
    const whole = (res: KubeResponse) => ({ head: res.head, stream: Readable.from([res.takeWhole?.() ?? Buffer.alloc(0)]) as unknown as Duplex });
    const upstream = this.upstreams.get(head.cluster);
    if (!upstream) return Promise.resolve(whole(notServed(head.cluster)));
    const failed = (err: unknown) => whole(this.failed(err, head, 'upgrade'));
    return upstream.streams.acquire(fairShareKey(head)).then(
      (release) =>
        new Promise((resolve) => {
          let req: ReturnType<KubeForwarder['open']>;
          try {
            req = this.open(head);
          } catch (err) {
            release();
            resolve(failed(err));
            return;
          }
          // Until the answer: a stalled API server ends in a 504, not an open stream forever.
          const timer = setTimeout(() => req.destroy(upstreamTimeoutError()), this.limits.responseTimeoutMs);
          timer.unref();
          const done = () => {
            clearTimeout(timer);
            release();
          };
          req.on('error', (err) => {
            done();
            resolve(failed(err));
          });
          req.on('upgrade', (res: IncomingMessage, socket: Duplex, upstreamHead: Buffer) => {
            clearTimeout(timer);
            socket.once('close', release);
            if (upstreamHead.length > 0) socket.unshift(upstreamHead);
            if (clientHead.length > 0) socket.write(clientHead);
            resolve({ head: { status: 101, headers: endToEndHeaders(res.headers) }, stream: socket });
          });
          req.on('response', (res: IncomingMessage) => {
            clearTimeout(timer);
            res.once('close', release);
            resolve({ head: responseHead(res), stream: res as unknown as Duplex });
          });
          req.end();
        }),
      (err: unknown) => failed(err),
    );
  }

  /** The Status answer for a request that failed before its response began; the details go to the log only. */
  private failed(err: unknown, head: KubeRequestHead, kind: 'request' | 'stream' | 'upgrade'): KubeResponse {
    const failure = upstreamFailure(err, head.cluster);
    const e = err as { message?: unknown; code?: unknown; cause?: { message?: unknown; code?: unknown } };
    this.logger?.warn(
      { err: String(e.message ?? err), code: e.code ?? e.cause?.code, cause: e.cause?.message, cluster: head.cluster, user: head.user, kind, status: failure.status.code },
      failure.status.code === 429 ? 'upstream request refused: over its share' : 'upstream request failed',
    );
    return failureResponse(failure);
  }

  close(): void {
    for (const u of this.upstreams.values()) {
      void u.pool.destroy();
      void u.streamPool.destroy();
    }
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

  /**
   * @param fail called once the request failed; `started` says whether the response was
   *   already handed over (then it returns the error to end its body with).
   * @param done called when the exchange is over, however it ended.
   */
  constructor(
    private readonly resolve: (res: KubeResponse) => void,
    private readonly fail: (err: Error, started: boolean) => Error,
    private readonly done: () => void,
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
    this.done();
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
    // The reader gave up on the body (the client went away): nothing failed upstream.
    if (this.body?.destroyed) return this.done();
    const out = this.fail(err, this.body !== undefined);
    this.body?.destroy(out);
  }
}

function notServed(cluster: string): KubeResponse {
  return failureResponse({ status: kubeStatus(404, 'NotFound', `keyway: this agent does not serve cluster "${cluster}"`) });
}

function responseHead(res: IncomingMessage): KubeResponseHead {
  return { status: res.statusCode ?? 502, headers: endToEndHeaders(res.headers) };
}

/** Upstream slots are shared per Keyway user; the Kubernetes user for heads that name none. */
function fairShareKey(head: KubeRequestHead): string {
  return head.requester || head.user;
}
