import tls from 'node:tls';
import { decodeIdentity } from '@keyway/pki';
import { Backoff, Outage, type Logger } from '@keyway/log';
import { PROXY_SERVER_NAME, TUNNEL_ALPN, serveTunnel, type KubeBackend, type TunnelInfo } from '@keyway/tunnel';
import { splitHostPort, type HostCredentials } from '@keyway/client';

export interface AgentPoolOptions {
  /** host:port of the proxies' load balancer (or of one proxy). */
  proxyAddr: string;
  credentials: () => HostCredentials;
  backend: KubeBackend;
  info: () => TunnelInfo;
  logger: Logger;
  /** Delays after a failed dial grow, jittered, from min (default 0.5 s) to max (default 10 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** After a dial that reached a proxy this agent already has: try again soon, the next may reach another. */
const DUPLICATE_BACKOFF = { minMs: 100, maxMs: 1_000 };
/** A tunnel that closes sooner than this counts as a failed dial (a proxy refusing it must not be redialled in a hot loop). */
const STABLE_TUNNEL_MS = 10_000;

interface Tunnel {
  proxyId: string;
  close(): void;
}

/**
 * Keeps one tunnel to every live proxy, as Teleport's agent pool does: every dial goes
 * through the load balancer, so the agent keeps dialling until it has reached each proxy
 * the auth server lists, closing duplicate connections, and redials when a tunnel drops.
 */
export class AgentPool {
  private readonly tunnels = new Map<string, Tunnel>();
  private wanted = new Set<string>();
  private stopped = false;
  private dialing = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = 0;
  private readonly o: Required<AgentPoolOptions>;
  private readonly failures: Backoff;
  private readonly duplicates = new Backoff(DUPLICATE_BACKOFF);
  private readonly outage: Outage;

  constructor(options: AgentPoolOptions) {
    this.o = { minBackoffMs: 500, maxBackoffMs: 10_000, ...options };
    this.failures = new Backoff({ minMs: this.o.minBackoffMs, maxMs: this.o.maxBackoffMs });
    this.outage = new Outage(this.o.logger, `the proxy at ${this.o.proxyAddr}`, { proxyAddr: this.o.proxyAddr });
  }

  /** Proxy ids this agent is connected to. */
  get connected(): string[] {
    return [...this.tunnels.keys()].sort();
  }

  start(): void {
    this.o.logger.info({ proxyAddr: this.o.proxyAddr }, `connecting to the proxy at ${this.o.proxyAddr}`);
    this.schedule(0);
  }

  /**
   * The live proxies: from the auth server's heartbeat answer, or announced by a proxy over
   * its tunnel the moment the set changes. A proxy not seen before is dialled at once.
   */
  setProxies(ids: string[], from = 'auth'): void {
    const added = ids.filter((id) => !this.wanted.has(id) && !this.tunnels.has(id));
    this.wanted = new Set(ids);
    if (added.length > 0) {
      this.o.logger.info({ proxyIds: added, from }, `learned of proxy ${added.join(', ')} (from ${from}): dialling`);
      this.duplicates.reset();
    }
    if (this.missing() > 0) this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const t of this.tunnels.values()) t.close();
    this.tunnels.clear();
  }

  /** How many more tunnels are needed: at least one, and one per listed proxy. */
  private missing(): number {
    let missing = 0;
    for (const id of this.wanted) if (!this.tunnels.has(id)) missing++;
    return this.tunnels.size === 0 ? Math.max(missing, 1) : missing;
  }

  /** Dials what is missing after `delayMs`, or sooner if a dial is already due sooner. */
  private schedule(delayMs: number): void {
    if (this.stopped) return;
    const due = Date.now() + delayMs;
    if (this.timer) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    // Unref'd: the pool alone does not hold the process; a serving agent does (agent-service.ts).
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const need = this.missing() - this.dialing;
      for (let i = 0; i < need; i++) void this.dial();
    }, delayMs);
    this.timer.unref();
  }

  private async dial(): Promise<void> {
    this.dialing++;
    let retryIn = 0;
    try {
      const socket = await this.connect();
      const peer = socket.getPeerX509Certificate();
      const proxy = peer ? decodeIdentity(peer) : undefined;
      if (!proxy?.systemRoles.includes('Proxy')) {
        socket.destroy();
        throw new Error('the server at the proxy address is not a Keyway proxy of this cluster');
      }
      this.outage.recovered(`the proxy at ${this.o.proxyAddr} is reachable again`);
      const proxyId = proxy.username;
      if (this.tunnels.has(proxyId) || this.stopped) {
        // The load balancer sent us to a proxy we already have: try again soon.
        socket.destroy();
        this.failures.reset();
        retryIn = this.duplicates.next();
        this.o.logger.debug({ proxyId, retryInMs: retryIn }, 'reached a proxy this agent already has a tunnel to');
        return;
      }
      this.duplicates.reset();
      const served = serveTunnel(socket, {
        backend: this.o.backend,
        info: this.o.info,
        onError: (err) => this.o.logger.debug({ err: err.message, proxyId }, 'tunnel stream failed'),
        onProxies: (ids) => this.setProxies(ids, `proxy ${proxyId}`),
      });
      this.tunnels.set(proxyId, { proxyId, close: served.close });
      const since = Date.now();
      this.o.logger.info({ proxyId, proxyAddr: this.o.proxyAddr, tunnels: this.tunnels.size }, `tunnel to proxy established: connected to proxy ${proxyId} via ${this.o.proxyAddr}`);
      void served.closed.then((err) => {
        this.tunnels.delete(proxyId);
        if (this.stopped) return;
        const reason = err?.message ?? 'the proxy closed the connection';
        if (Date.now() - since >= STABLE_TUNNEL_MS) this.failures.reset();
        const delay = Date.now() - since >= STABLE_TUNNEL_MS ? 0 : this.failures.next();
        this.o.logger.warn(
          { proxyId, err: reason, tunnels: this.tunnels.size, retryInMs: delay },
          `tunnel to proxy closed: lost proxy ${proxyId}: ${reason}; redialling${delay > 0 ? ` in ${(delay / 1000).toFixed(1)} s` : ''}`,
        );
        this.schedule(delay);
      });
    } catch (err) {
      retryIn = this.failures.next();
      this.outage.failed(err, retryIn);
    } finally {
      this.dialing--;
      if (this.missing() > this.dialing) this.schedule(retryIn);
    }
  }

  private connect(): Promise<tls.TLSSocket> {
    const creds = this.o.credentials();
    const { host: parsedHost, port } = splitHostPort(this.o.proxyAddr);
    const host = parsedHost || '127.0.0.1';
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host,
        port,
        servername: PROXY_SERVER_NAME,
        ALPNProtocols: [TUNNEL_ALPN],
        ca: creds.hostCaPems,
        cert: creds.certPem,
        key: creds.privateKeyPem,
        timeout: 10_000,
      });
      socket.once('secureConnect', () => {
        socket.setTimeout(0);
        socket.setKeepAlive(true, 15_000);
        socket.setNoDelay(true);
        if (socket.alpnProtocol !== TUNNEL_ALPN) {
          socket.destroy();
          reject(new Error(`proxy did not accept the tunnel protocol (ALPN ${String(socket.alpnProtocol)})`));
          return;
        }
        resolve(socket);
      });
      socket.once('timeout', () => socket.destroy(new Error('timed out connecting to the proxy')));
      socket.once('error', reject);
    });
  }
}
