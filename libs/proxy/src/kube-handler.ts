import type { X509Certificate } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { randomUUID } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { kubeStatus, normalizeRequestPath, parseRequestInfo, type KubeStatus, type RequestInfo } from '@keyway/kube';
import { EVENTS, auditEvent, type AuditEventRecord } from '@keyway/audit';
import type { Logger } from '@keyway/log';
import { verifyCertificate, type Identity } from '@keyway/pki';
import { authorizeKubeRequest, userTraits, visibleKubeClusters } from '@keyway/rbac';
import type { RoleResource } from '@keyway/resources';
import { endToEndHeaders, pump, type Headers, type KubeRequestHead } from '@keyway/tunnel';
import type { ClusterCache } from './cache.js';
import { applyHttp1Timeouts, checkingInterval, closeIdleHttp2 } from './timeouts.js';
import { tapSession, type RecordingSink } from './recording/index.js';
import { isTunnelPending, noRouteStatus, presentClusters, type ClusterRegistry, type ClusterRoute } from './registry.js';
import { EndableWatch, RightsTracker, disconnectEvent, isStreamRequest, revocableSplice, sessionProtocol, type Held } from './rights/index.js';

export interface KubeHandlerOptions {
  clusterName: string;
  /** The user CA certificates client certificates must chain to. */
  userCas: () => X509Certificate[];
  cache: ClusterCache;
  registry: ClusterRegistry;
  logger: Logger;
  /** Largest request head accepted, in bytes. */
  maxHeaderBytes?: number;
  /** Receives the audit events: one kube.request per request, and the session events. */
  audit?: (event: AuditEventRecord) => void;
  /**
   * Keeps a kube.request event durably (the proxy's spool); the response is sent once it
   * resolves, and refused (503) when it resolves false (strict mode cannot keep it).
   */
  record?: (event: AuditEventRecord) => Promise<boolean>;
  /** False while events cannot be recorded and audit.mode is strict: requests are refused. */
  auditAccepting?: () => boolean;
  /** Where exec/attach session recordings go; without it sessions are not recorded. */
  recordings?: RecordingSink;
  /** Deadline for complete request headers, and keep-alive idle (HTTP/1.1 and HTTP/2); defaults 30 s and 90 s. */
  timeouts?: { headersMs: number; idleMs: number };
  /** How long a request for a cluster whose agent tunnel is on its way waits for it (default 5 s). */
  tunnelWaitMs?: number;
  /** How old the view of locks may get before locking_mode strict refuses (default 3 s). */
  maxLockStalenessMs?: number;
}

const PROXY_VERSION_FOR_AUDIT = '0.1.0';
/** How long an idle kubectl connection stays open. */
const KEEP_ALIVE_MS = 90_000;

const SESSION_EVENTS: Record<string, (typeof EVENTS)[keyof typeof EVENTS]> = {
  'session.start': EVENTS.sessionStart,
  'session.end': EVENTS.sessionEnd,
  exec: EVENTS.exec,
  'exec.failure': EVENTS.execFailure,
  port_forward: EVENTS.portForward,
};

type Authn = { identity: Identity } | { status: KubeStatus };

/** What prepare() learned about a request, for its kube.request event. */
interface AuditContext {
  identity?: Identity;
  cluster?: string;
  labels?: Record<string, string>;
  info?: RequestInfo;
  kubernetesUser?: string;
  kubernetesGroups?: string[];
  serverId?: string;
  impersonated?: boolean;
  remoteAddr: string;
  path: string;
  method: string;
}

/** A request from either HTTP/1.1 or HTTP/2, as the handler needs it. */
interface Exchange {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Readable;
  hasBody: boolean;
  remoteAddr: string;
  authn: Authn;
  respond(status: number, headers: Headers): NodeJS.WritableStream;
  /** Head and whole body in one write. */
  respondWhole(status: number, headers: Headers, body: Buffer): void;
  closed(): boolean;
  /** Ends the exchange at once (its right ended). */
  abort(): void;
  /** Calls back once the exchange is over, however it ended. */
  onClose(fn: () => void): void;
}

/**
 * Serves kubectl: every request is authenticated by its client certificate, authorized
 * against the user's roles for the target cluster, and sent through a route to that
 * cluster with the Kubernetes identity the roles grant. Refusals are Kubernetes `Status`
 * objects, so kubectl prints their message.
 */
