import type { AuthClient } from '@keyway/client';
import { Backoff, Outage, type Logger } from '@keyway/log';
import type { LockResource, RoleResource, UserResource } from '@keyway/resources';

const KINDS = ['role', 'user', 'lock', 'proxy', 'kube_server'] as const;
type Kind = (typeof KINDS)[number];

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
            this.readyResolve();
            return;
          }
          const kind = event.resource?.kind as Kind | undefined;
          if (!kind || !KINDS.includes(kind) || !event.resource) return;
          const value = event.resource.json ? (JSON.parse(event.resource.json) as unknown) : undefined;
          const map: Map<string, unknown> = initialized ? this.mapOf(kind) : (fresh.get(kind) ?? fresh.set(kind, new Map()).get(kind)!);
          if (event.type === 'delete') map.delete(event.resource.name);
          else map.set(event.resource.name, value);
        },
        (err) => {
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
    }
  }
}
