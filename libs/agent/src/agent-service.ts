import { hostname as osHostname } from 'node:os';
import { AuthClient, loadOrJoin, renewHostCredentials, renewalDelayMs, toIdentityFile, type HostCredentials, type IdentityStore } from '@keyway/client';
import { KubeForwarder, type ClusterCredentials, type UpstreamLimits } from '@keyway/forwarder';
import { KeywayError } from '@keyway/errors';
import { Backoff, Outage, retryForever, type Logger, KEYWAY_VERSION } from '@keyway/log';
import type { TunnelInfo } from '@keyway/tunnel';
import { AgentPool } from './pool.js';

export const AGENT_VERSION = KEYWAY_VERSION;
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
  private readonly heartbeats: Outage;
  private readonly renewals = new Backoff({ minMs: 1_000, maxMs: 60_000 });

  private constructor(
    private readonly config: KubeAgentConfig,
    creds: HostCredentials,
  ) {
    this.creds = creds;
    this.heartbeats = new Outage(config.logger, `the auth server (heartbeats through ${config.proxyAddr})`);
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

  /**
   * Loads the credentials or joins, waiting for as long as the proxy (or auth behind it) is
   * unreachable; a refusal (bad token, wrong CA pin) ends it at once.
   */
  static async create(config: KubeAgentConfig, opts: { signal?: AbortSignal } = {}): Promise<KubeAgent> {
    const creds = await retryForever(
      () =>
        loadOrJoin({
          authAddr: config.proxyAddr,
          token: config.token,
          role: 'Kube',
          store: config.identityStore,
          caPins: config.caPins,
          logger: config.logger,
          waitFor: `the proxy at ${config.proxyAddr} to join the cluster`,
          ...(opts.signal ? { signal: opts.signal } : {}),
        }),
      { what: `the proxy at ${config.proxyAddr} to join the cluster`, logger: config.logger, retryable: isTransient, ...(opts.signal ? { signal: opts.signal } : {}) },
    );
    return new KubeAgent(config, creds);
  }

  get hostId(): string {
    return this.creds.identity.username;
  }

  get connectedProxies(): string[] {
    return this.pool.connected;
  }

  /**
   * Serves until close(). The heartbeat timer is what keeps the process alive while the
   * agent has no tunnel and is waiting to redial (the pool's timers are unref'd); without it
   * the agent exited, code 0, as soon as its last proxy went away.
   */
  serve(): void {
    this.pool.start();
    void this.heartbeat();
    this.timers.push(setInterval(() => void this.heartbeat(), HEARTBEAT_INTERVAL_MS));
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
      this.heartbeats.recovered();
      this.pool.setProxies(res.proxyIds);
    } catch (err) {
      if (!this.closed) this.heartbeats.failed(err, HEARTBEAT_INTERVAL_MS);
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
          this.renewals.reset();
          this.config.logger.info({ expires: creds.identity.expires }, 'host certificate renewed');
          this.scheduleRenewal();
        })
        .catch((err: unknown) => {
          if (this.closed) return;
          const delay = this.renewals.next();
          this.config.logger.warn(
            { err: (err as Error).message, retryInMs: delay, expires: this.creds.identity.expires },
            `waiting for the auth server to renew the host certificate: ${(err as Error).message}; retrying in ${(delay / 1000).toFixed(1)} s`,
          );
          this.renewTimer = setTimeout(() => this.scheduleRenewal(), delay).unref();
        });
    }, renewalDelayMs(this.creds));
    this.renewTimer.unref();
  }
}

/** Failures that waiting can cure: the peer unreachable or failing, not a refusal. */
function isTransient(err: unknown): boolean {
  if (!(err instanceof KeywayError)) return true;
  return err.kind === 'ConnectionProblem' || err.kind === 'Internal' || err.kind === 'LimitExceeded';
}
