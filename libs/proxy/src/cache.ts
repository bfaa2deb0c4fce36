import type { AuthClient } from '@keyway/client';
import { Backoff, Outage, type Logger } from '@keyway/log';
import type { LockResource, RoleResource, UserResource } from '@keyway/resources';

const KINDS = ['role', 'user', 'lock', 'proxy', 'kube_server', 'cluster_auth_preference'] as const;
type Kind = (typeof KINDS)[number];

/** What changed in the cache: one resource, or the whole state (a snapshot came in). */
export type CacheChange = { type: 'init' } | { type: 'put' | 'delete'; kind: Kind; name: string };

/** auth_service.authentication as auth serves it (Teleport's cluster_auth_preference). */
export interface AuthPreference {
  spec: { locking_mode?: 'best_effort' | 'strict' };
}

export interface KubeServerHeartbeat {
  host_id: string;
  hostname: string;
  kube_clusters?: { name: string; labels: Record<string, string> }[];
}

/**
 * The proxy's copy of what it needs per request (roles, users, locks, live proxies and
 * agents), kept current by the auth server's WatchEvents stream, so a lock or a deleted
 * user takes effect on every proxy as soon as the change is published. When the stream
 * breaks the cache keeps its last state and reconnects.
 */
export class ClusterCache {
  readonly roles = new Map<string, RoleResource>();
  readonly users = new Map<string, UserResource>();
  readonly locks = new Map<string, LockResource>();
  readonly proxies = new Map<string, Record<string, unknown>>();
  readonly kubeServers = new Map<string, KubeServerHeartbeat>();
  readonly authPreference = new Map<string, AuthPreference>();
  private readonly listeners = new Set<(change: CacheChange) => void>();
  /** When the view stopped being current (the watch broke); undefined while it is. */
  private staleSince: number | undefined = Date.now();
  private initialized = false;
  private stopped = false;
  private cancel: (() => void) | undefined;
  private readyResolve!: () => void;
  /** Resolves once the first snapshot is in. */
  readonly ready: Promise<void> = new Promise((r) => (this.readyResolve = r));
  private healthy = false;
  private readonly backoff = new Backoff();
  private readonly outage: Outage;

  constructor(
    private readonly client: () => AuthClient,
    private readonly logger: Logger,
  ) {
    this.outage = new Outage(logger, "the auth server's watch (users, roles, locks, hosts)");
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  /**
   * How old the view is, in milliseconds: 0 while the watch is up, the time since it broke
   * while it is down, Infinity before the first snapshot.
   */
  viewAgeMs(now = Date.now()): number {
    if (!this.initialized) return Infinity;
    return this.staleSince === undefined ? 0 : now - this.staleSince;
  }

  /** The cluster-wide locking mode auth is configured with (best_effort until it says). */
  get lockingMode(): 'best_effort' | 'strict' {
    return [...this.authPreference.values()][0]?.spec.locking_mode ?? 'best_effort';
  }

  /** Called after each change is applied, and after each snapshot. */
  subscribe(listener: (change: CacheChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(change: CacheChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'cache listener failed');
      }
    }
  }

  start(): void {
    this.connect(0);
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }

  /** The lock that applies to this user or one of its roles, if any. */
  lockFor(user: string, roles: string[], now = Date.now()): LockResource | undefined {
    for (const lock of this.locks.values()) {
      const expires = lock.spec.expires ?? lock.metadata.expires;
      if (expires && new Date(expires).getTime() <= now) continue;
      const t = lock.spec.target;
      if ((t.user && t.user === user) || (t.role && roles.includes(t.role))) return lock;
    }
    return undefined;
  }

  private connect(delayMs: number): void {
    if (this.stopped) return;
    setTimeout(() => {
      if (this.stopped) return;
      const client = this.client();
      const fresh = new Map<Kind, Map<string, unknown>>();
      let initialized = false;
      const handle = client.watch(
        [...KINDS],
        (event) => {
          if (event.type === 'init') {
            // Swap in the snapshot whole: whatever vanished while disconnected is gone now.
            for (const kind of KINDS) {
              const target = this.mapOf(kind);
              target.clear();
              for (const [k, v] of fresh.get(kind) ?? []) target.set(k, v as never);
            }
            initialized = true;
            this.healthy = true;
            this.backoff.reset();
            this.outage.recovered();
            this.initialized = true;
            this.staleSince = undefined;
            this.readyResolve();
            this.notify({ type: 'init' });
            return;
          }
          const kind = event.resource?.kind as Kind | undefined;
          if (!kind || !KINDS.includes(kind) || !event.resource) return;
          const value = event.resource.json ? (JSON.parse(event.resource.json) as unknown) : undefined;
          const map: Map<string, unknown> = initialized ? this.mapOf(kind) : (fresh.get(kind) ?? fresh.set(kind, new Map()).get(kind)!);
          if (event.type === 'delete') map.delete(event.resource.name);
          else map.set(event.resource.name, value);
          if (initialized) this.notify({ type: event.type === 'delete' ? 'delete' : 'put', kind, name: event.resource.name });
        },
        (err) => {
          if (this.healthy) this.staleSince = Date.now();
          this.healthy = false;
          client.close();
          if (this.stopped) return;
          const delay = this.backoff.next();
          this.outage.failed(err ?? new Error('the watch ended'), delay);
          this.connect(delay);
        },
      );
      this.cancel = () => {
        handle.cancel();
        client.close();
      };
    }, delayMs).unref();
  }

  private mapOf(kind: Kind): Map<string, never> {
    switch (kind) {
      case 'role':
        return this.roles as Map<string, never>;
      case 'user':
        return this.users as Map<string, never>;
      case 'lock':
        return this.locks as Map<string, never>;
      case 'proxy':
        return this.proxies as Map<string, never>;
      case 'kube_server':
        return this.kubeServers as Map<string, never>;
      case 'cluster_auth_preference':
        return this.authPreference as Map<string, never>;
    }
  }
}
