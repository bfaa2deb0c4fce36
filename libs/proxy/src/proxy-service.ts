import { X509Certificate, constants as cryptoConstants } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import tls from 'node:tls';
import { hostname as osHostname } from 'node:os';
import { AUTH_SERVER_NAME, AuthClient, splitHostPort, renewHostCredentials, renewalDelayMs, toIdentityFile, type HostCredentials, type IdentityStore } from '@keyway/client';
import { KubeForwarder, type ClusterCredentials, type UpstreamLimits } from '@keyway/forwarder';
import { Backoff, Outage, type Logger, KEYWAY_VERSION } from '@keyway/log';
import { verifyCertificate } from '@keyway/pki';
import { GRPC_ALPN, TUNNEL_ALPN, TunnelSession } from '@keyway/tunnel';
import { RemoteAuditLog, RemoteSink, SpooledAuditLog, type AuditLog, type AuditMode } from '@keyway/audit';
import { ClusterCache } from './cache.js';
import { KubeHandler } from './kube-handler.js';
import { ProxyAnnouncer } from './proxy-announcer.js';
import { readiness } from './readiness.js';
import type { SessionChunk } from './recording/index.js';
import { ClusterRegistry } from './registry.js';
import { relayHeaderSigner } from './relay-signer.js';
import { webApiHandler } from './web/web-api.js';
import { WebCertificates, reloadHttpsKeyPairs, type HttpsKeyPair, type HttpsKeyPairFiles } from './web/https-keypairs.js';
import { createRouter, type Route } from './router.js';
import type { RightsTracker } from './rights/index.js';
import { DEFAULT_LISTENER_TIMEOUTS, checkingInterval, dropIfSilent, enforceDeadlines, limitUnauthenticated, type ListenerTimeouts } from './timeouts.js';

export const PROXY_VERSION = KEYWAY_VERSION;
/** Events the kube handler names with `$event`; anything else is kube.request. */
const HEARTBEAT_INTERVAL_MS = 2_000;
const HEARTBEAT_TTL_MS = 6_000;

export interface ProxyServiceConfig {
  clusterName: string;
  /** host:port to listen on (default 0.0.0.0:3080). */
  listenAddr: string;
  publicAddrs: string[];
  /** Optional dedicated Kubernetes listener. */
  kubeListenAddr?: string;
  kubePublicAddrs?: string[];
  /** host:port of the auth server's gRPC API. */
  authAddr: string;
  credentials: HostCredentials;
  /** The name heartbeats give (nodename); by default the OS host name. */
  hostname?: string;
  /** Clusters this proxy serves itself (proxy_service.kubernetes.kubeconfig_file). */
  localClusters?: { creds: ClusterCredentials; labels: Record<string, string> }[];
  /**
   * Records the local clusters as a kube_server presence under this proxy's host id, as an
   * agent's heartbeat does, so `kw kube ls` and `kwctl get kube_clusters` list them. Called
   * with every proxy heartbeat while there are local clusters; by default sent to the auth
   * server like the proxy's own heartbeat.
   */
  announceLocalClusters?: (heartbeat: LocalClustersHeartbeat) => Promise<void>;
  /** proxy_service.https_keypairs, read: the web routes serve these to clients that ask for their names. */
  httpsKeyPairs?: HttpsKeyPair[];
  /** Where they were read from, read again every intervalMs (https_keypairs_reload_interval; 0: never). */
  httpsKeyPairsReload?: { files: HttpsKeyPairFiles[]; intervalMs: number };
  /** Where renewed credentials are saved, if anywhere. */
  identityStore?: IdentityStore;
  /** Where kube.request events go; by default, to the auth server. */
  audit?: AuditLog;
  /** With no `audit`: the spool (in the data dir) that keeps events until auth has stored them. */
  auditSpool?: { dir: string; maxBytes: number; mode: AuditMode };
  logger: Logger;
  /** Listener timeouts (proxy_service.timeouts); defaults for what is left out. */
  timeouts?: Partial<ListenerTimeouts>;
  /** Bounds on the local clusters' API servers (proxy_service.kubernetes.upstream). */
  upstreamLimits?: Partial<UpstreamLimits>;
}