export class KubeHandler {
  private readonly h1: http.Server;
  private readonly maxHeaderBytes: number;
  private readonly hostname = osHostname();
  private readonly sockets = new Set<TLSSocket>();
  private readonly idleMs: number;
  /** Every open connection and stream per identity, closed when its right ends. */
  readonly rights: RightsTracker;

  constructor(private readonly o: KubeHandlerOptions) {
    this.maxHeaderBytes = o.maxHeaderBytes ?? 64 * 1024;
    this.rights = new RightsTracker({ cache: o.cache, logger: o.logger, ...(o.maxLockStalenessMs !== undefined ? { maxLockStalenessMs: o.maxLockStalenessMs } : {}) });
    // kubectl keeps its connections and reuses them; Node's 5 s idle timeout would close them
    // between commands and race a reused connection (the client sees "socket hang up").
    const t = o.timeouts ?? { headersMs: 30_000, idleMs: KEEP_ALIVE_MS };
    this.idleMs = t.idleMs;
    this.h1 = http.createServer({ maxHeaderSize: this.maxHeaderBytes, requestTimeout: 0, connectionsCheckingInterval: checkingInterval(t.headersMs) });
    // Slowloris: headers must be complete in time; bodies (uploads) and responses (watches) are not bounded here.
    applyHttp1Timeouts(this.h1, { headersMs: t.headersMs, requestMs: 0, idleMs: t.idleMs });
    this.h1.on('request', (req: IncomingMessage, res: ServerResponse) => this.onHttp1(req, res));
    this.h1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.h1.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable) return socket.destroy();
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const status = tooLarge
        ? kubeStatus(431, 'BadRequest', `request headers are larger than ${this.maxHeaderBytes} bytes`)
        : kubeStatus(400, 'BadRequest', `malformed HTTP request: ${err.code ?? err.message}`);
      const body = JSON.stringify(status);
      socket.end(
        `HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
  }

  /** Takes a TLS connection whose handshake is done (ALPN h2 or http/1.1). */
  handleConnection(socket: TLSSocket): void {
    const authn = this.authenticate(socket);
    authns.set(socket, authn);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    if (socket.alpnProtocol === 'h2') {
      const session = http2.performServerHandshake(socket, {
        settings: { initialWindowSize: 8 * 1024 * 1024, maxConcurrentStreams: 1000, maxHeaderListSize: this.maxHeaderBytes },
      });
      closeIdleHttp2(session, this.idleMs);
      this.trackConnection(socket, authn, () => {
        session.close(); // GOAWAY: no new streams
        closeSoon(socket, () => session.destroy());
      });
      this.serveHttp2(session, socket, authn);
    } else {
      this.trackConnection(socket, authn, () => closeSoon(socket, () => socket.destroy()));
      this.h1.emit('connection', socket);
    }
  }

  /** Drops every kubectl connection (idle ones would otherwise hold a shutdown for the keep-alive). */
  close(): void {
    this.rights.stop();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.h1.close(); // its deadline timer (the server itself never listened)
  }

  /** An authenticated connection is closed when its identity's right ends (see RightsTracker). */
  private trackConnection(socket: TLSSocket, authn: Authn, close: () => void): void {
    if (!('identity' in authn)) return;
    const held = this.rights.trackConnection(authn.identity, { close: this.auditedClose(authn.identity, socket.remoteAddress ?? '', 'connection', close) });
    connectionHolds.set(socket, held);
    socket.once('close', () => held.release());
  }

  /** A close that is audited as client.disconnect first. */
  private auditedClose(identity: Identity, remoteAddr: string, what: string, close: (reason: string) => void): (reason: string) => void {
    return (reason) => {
      void this.o.audit?.(disconnectEvent({ clusterName: this.o.clusterName, identity, remoteAddr, serverHostname: this.hostname, reason, what }));
      close(reason);
    };
  }

  private authenticate(socket: TLSSocket): Authn {
    const cert = socket.getPeerX509Certificate();
    if (!cert) return { status: kubeStatus(401, 'Unauthorized', 'keyway: no client certificate: log in with `kw login` and `kw kube login`') };
    try {
      const identity = verifyCertificate(cert, this.o.userCas());
      if (identity.clusterName !== this.o.clusterName) {
        return { status: kubeStatus(401, 'Unauthorized', `keyway: certificate is for cluster "${identity.clusterName}", this is "${this.o.clusterName}"`) };
      }
      return { identity };
    } catch (err) {
      return { status: kubeStatus(401, 'Unauthorized', `keyway: ${(err as Error).message}`) };
    }
  }

  private serveHttp2(session: ServerHttp2Session, socket: TLSSocket, authn: Authn): void {
    session.on('error', () => undefined);
    session.on('stream', (stream: ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      stream.on('error', () => undefined);
      const exchange: Exchange = {
        method: String(headers[':method'] ?? 'GET'),
        url: String(headers[':path'] ?? '/'),
        headers,
        rawHeaders: rawHeaders ?? [],
        body: stream,
        hasBody: !stream.readableEnded && !(stream.endAfterHeaders ?? false),
        remoteAddr: socket.remoteAddress ?? '',
        authn,
        respond: (status, h) => {
          if (!stream.destroyed && !stream.headersSent) stream.respond({ ...h, ':status': status });
          return stream;
        },
        respondWhole: (status, h, body) => {
          if (!stream.destroyed && !stream.headersSent) stream.respond({ ...h, ':status': status });
          stream.end(body);
        },
        closed: () => stream.destroyed,
        abort: () => stream.close(http2.constants.NGHTTP2_CANCEL),
        onClose: (fn) => (stream.destroyed ? fn() : stream.once('close', fn)),
      };
      void this.serve(exchange);
    });
  }

  private onHttp1(req: IncomingMessage, res: ServerResponse): void {
    const authn = authns.get(req.socket as TLSSocket) ?? { status: kubeStatus(401, 'Unauthorized', 'keyway: unknown connection') };
    const exchange: Exchange = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: req,
      hasBody: req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined,
      remoteAddr: req.socket.remoteAddress ?? '',
      authn,
      respond: (status, h) => {
        if (!res.headersSent) {
          // The head, a small body and its end leave in one write (one TLS record, one
          // syscall): uncorked, the end of the body is a write of its own.
          const socket = res.socket;
          if (socket) {
            socket.cork();
            setImmediate(() => socket.uncork());
          }
          res.writeHead(status, h);
        }
        return res;
      },
      respondWhole: (status, h, body) => {
        // Node's response puts the head and the first chunk in one write.
        if (!res.headersSent) res.writeHead(status, h);
        res.end(body);
      },
      closed: () => res.destroyed,
      abort: () => res.destroy(),
      onClose: (fn) => (res.destroyed ? fn() : res.once('close', fn)),
    };
    void this.serve(exchange);
  }

  /** Authorizes one request; returns where it goes or the Status to answer with. */
  /**
   * prepare(), except that a request for a cluster whose tunnel is on its way (this proxy just
   * started, or the agent is redialling) waits for the tunnel, up to tunnelWaitMs, instead of
   * failing at once: agents reach a proxy within about a second of hearing of it.
   */
  private async prepareAwaitingTunnel(
    x: Pick<Exchange, 'method' | 'url' | 'headers' | 'rawHeaders' | 'authn'>,
    audit: AuditContext,
    gone: () => boolean,
  ): Promise<ReturnType<KubeHandler['prepare']>> {
    let prepared = this.prepare(x, audit);
    const deadline = Date.now() + (this.o.tunnelWaitMs ?? 5_000);
    while ('status' in prepared && isTunnelPending(prepared.status) && Date.now() < deadline && !gone()) {
      await new Promise((r) => setTimeout(r, 100));
      prepared = this.prepare(x, audit);
    }
    return prepared;
  }

  private prepare(
    x: Pick<Exchange, 'method' | 'url' | 'headers' | 'rawHeaders' | 'authn'>,
    audit: AuditContext,
  ): { route: ClusterRoute; head: KubeRequestHead; info: RequestInfo; identity: Identity } | { status: KubeStatus } {
    // Refusals are recorded with what the path says too (namespace, kind), so searches find them.
    const parsedPath = parsePath(x.method, x.url);
    if ('info' in parsedPath) audit.info = parsedPath.info;
    if ('status' in x.authn) return { status: x.authn.status };
    const identity = x.authn.identity;
    audit.identity = identity;
    if (identity.kubernetesCluster) audit.cluster = identity.kubernetesCluster;
    if (this.o.auditAccepting && !this.o.auditAccepting()) {
      return { status: kubeStatus(503, 'ServiceUnavailable', 'keyway: requests cannot be audited right now (audit.mode strict); try again shortly') };
    }
    const { cache, registry } = this.o;
    // Before its first snapshot from auth the proxy knows no user, role or lock: it would
    // answer "no longer exists" to everyone. It says it is starting, and kubectl retries.
    if (!Number.isFinite(cache.viewAgeMs())) {
      return { status: kubeStatus(503, 'ServiceUnavailable', 'keyway: this proxy is still loading users, roles and locks from the auth service; try again shortly', { retryAfterSeconds: 1 }) };
    }
    // Expiry, locks, user deletion and (strict) a stale view, on every request of a connection.
    const refused = this.rights.refusal(identity);
    if (refused) return { status: refused };
    const roles = identity.roles.map((r) => cache.roles.get(r)).filter((r): r is RoleResource => r !== undefined);
    const traits = userTraits(identity.traits);
    // Only the target cluster is checked on the way through; the list of every cluster
    // the user may see is worked out when a message needs it.
    const visible = () => visibleKubeClusters(roles, traits, registry.clusters());
    let clusterName = identity.kubernetesCluster;
    if (!clusterName) {
      const all = visible();
      if (all.length !== 1) {
        return {
          status: kubeStatus(
            400,
            'BadRequest',
            `keyway: the certificate names no Kubernetes cluster; run \`kw kube login <cluster>\` (you can access: ${all.join(', ') || 'none'})`,
          ),
        };
      }
      clusterName = all[0] as string;
    }
    audit.cluster = clusterName;
    const known = registry.cluster(clusterName);
    const route = known && visibleKubeClusters(roles, traits, [known]).length === 1 ? registry.pick(clusterName) : undefined;
    if (!route || !known) {
      const canSee = (c: { name: string; labels: Record<string, string> }) => visibleKubeClusters(roles, traits, [c]).length === 1;
      return { status: noRouteStatus(clusterName, { present: (n) => presentClusters(cache.kubeServers.values()).get(n), canSee, visible }) };
    }
    const impersonation = impersonationHeaders(x.rawHeaders);
    if (typeof impersonation === 'string') {
      return { status: kubeStatus(403, 'Forbidden', `keyway: the ${impersonation} header is not allowed; only Impersonate-User and Impersonate-Group are`) };
    }
    if ('error' in parsedPath) return { status: kubeStatus(400, 'BadRequest', `keyway: ${parsedPath.error}`) };
    const { info, url } = parsedPath;
    audit.labels = known.labels;
    const impersonateUser = impersonation.users[0];
    const impersonateGroups = impersonation.groups;
    const decision = authorizeKubeRequest({
      username: identity.username,
      roles,
      traits,
      cluster: { name: clusterName, labels: known.labels },
      request: info,
      ...(impersonateUser !== undefined ? { impersonateUser } : {}),
      ...(impersonateGroups.length > 0 ? { impersonateGroups } : {}),
    });
    if (!decision.allowed) {
      return { status: kubeStatus(decision.status, decision.status === 404 ? 'NotFound' : 'Forbidden', decision.message) };
    }
    audit.kubernetesUser = decision.kubernetesUser;
    audit.kubernetesGroups = decision.kubernetesGroups;
    audit.impersonated = decision.impersonatedByClient;
    audit.serverId = route.serverId;
    const head: KubeRequestHead = {
      method: x.method,
      path: url,
      headers: endToEndHeaders(x.headers as Record<string, string | string[] | undefined>, (n) => n === 'authorization' || n.startsWith('impersonate-')),
      cluster: clusterName,
      user: decision.kubernetesUser,
      groups: decision.kubernetesGroups,
      requester: identity.username,
    };
    return { route, head, info, identity };
  }

  private async serve(x: Exchange): Promise<void> {
    const audit: AuditContext = { remoteAddr: x.remoteAddr, path: x.url, method: x.method };
    const prepared = await this.prepareAwaitingTunnel(x, audit, () => x.closed());
    if ('status' in prepared) {
      await this.emitKubeRequest(audit, prepared.status.code, prepared.status.message);
      return this.fail(x, prepared.status);
    }
    const { route, head, identity } = prepared;
    // A watch whose right ends gets an ERROR event saying why, as the API server would send.
    let watch: EndableWatch | undefined;
    if (isStreamRequest(prepared.info, x.url)) {
      const endStream = (reason: string) => {
        if (watch) watch.endWith(this.rights.refusal(identity) ?? kubeStatus(403, 'Forbidden', `keyway: ${reason}`));
        else x.abort();
      };
      const held = this.rights.openStream(identity, { close: this.auditedClose(identity, x.remoteAddr, `${x.method} ${audit.info?.path ?? ''}`, endStream) });
      if ('status' in held) {
        await this.emitKubeRequest(audit, held.status.code, held.status.message);
        return this.fail(x, held.status);
      }
      x.onClose(() => held.release());
    }
    try {
      const res = await route.backend.request(head, x.hasBody ? x.body : null);
      // The event is durable before the response's first byte goes out.
      const recorded = await this.emitKubeRequest(audit, res.head.status);
      const whole = res.takeWhole?.();
      if (x.closed() || !recorded) {
        if (!whole) res.body.destroy();
        return recorded ? undefined : this.fail(x, UNRECORDED);
      }
      if (whole) return x.respondWhole(res.head.status, res.head.headers, whole);
      const out = x.respond(res.head.status, res.head.headers);
      if (prepared.info.verb === 'watch' && res.head.status === 200 && EndableWatch.suits(res.head.headers['content-type'])) {
        watch = new EndableWatch(res.body);
        pump(res.body, watch);
        pump(watch, out as unknown as Writable);
      } else pump(res.body, out as unknown as Writable);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message, cluster: head.cluster, user: identity.username }, 'forwarding failed');
      const status = kubeStatus(503, 'ServiceUnavailable', `keyway: cluster "${head.cluster}" is not reachable right now: ${(err as Error).message}`);
      await this.emitKubeRequest(audit, 503, status.message);
      this.fail(x, status);
    }
  }

  /**
   * exec/attach are sessions (session.start now, session.end and exec when the stream
   * closes); port-forward is a port_forward event. Fields as Teleport's.
   */
  private auditSession(a: AuditContext, head: KubeRequestHead, socket: Duplex, upstream?: { stream: Duplex; clientHead: Buffer; headers: Headers }): void {
    const sink = this.o.audit;
    const info = a.info;
    if (!sink || !info) return;
    const emit = ({ $event, ...fields }: Record<string, unknown>) => sink(auditEvent(SESSION_EVENTS[String($event)] ?? EVENTS.exec, fields));
    const query = new URLSearchParams(head.path.split('?')[1] ?? '');
    const common = {
      cluster_name: this.o.clusterName,
      user: a.identity?.username ?? '',
      user_roles: a.identity?.roles ?? [],
      login: a.identity?.username ?? '',
      kubernetes_cluster: a.cluster ?? '',
      kubernetes_users: a.kubernetesUser ? [a.kubernetesUser] : [],
      kubernetes_groups: a.kubernetesGroups ?? [],
      kubernetes_pod_namespace: info.namespace,
      kubernetes_pod_name: info.name,
      'addr.remote': a.remoteAddr,
      server_id: a.serverId ?? '',
      server_hostname: this.hostname,
      proto: 'kube',
    };
    if (info.subresource === 'portforward') {
      emit({ ...common, $event: 'port_forward', addr: query.getAll('ports').join(','), success: true });
      return;
    }
    if (info.subresource !== 'exec' && info.subresource !== 'attach') return;
    const sid = randomUUID();
    const started = new Date();
    const session = {
      ...common,
      sid,
      kubernetes_container_name: query.get('container') ?? '',
      command: query.getAll('command'),
      interactive: query.get('stdin') === 'true' || query.get('stdin') === '1',
      tty: query.get('tty') === 'true' || query.get('tty') === '1',
      session_type: info.subresource,
    };
    emit({ ...session, $event: 'session.start', session_start: started.toISOString() });
    const meta = { id: sid, user: common.user, cluster: common.kubernetes_cluster, namespace: info.namespace, pod: info.name, started };
    const tap =
      this.o.recordings && upstream
        ? tapSession(
            { meta: { ...meta, container: session.kubernetes_container_name, command: session.command }, upgrade: head.upgrade ?? '', responseHeaders: upstream.headers, sink: this.o.recordings, logger: this.o.logger },
            socket,
            upstream.stream,
            upstream.clientHead,
          )
        : undefined;
    socket.once('close', () => {
      const ended = new Date();
      emit({ ...session, $event: 'session.end', participants: [common.user], session_start: started.toISOString(), session_stop: ended.toISOString() });
      const { exitCode, error } = tap?.outcome() ?? {};
      void tap?.done();
      const failed = error !== undefined || (exitCode !== undefined && exitCode !== 0);
      // The exit code as the error channel reported it (T3002E when the command failed).
      const outcome = { ...(exitCode !== undefined ? { exitCode: String(exitCode) } : {}), ...(error !== undefined ? { error } : {}) };
      emit({ ...session, $event: failed ? 'exec.failure' : 'exec', ...outcome });
    });
  }

  /**
   * The kube.request event (T3009I), with Teleport's field names, once the status is known.
   * Built as one literal: it is on every request's path, where spreading a field bag into a
   * record cost several times more.
   */
  private emitKubeRequest(a: AuditContext, code: number, deniedReason?: string): Promise<boolean> | boolean {
    if (!this.o.audit && !this.o.record) return true;
    const id = a.identity;
    const info = a.info;
    const event: AuditEventRecord = {
      event: EVENTS.kubeRequest.event,
      code: EVENTS.kubeRequest.code,
      uid: randomUUID(),
      time: new Date().toISOString(),
      cluster_name: this.o.clusterName,
      user: id?.username ?? '',
      user_roles: id?.roles ?? [],
      user_traits: id?.traits ?? {},
      login: id?.username ?? '',
      impersonator: a.impersonated ? (id?.username ?? '') : undefined,
      kubernetes_cluster: a.cluster ?? '',
      kubernetes_users: a.kubernetesUser ? [a.kubernetesUser] : [],
      kubernetes_groups: a.kubernetesGroups ?? [],
      kubernetes_labels: a.labels ?? {},
      proto: 'kube',
      verb: a.method,
      request_path: info?.path ?? a.path.split('?')[0],
      resource_api_group: info ? `${info.apiGroup}${info.apiGroup ? '/' : ''}${info.apiVersion}` : '',
      resource_kind: info?.resource ? `${info.resource}${info.subresource ? `/${info.subresource}` : ''}` : '',
      resource_namespace: info?.namespace ?? '',
      resource_name: info?.name ?? '',
      response_code: code,
      'addr.remote': a.remoteAddr,
      server_id: a.serverId ?? '',
      server_hostname: this.hostname,
      server_version: PROXY_VERSION_FOR_AUDIT,
      denied_reason: deniedReason !== undefined && code >= 400 ? deniedReason : undefined,
    };
    if (this.o.record) return this.o.record(event);
    this.o.audit?.(event);
    return true;
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, clientHead: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    const authn = authns.get(req.socket as TLSSocket) ?? { status: kubeStatus(401, 'Unauthorized', 'keyway: unknown connection') };
    const audit: AuditContext = { remoteAddr: req.socket.remoteAddress ?? '', path: req.url ?? '/', method: req.method ?? 'GET' };
    const prepared = await this.prepareAwaitingTunnel({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, rawHeaders: req.rawHeaders, authn }, audit, () => socket.destroyed);
    if ('status' in prepared) {
      await this.emitKubeRequest(audit, prepared.status.code, prepared.status.message);
      return writeRawResponse(socket, prepared.status.code, prepared.status);
    }
    const { route, head } = prepared;
    head.upgrade = String(req.headers['upgrade'] ?? '');
    // A session is a stream: counted, and ended with a last line when its right ends.
    let endSession: (message: string) => void = () => socket.destroy();
    const held: Held | { status: KubeStatus } = this.rights.openStream(prepared.identity, {
      close: this.auditedClose(prepared.identity, audit.remoteAddr, `${prepared.info.subresource || 'upgrade'} session`, (reason) => endSession(`keyway: session closed: ${reason}`)),
    });
    if ('status' in held) {
      await this.emitKubeRequest(audit, held.status.code, held.status.message);
      return writeRawResponse(socket, held.status.code, held.status);
    }
    socket.once('close', () => held.release());
    try {
      const { head: res, stream } = await route.backend.upgrade(head, clientHead);
      if (!(await this.emitKubeRequest(audit, res.status))) {
        stream.destroy();
        return writeRawResponse(socket, 503, UNRECORDED);
      }
      if (res.status !== 101) {
        socket.write(rawHead(res.status, res.headers, true));
        pump(stream, socket);
        return;
      }
      socket.write(rawHead(101, { ...res.headers, connection: 'Upgrade', upgrade: head.upgrade }, false));
      this.auditSession(audit, head, socket, { stream, clientHead, headers: res.headers });
      // The session's stream holder ends this connection now, with its last words.
      connectionHolds.get(req.socket)?.release();
      const spliced = revocableSplice(socket, stream, sessionProtocol(head.upgrade, head.path, res.headers, prepared.info.subresource), clientHead);
      endSession = (message) => spliced.end(message);
    } catch (err) {
      await this.emitKubeRequest(audit, 503, (err as Error).message);
      writeRawResponse(socket, 503, kubeStatus(503, 'ServiceUnavailable', `keyway: cluster "${head.cluster}" is not reachable right now: ${(err as Error).message}`));
    }
  }

  private fail(x: Exchange, status: KubeStatus): void {
    if (x.closed()) return;
    x.body.resume(); // drain what the client still sends
    const retryAfter = status.details?.retryAfterSeconds;
    const out = x.respond(status.code, { 'content-type': 'application/json', ...(retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {}) });
    out.end(JSON.stringify(status));
  }
}

