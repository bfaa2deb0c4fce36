import tls from 'node:tls';
import { decodeIdentity } from '@keyway/pki';
import type { Logger } from '@keyway/log';
import { PROXY_SERVER_NAME, TUNNEL_ALPN, serveTunnel, type KubeBackend, type TunnelInfo } from '@keyway/tunnel';
import { splitHostPort, type HostCredentials } from '@keyway/client';

export interface AgentPoolOptions {
  /** host:port of the proxies' load balancer (or of one proxy). */
  proxyAddr: string;
  credentials: () => HostCredentials;
  backend: KubeBackend;
  info: () => TunnelInfo;
  logger: Logger;
  /** Reconnect delays grow from min to max. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

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
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly o: Required<AgentPoolOptions>;

  constructor(options: AgentPoolOptions) {
    this.o = { minBackoffMs: 100, maxBackoffMs: 10_000, ...options };
  }

  /** Proxy ids this agent is connected to. */
  get connected(): string[] {
    return [...this.tunnels.keys()].sort();
  }

  start(): void {
    this.schedule(0);
  }

  /** The live proxies, from the auth server's heartbeat answer. */
  setProxies(ids: string[]): void {
    this.wanted = new Set(ids);
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

  private schedule(delayMs: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const need = this.missing() - this.dialing;
      for (let i = 0; i < need; i++) void this.dial();
    }, delayMs);
    this.timer.unref();
  }

  private backoff(): number {
    const base = Math.min(this.o.maxBackoffMs, this.o.minBackoffMs * 2 ** Math.min(this.failures, 10));
    return base / 2 + Math.random() * (base / 2);
  }

  private async dial(): Promise<void> {
    this.dialing++;
    try {
      const socket = await this.connect();
      const peer = socket.getPeerX509Certificate();
      const proxy = peer ? decodeIdentity(peer) : undefined;
      if (!proxy?.systemRoles.includes('Proxy')) {
        socket.destroy();
        throw new Error('the server at the proxy address is not a Keyway proxy of this cluster');
      }
      const proxyId = proxy.username;
      if (this.tunnels.has(proxyId) || this.stopped) {
        // The load balancer sent us to a proxy we already have: try again soon.
        socket.destroy();
        this.failures = Math.min(this.failures + 1, 3);
        return;
      }
      this.failures = 0;
      const served = serveTunnel(socket, { backend: this.o.backend, info: this.o.info, onError: (err) => this.o.logger.debug({ err: err.message, proxyId }, 'tunnel stream failed') });
      this.tunnels.set(proxyId, { proxyId, close: served.close });
      this.o.logger.info({ proxyId, tunnels: this.tunnels.size }, 'tunnel to proxy established');
      void served.closed.then(() => {
        this.tunnels.delete(proxyId);
        if (!this.stopped) {
          this.o.logger.info({ proxyId, tunnels: this.tunnels.size }, 'tunnel to proxy closed');
          this.schedule(this.o.minBackoffMs);
        }
      });
    } catch (err) {
      this.failures++;
      this.o.logger.warn({ err: (err as Error).message, proxyAddr: this.o.proxyAddr }, 'dialing the proxy failed');
    } finally {
      this.dialing--;
      if (this.missing() > this.dialing) this.schedule(this.backoff());
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
