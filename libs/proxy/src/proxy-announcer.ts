import type { Logger } from '@keyway/log';
import type { TunnelSession } from '@keyway/tunnel';

/** How often the proxy looks at its cache for a change in the set of live proxies. */
const CHECK_INTERVAL_MS = 200;

/**
 * Tells every agent tunnel on this proxy which proxies are live, when the set changes and
 * to each new tunnel, so an agent dials a proxy that just came up at once (Teleport's
 * agents learn it from the proxy too) instead of at its next heartbeat answer. The set
 * comes from the proxy's cache of proxy heartbeats, with this proxy always in it; nothing
 * is announced before the cache holds a first snapshot (an agent would otherwise forget
 * proxies it should keep).
 */
export class ProxyAnnouncer {
  private readonly sessions = new Set<TunnelSession>();
  private current: string[] | undefined;
  private key = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly o: {
      selfId: () => string;
      /** Proxy ids in the cache, or undefined while it has no snapshot. */
      proxyIds: () => Iterable<string> | undefined;
      logger: Logger;
      checkIntervalMs?: number;
    },
  ) {}

  start(): void {
    this.check();
    this.timer = setInterval(() => this.check(), this.o.checkIntervalMs ?? CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sessions.clear();
  }

  /** A new tunnel: it gets the current set now, and every change until it closes. */
  add(session: TunnelSession): void {
    this.sessions.add(session);
    void session.closed.then(() => this.sessions.delete(session));
    if (this.current) session.announceProxies(this.current);
  }

  /** The set last announced, for tests and diagnostics. */
  get announced(): readonly string[] | undefined {
    return this.current;
  }

  private check(): void {
    const ids = this.o.proxyIds();
    if (!ids) return;
    const set = new Set(ids);
    set.add(this.o.selfId());
    const sorted = [...set].sort();
    const key = sorted.join('\n');
    if (key === this.key) return;
    this.key = key;
    this.current = sorted;
    this.o.logger.info({ proxyIds: sorted, tunnels: this.sessions.size }, 'live proxies changed: announcing them to the agents');
    for (const s of this.sessions) if (s.isOpen) s.announceProxies(sorted);
  }
}