const UNRECORDED = kubeStatus(503, 'ServiceUnavailable', 'keyway: this request could not be audited (audit.mode strict); try again shortly');

/** The request's target as the path names it; parsed once, before any refusal. */
function parsePath(method: string, rawUrl: string): { info: RequestInfo; url: string } | { error: string } {
  try {
    const normalized = normalizeRequestPath(rawUrl);
    return { info: parseRequestInfo(method, normalized.path, normalized.query), url: normalized.url };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Authentication results per TLS connection, for the HTTP/1.1 server's requests. */
const authns = new WeakMap<object, Authn>();
/**
 * A connection whose right ended is destroyed a moment later, not at once: its streams are
 * ended in the same sweep and a watch's last event (the ERROR saying why) must get out first.
 * Every request meanwhile is refused by the per-request check.
 */
function closeSoon(socket: TLSSocket, destroy: () => void): void {
  if (socket.destroyed) return;
  const timer = setTimeout(destroy, CONNECTION_END_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
const CONNECTION_END_GRACE_MS = 250;

/** The rights tracker's hold on each authenticated connection. */
const connectionHolds = new WeakMap<object, Held>();

/**
 * The client's Impersonate-User and Impersonate-Group values, in one pass over the raw
 * headers; or the name of any other Impersonate-* header, which is refused.
 */
function impersonationHeaders(raw: string[]): { users: string[]; groups: string[] } | string {
  const users: string[] = [];
  const groups: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const rawName = raw[i] as string;
    // Only names that start with i/I and are long enough are lower-cased and looked at.
    if (rawName.length < 12 || (rawName.charCodeAt(0) | 0x20) !== 0x69) continue;
    const name = rawName.toLowerCase();
    if (!name.startsWith('impersonate-')) continue;
    if (name === 'impersonate-user') users.push(raw[i + 1] as string);
    else if (name === 'impersonate-group') groups.push(raw[i + 1] as string);
    else return rawName;
  }
  return { users, groups };
}

function rawHead(status: number, headers: Headers, close: boolean): string {
  const lines = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`];
  for (const [k, v] of Object.entries(headers)) for (const value of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${value}`);
  if (close) lines.push('Connection: close');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function writeRawResponse(socket: Duplex, code: number, status: KubeStatus): void {
  const body = JSON.stringify(status);
  socket.end(rawHead(code, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }, true) + body);
}