export interface LocalClustersHeartbeat {
  kind: 'kube_server';
  hostId: string;
  hostname: string;
  addr: string;
  version: string;
  ttlMs: number;
  kubeClusters: { name: string; labels: Record<string, string> }[];
}

/** The proxy: config → create → serve → close. Stateless: all it knows comes from the auth server and agents. */
export class ProxyService {
  readonly cache: ClusterCache;
  readonly registry = new ClusterRegistry();
  private readonly kube: KubeHandler;
  private readonly web: http.Server;
  private creds: HostCredentials;
  private readonly tlsServers: Record<Exclude<Route, 'auth'>, tls.Server>;
  private servers: net.Server[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly forwarder: KubeForwarder | undefined;
  private readonly tunnels = new Set<TunnelSession>();
  private address = '';
  private readonly audit: AuditLog;
  private readonly announcer: ProxyAnnouncer;
  /** Ping and SSO login routes of the web API. */
  private readonly webApi: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  /** The web route's https_keypairs, by SNI; replaced when the files are reloaded. */
  private readonly webCertificates: WebCertificates;
  private stopKeyPairReload: () => void = () => undefined;
  private readonly heartbeats: Outage;
  private readonly renewals = new Backoff({ minMs: 1_000, maxMs: 60_000 });
  private readonly timeouts: ListenerTimeouts;

  constructor(private readonly config: ProxyServiceConfig) {
    this.creds = config.credentials;
    this.webCertificates = new WebCertificates(config.httpsKeyPairs ?? []);
    this.webApi = webApiHandler({
      version: PROXY_VERSION,
      clusterName: () => config.clusterName,
      publicAddr: () => config.publicAddrs[0] ?? this.address,
      kubePublicAddr: () => config.kubePublicAddrs?.[0] ?? config.publicAddrs[0] ?? this.address,
      kubeListenAddr: () => config.kubeListenAddr ?? config.listenAddr,
      authClient: () => this.authClient(),
      logger: config.logger,
    });
    const t = { ...DEFAULT_LISTENER_TIMEOUTS, ...config.timeouts };
    this.timeouts = t;
    this.tlsServers = {
      tunnel: this.tlsServer('tunnel', (socket) => void this.onTunnel(socket)),
      kube: this.tlsServer('kube', (socket) => {
        limitUnauthenticated(socket, t.unauthenticatedMs);
        dropIfSilent(socket, t.headersMs);
        this.kube.handleConnection(socket);
      }),
      web: this.tlsServer('web', (socket) => {
        dropIfSilent(socket, t.unauthenticatedMs);
        this.web.emit('connection', socket);
      }),
    };
    this.cache = new ClusterCache(() => this.authClient(), config.logger);
    const toAuth = async (events: string[]) => {
      const client = this.authClient();
      try {
        await client.call('emitAuditEvents', { events });
      } finally {
        client.close();
      }
    };
    const spool = config.auditSpool;
    this.announcer = new ProxyAnnouncer({ selfId: () => this.hostId, proxyIds: () => (this.cache.isHealthy ? this.cache.proxies.keys() : undefined), logger: config.logger });
    this.heartbeats = new Outage(config.logger, `the auth server at ${config.authAddr} (proxy heartbeats)`);
    this.audit =
      config.audit ??
      (spool
        ? new SpooledAuditLog({ spoolDir: spool.dir, maxBytes: spool.maxBytes, mode: spool.mode, sink: new RemoteSink(toAuth), logger: config.logger })
        : new RemoteAuditLog(toAuth, config.logger));
    this.kube = new KubeHandler({
      audit: (event) => this.audit.emit(event),
      record: (event) => this.audit.record(event),
      recordings: (chunk) => this.uploadSessionChunk(chunk),
      auditAccepting: () => this.audit.accepting ?? true,
      clusterName: config.clusterName,
      userCas: () => parsedCas(this.creds.userCaPems),
      cache: this.cache,
      registry: this.registry,
      logger: config.logger,
      timeouts: { headersMs: t.headersMs, idleMs: t.idleMs },
      maxLockStalenessMs: t.lockStalenessMs,
    });
    // Everything on the web route is anonymous: short deadlines for headers, body and idle.
    this.web = http.createServer(
      {
        headersTimeout: t.unauthenticatedMs,
        requestTimeout: Math.max(t.webRequestMs, t.unauthenticatedMs),
        keepAliveTimeout: t.webIdleMs,
        connectionsCheckingInterval: checkingInterval(t.unauthenticatedMs, t.webRequestMs),
      },
      (req, res) => this.onWeb(req, res),
    );
    enforceDeadlines(this.web);
    if (config.localClusters && config.localClusters.length > 0) {
      const forwarder = new KubeForwarder(
        config.localClusters.map((c) => c.creds),
        { logger: config.logger, ...(config.upstreamLimits ? { limits: config.upstreamLimits } : {}) },
      );
      this.forwarder = forwarder;
      for (const c of config.localClusters) {
        this.registry.add({ cluster: c.creds.name, labels: c.labels, serverId: 'local', backend: forwarder, isOpen: () => true });
      }
    }
  }

  /** Open connections and streams per identity (issue 10: rights end on open connections). */
  get rights(): RightsTracker {
    return this.kube.rights;
  }

  get hostId(): string {
    return this.creds.identity.username;
  }

  /** Starts listening; resolves with the bound address(es) once the first cache snapshot is in. */
  async serve(): Promise<{ address: string; kubeAddress?: string }> {
    this.cache.start();
    // Users, roles and locks first: before them every kubectl request would be refused. The
    // timer is what keeps the process alive meanwhile (the watch's own timers are unref'd).
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([this.cache.ready, new Promise((r) => (waited = setTimeout(r, 10_000)))]);
    clearTimeout(waited);
    this.announcer.start();
    const router = createRouter({
      classify: (hello) => classify(hello.serverName, hello.alpn),
      authAddr: () => {
        const { host, port } = splitHostPort(this.config.authAddr);
        return { host: host || '127.0.0.1', port };
      },
      servers: this.tlsServers,
      helloTimeoutMs: this.timeouts.clientHelloMs,
      relayFirstByteMs: this.timeouts.relayFirstByteMs,
      relayIdleMs: this.timeouts.relayIdleMs,
      relayHeader: relayHeaderSigner(() => this.creds),
      onError: (err, route) => this.config.logger.debug({ err: err.message, route }, 'connection failed'),
    });
    this.address = await listen(router, this.config.listenAddr);
    this.servers.push(router);
    let kubeAddress: string | undefined;
    if (this.config.kubeListenAddr) {
      kubeAddress = await listen(this.tlsServers.kube, this.config.kubeListenAddr);
      this.servers.push(this.tlsServers.kube);
    }
    await this.heartbeat();
    this.timers.push(setInterval(() => void this.heartbeat(), HEARTBEAT_INTERVAL_MS).unref());
    this.scheduleRenewal();
    if (this.config.httpsKeyPairsReload) {
      this.stopKeyPairReload = reloadHttpsKeyPairs({
        ...this.config.httpsKeyPairsReload,
        initial: this.config.httpsKeyPairs ?? [],
        apply: (pairs) => this.webCertificates.set(pairs),
        logger: this.config.logger,
      });
    }
    // Where it is bound (0.0.0.0 means every interface) and the address this host reaches it at.
    const bound = (s: net.Server) => {
      const a = s.address() as net.AddressInfo;
      return `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
    };
    this.config.logger.info(
      { listen: bound(router), address: this.address, ...(kubeAddress ? { kubeListen: bound(this.tlsServers.kube), kubeAddress } : {}), hostId: this.hostId },
      'proxy listening',
    );
    return { address: this.address, ...(kubeAddress ? { kubeAddress } : {}) };
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.stopKeyPairReload();
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.cache.stop();
    this.announcer.stop();
    // A log of its own is closed (what is unsent stays in its spool); a shared one is flushed.
    await (this.config.audit ? this.audit.flush() : this.audit.close());
    for (const t of this.tunnels) t.destroy();
    this.kube.close();
    this.web.close(); // its deadline timer (the server itself never listened)
    this.forwarder?.close();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            (s as net.Server & { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      ),
    );
  }

  private async uploadSessionChunk(chunk: SessionChunk): Promise<void> {
    const { meta } = chunk;
    const client = this.authClient();
    try {
      await client.call('uploadSessionChunk', {
        session: { ...meta, started: meta.started.toISOString(), ended: '' },
        seq: chunk.seq,
        events: chunk.events,
        ended: chunk.ended?.toISOString() ?? '',
      });
    } finally {
      client.close();
    }
  }

  private authClient(): AuthClient {
    return new AuthClient({ address: this.config.authAddr, identity: toIdentityFile(this.creds), caPems: this.creds.hostCaPems });
  }

  /** TLS settings per route; the secure context is built once per certificate, not per connection. */
  private tlsOptions(route: Exclude<Route, 'auth'>): tls.TlsOptions {
    const base = { cert: this.creds.certPem, key: this.creds.privateKeyPem, minVersion: 'TLSv1.2' as const };
    switch (route) {
      case 'tunnel':
        // No session tickets: an agent holds its tunnel for hours and never resumes, and each
        // connection's tickets cost the proxy about 11 KiB of native memory (measured, 1,000 tunnels).
        return { ...base, ca: this.creds.hostCaPems, ALPNProtocols: [TUNNEL_ALPN], requestCert: true, rejectUnauthorized: true, secureOptions: cryptoConstants.SSL_OP_NO_TICKET };
      case 'kube':
        // Checked per request, so a bad certificate gets a Status kubectl can print instead of a TLS alert.
        return { ...base, ca: this.creds.userCaPems, ALPNProtocols: ['h2', 'http/1.1'], requestCert: true, rejectUnauthorized: false };
      case 'web':
        return { ...base, ALPNProtocols: ['http/1.1'], SNICallback: this.webCertificates.sniCallback };
    }
  }

  private tlsServer(route: Exclude<Route, 'auth'>, onSecure: (socket: tls.TLSSocket) => void): tls.Server {
    // Nagle's algorithm would hold back the small frames of request/response traffic.
    const server = tls.createServer({ ...this.tlsOptions(route), noDelay: true, handshakeTimeout: this.timeouts.handshakeMs }, onSecure);
    // With a listener here Node no longer destroys the socket itself (handshake timeout included).
    server.on('tlsClientError', (err, socket) => {
      this.config.logger.debug({ err: err.message, route }, 'TLS handshake failed');
      socket.destroy();
    });
    return server;
  }

  /** A renewed certificate applies to new connections at once. */
  private refreshContexts(): void {
    for (const route of ['tunnel', 'kube', 'web'] as const) this.tlsServers[route].setSecureContext(this.tlsOptions(route));
  }

  private async onTunnel(socket: tls.TLSSocket): Promise<void> {
    const log = this.config.logger;
    try {
      const peer = socket.getPeerX509Certificate();
      const agent = peer ? verifyCertificate(peer, parsedCas(this.creds.hostCaPems)) : undefined;
      if (!agent?.systemRoles.includes('Kube')) throw new Error('tunnel client is not a kube agent');
      const session = new TunnelSession(socket);
      this.tunnels.add(session);
      let info;
      try {
        info = await session.info(this.timeouts.tunnelHelloMs);
      } catch (err) {
        this.tunnels.delete(session);
        throw err;
      }
      const removers = info.clusters.map((c) =>
        this.registry.add({ cluster: c.name, labels: c.labels, serverId: agent.username, backend: session, isOpen: () => session.isOpen }),
      );
      this.announcer.add(session);
      log.info({ agent: agent.username, clusters: info.clusters.map((c) => c.name) }, 'agent tunnel up');
      void session.closed.then(() => {
        for (const remove of removers) remove();
        this.tunnels.delete(session);
        log.info({ agent: agent.username }, 'agent tunnel down');
      });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'agent tunnel refused');
      socket.destroy();
    }
  }

  private onWeb(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method === 'GET' && (req.url === '/healthz' || req.url === '/readyz')) return this.onHealth(req.url, res);
    this.webApi(req, res);
  }

  /** `/healthz`: the process runs. `/readyz`: 200 once ready for traffic, else 503 naming what it waits for. */
  private onHealth(url: string, res: http.ServerResponse): void {
    const r =
      url === '/healthz'
        ? { ready: true, waiting_for: [] }
        : readiness({
            identityExpires: this.creds.identity.expires,
            cacheHealthy: this.cache.isHealthy,
            kubeServers: this.cache.kubeServers.values(),
            isProxy: (id) => id === this.hostId || this.cache.proxies.has(id),
            hasRoute: (c) => this.registry.cluster(c) !== undefined,
          });
    res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ status: r.ready ? 'ok' : 'not ready', host_id: this.hostId, waiting_for: r.waiting_for }));
  }

  private async heartbeat(): Promise<void> {
    const client = this.authClient();
    try {
      await client.call('heartbeat', {
        kind: 'proxy',
        hostId: this.hostId,
        hostname: this.config.hostname ?? osHostname(),
        addr: this.config.publicAddrs[0] ?? this.address,
        version: PROXY_VERSION,
        ttlSeconds: HEARTBEAT_TTL_MS / 1000,
        kubeClusters: [],
      });
      const local = this.config.localClusters ?? [];
      if (local.length > 0) {
        const announced: LocalClustersHeartbeat = {
          kind: 'kube_server',
          hostId: this.hostId,
          hostname: this.config.hostname ?? osHostname(),
          addr: this.config.publicAddrs[0] ?? this.address,
          version: PROXY_VERSION,
          ttlMs: HEARTBEAT_TTL_MS,
          kubeClusters: local.map((c) => ({ name: c.creds.name, labels: c.labels })),
        };
        // In keyway start the auth service takes it in-process; a separate proxy sends it.
        if (this.config.announceLocalClusters) await this.config.announceLocalClusters(announced);
        else {
          const { ttlMs, ...rest } = announced;
          await client.call('heartbeat', { ...rest, ttlSeconds: ttlMs / 1000 });
        }
      }
      this.heartbeats.recovered();
    } catch (err) {
      this.heartbeats.failed(err, HEARTBEAT_INTERVAL_MS);
    } finally {
      client.close();
    }
  }

  private scheduleRenewal(): void {
    this.renewTimer = setTimeout(() => {
      renewHostCredentials(this.config.authAddr, this.creds, { ...(this.config.identityStore ? { store: this.config.identityStore } : {}) })
        .then((creds) => {
          this.creds = creds;
          this.renewals.reset();
          this.refreshContexts();
          this.scheduleRenewal();
        })
        .catch((err: unknown) => {
          const delay = this.renewals.next();
          this.config.logger.warn(
            { err: (err as Error).message, retryInMs: delay, expires: this.creds.identity.expires },
            `waiting for the auth server to renew the proxy certificate: ${(err as Error).message}; retrying in ${(delay / 1000).toFixed(1)} s`,
          );
          this.renewTimer = setTimeout(() => this.scheduleRenewal(), delay).unref();
        });
    }, renewalDelayMs(this.creds));
    this.renewTimer.unref();
  }
}

/** SNI/ALPN routing, as in DESIGN.md. */
export function classify(serverName: string | undefined, alpn: string[]): Route {
  if (alpn.includes(TUNNEL_ALPN)) return 'tunnel';
  if (alpn.includes(GRPC_ALPN) || serverName === AUTH_SERVER_NAME) return 'auth';
  if (serverName && (serverName.startsWith('kube-teleport-proxy-alpn.') || serverName.startsWith('kube.'))) return 'kube';
  return 'web';
}


/** CA certificates parsed once per set (a renewal brings a new set), not once per connection. */
const parsed = new WeakMap<readonly string[], X509Certificate[]>();
function parsedCas(pems: readonly string[]): X509Certificate[] {
  let cas = parsed.get(pems);
  if (!cas) {
    cas = pems.map((p) => new X509Certificate(p));
    parsed.set(pems, cas);
  }
  return cas;
}

function listen(server: net.Server, addr: string): Promise<string> {
  const { host, port } = splitHostPort(addr);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host === '' ? '0.0.0.0' : host, () => {
      const a = server.address() as net.AddressInfo;
      const shown = a.address === '0.0.0.0' || a.address === '::' ? '127.0.0.1' : a.address;
      resolve(`${shown.includes(':') ? `[${shown}]` : shown}:${a.port}`);
    });
  });
}
