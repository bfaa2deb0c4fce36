import { hostname as osHostname } from 'node:os';
import { AuthClient, loadOrJoin, renewHostCredentials, renewalDelayMs, toIdentityFile, type HostCredentials, type IdentityStore } from '@keyway/client';
import { KubeForwarder, type ClusterCredentials, type UpstreamLimits } from '@keyway/forwarder';
import type { Logger } from '@keyway/log';
import type { TunnelInfo } from '@keyway/tunnel';
import { AgentPool } from './pool.js';

export const AGENT_VERSION = '0.1.0';
const HEARTBEAT_INTERVAL_MS = 5_000;
const HEARTBEAT_TTL_MS = 15_000;

export interface KubeAgentConfig {
  /** host:port of the proxy (usually its load balancer): tunnels, and the relay to auth. */
  proxyAddr: string;
  /** Join token, for the first start. */
  token: string;
  /** Where the agent keeps its credentials: a file, or a Secret in its cluster. */
  identityStore: IdentityStore;
  caPins: string[];
  clusters: { creds: ClusterCredentials; labels: Record<string, string> }[];
  logger: Logger;
  /** Bounds on what the agent asks of each API server (kubernetes_service.upstream). */
  upstream?: Partial<UpstreamLimits>;
}

/**
 * The kube agent: config → create (join, or load its credentials) → serve (tunnels,
 * heartbeats, renewal) → close.
 */
export class KubeAgent {
  private creds: HostCredentials;
  private readonly forwarder: KubeForwarder;
  private readonly pool: AgentPool;
  private readonly timers: NodeJS.Timeout[] = [];
  private renewTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly config: KubeAgentConfig,
    creds: HostCredentials,
  ) {
    this.creds = creds;
    this.forwarder = new KubeForwarder(
      config.clusters.map((c) => c.creds),
      { logger: config.logger, ...(config.upstream ? { limits: config.upstream } : {}) },
    );
    this.pool = new AgentPool({
      proxyAddr: config.proxyAddr,
      credentials: () => this.creds,
      backend: this.forwarder,
      info: () => this.info(),
      logger: config.logger,
    });
  }

  static async create(config: KubeAgentConfig): Promise<KubeAgent> {
    const creds = await loadOrJoin({
      authAddr: config.proxyAddr,
      token: config.token,
      role: 'Kube',
      store: config.identityStore,
      caPins: config.caPins,
      logger: config.logger,
    });
    return new KubeAgent(config, creds);
  }

  get hostId(): string {
    return this.creds.identity.username;
  }

  get connectedProxies(): string[] {
    return this.pool.connected;
  }

  serve(): void {
    this.pool.start();
    void this.heartbeat();
    this.timers.push(setInterval(() => void this.heartbeat(), HEARTBEAT_INTERVAL_MS).unref());
    this.scheduleRenewal();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.pool.stop();
    this.forwarder.close();
  }

  private info(): TunnelInfo {
    return {
      hostId: this.hostId,
      hostname: osHostname(),
      version: AGENT_VERSION,
      clusters: this.config.clusters.map((c) => ({ name: c.creds.name, labels: c.labels })),
    };
  }

  /** Registers the served clusters with the auth server and learns the live proxies. */
  private async heartbeat(): Promise<void> {
    const client = new AuthClient({ address: this.config.proxyAddr, identity: toIdentityFile(this.creds), caPems: this.creds.hostCaPems });
    try {
      const res = await client.call('heartbeat', {
        kind: 'kube_server',
        hostId: this.hostId,
        hostname: osHostname(),
        addr: '',
        version: AGENT_VERSION,
        ttlSeconds: HEARTBEAT_TTL_MS / 1000,
        kubeClusters: this.info().clusters,
      });
      this.pool.setProxies(res.proxyIds);
    } catch (err) {
      this.config.logger.warn({ err: (err as Error).message }, 'heartbeat failed');
    } finally {
      client.close();
    }
  }

  private scheduleRenewal(): void {
    if (this.closed) return;
    this.renewTimer = setTimeout(() => {
      renewHostCredentials(this.config.proxyAddr, this.creds, { store: this.config.identityStore })
        .then((creds) => {
          this.creds = creds;
          this.config.logger.info({ expires: creds.identity.expires }, 'host certificate renewed');
          this.scheduleRenewal();
        })
        .catch((err: unknown) => {
          this.config.logger.warn({ err: (err as Error).message }, 'renewing the host certificate failed; retrying in a minute');
          this.renewTimer = setTimeout(() => this.scheduleRenewal(), 60_000).unref();
        });
    }, renewalDelayMs(this.creds));
    this.renewTimer.unref();
  }
}
