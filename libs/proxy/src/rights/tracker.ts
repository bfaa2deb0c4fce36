/**
 * A right ends when it ends, on open connections too. The tracker knows every open
 * connection and stream of every identity at this proxy; it closes them when the
 * certificate's NotAfter passes (a timer each: Teleport's disconnect_expired_cert, always on
 * here), when a lock targeting the user or one of the certificate's roles arrives, when the
 * user is deleted, and (locking_mode strict) when the proxy's view of locks goes stale. The
 * same checks answer each request (`refusal`), so a keep-alive connection or an HTTP/2
 * session opened earlier gets no further than a new one.
 */
import { DEFAULT_LISTENER_TIMEOUTS } from '../timeouts.js';
import { kubeStatus, type KubeStatus } from '@keyway/kube';
import type { Logger } from '@keyway/log';
import type { Identity } from '@keyway/pki';
import type { CacheChange, ClusterCache } from '../cache.js';

export interface RightsTrackerOptions {
  cache: ClusterCache;
  logger: Logger;
  /** How old the view of locks may get before strict identities are refused (Teleport: max staleness). */
  maxLockStalenessMs?: number;
  now?: () => number;
}

/** Something open on behalf of an identity that can be ended. */
export interface Closable {
  /** Ends it; `reason` completes "session closed: …" (e.g. `user "jimbo" is locked: incident 42`). */
  close(reason: string): void;
}

interface Holder extends Closable {
  identity: Identity;
  timer?: NodeJS.Timeout;
  counted: boolean;
  closed: boolean;
}

export interface Held {
  /** The connection or stream is gone: stop tracking it (idempotent). */
  release(): void;
}

export const DEFAULT_MAX_LOCK_STALENESS_MS = DEFAULT_LISTENER_TIMEOUTS.lockStalenessMs;
/** setTimeout's ceiling; a later expiry re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const STALENESS_CHECK_MS = 250;

export class RightsTracker {
  private readonly holders = new Map<string, Set<Holder>>();
  private readonly maxStaleness: number;
  private readonly now: () => number;
  private readonly unsubscribe: () => void;
  private readonly stalenessTimer: NodeJS.Timeout;
  private wasStale = false;

  constructor(private readonly o: RightsTrackerOptions) {
    this.maxStaleness = o.maxLockStalenessMs ?? DEFAULT_MAX_LOCK_STALENESS_MS;
    this.now = o.now ?? Date.now;
    this.unsubscribe = o.cache.subscribe((change) => this.onChange(change));
    // Strict identities lose their streams when the view of locks gets too old.
    this.stalenessTimer = setInterval(() => {
      const stale = this.isStale();
      if (stale && !this.wasStale) this.sweep();
      this.wasStale = stale;
    }, STALENESS_CHECK_MS).unref();
  }

  stop(): void {
    this.unsubscribe();
    clearInterval(this.stalenessTimer);
    for (const set of this.holders.values()) for (const h of set) if (h.timer) clearTimeout(h.timer);
    this.holders.clear();
  }

  /**
   * Why this identity may not be served right now, as the Status to answer with; undefined
   * when it may. Checked on every request.
   */
  refusal(identity: Identity): KubeStatus | undefined {
    const reason = this.revoked(identity);
    if (!reason) return undefined;
    return kubeStatus(reason.code, reason.code === 401 ? 'Unauthorized' : reason.code === 503 ? 'ServiceUnavailable' : 'Forbidden', `keyway: ${reason.text}`);
  }

  /** Tracks a connection (closed on revocation; not counted against max_kubernetes_connections). */
  trackConnection(identity: Identity, closable: Closable): Held {
    return this.add({ identity, close: (r) => closable.close(r), counted: false, closed: false });
  }

  /**
   * Opens a stream (watch, followed logs, exec, attach, port-forward): counted against the
   * smallest max_kubernetes_connections of the identity's roles. Counted per proxy, unlike
   * Teleport, which counts cluster-wide with a semaphore in its backend: a user behind N
   * proxies may hold up to N times the limit.
   */
  openStream(identity: Identity, closable: Closable): Held | { status: KubeStatus } {
    const max = this.maxStreams(identity);
    if (max > 0) {
      const open = this.openStreams(identity.username);
      if (open >= max) {
        return {
          status: kubeStatus(
            429,
            'TooManyRequests',
            `keyway: user "${identity.username}" already has ${open} open Kubernetes streams (watch, logs -f, exec, attach, port-forward) on this proxy, the most its roles allow (max_kubernetes_connections: ${max}); close one and try again`,
          ),
        };
      }
    }
    return this.add({ identity, close: (r) => closable.close(r), counted: true, closed: false });
  }

  /** Open streams of a user at this proxy. */
  openStreams(username: string): number {
    let n = 0;
    for (const h of this.holders.get(username) ?? []) if (h.counted) n++;
    return n;
  }

  /** Open connections and streams of a user at this proxy. */
  held(username: string): number {
    return this.holders.get(username)?.size ?? 0;
  }

  /** The smallest non-zero max_kubernetes_connections among the identity's roles; 0 = no limit. */
  private maxStreams(identity: Identity): number {
    let min = 0;
    for (const name of identity.roles) {
      const m = this.o.cache.roles.get(name)?.spec.options?.max_kubernetes_connections ?? 0;
      if (m > 0 && (min === 0 || m < min)) min = m;
    }
    return min;
  }

  /** Teleport's rule: strict when the cluster says so or any of the user's roles does. */
  private strict(identity: Identity): boolean {
    if (this.o.cache.lockingMode === 'strict') return true;
    return identity.roles.some((r) => this.o.cache.roles.get(r)?.spec.options?.lock === 'strict');
  }

  private isStale(): boolean {
    return this.o.cache.viewAgeMs(this.now()) > this.maxStaleness;
  }

  private revoked(identity: Identity): { code: number; text: string } | undefined {
    const now = this.now();
    if (identity.expires.getTime() < now) {
      return { code: 401, text: `certificate of user "${identity.username}" expired at ${identity.expires.toISOString()}; log in again` };
    }
    const { cache } = this.o;
    if (this.strict(identity) && this.isStale()) {
      const age = cache.viewAgeMs(now);
      const seen = Number.isFinite(age) ? `is ${Math.round(age / 1000)}s old` : 'is not loaded yet';
      return {
        code: 503,
        text: `this proxy's view of locks ${seen} (its watch of the auth service is down) and locking_mode is strict for user "${identity.username}"; try again shortly`,
      };
    }
    // A stale view still answers best-effort identities from what it last knew.
    if (!cache.users.has(identity.username)) return { code: 403, text: `user "${identity.username}" no longer exists` };
    const lock = cache.lockFor(identity.username, identity.roles, now);
    if (lock) return { code: 403, text: `user "${identity.username}" is locked${lock.spec.message ? `: ${lock.spec.message}` : ''}` };
    return undefined;
  }

  private add(h: Holder): Held {
    const name = h.identity.username;
    let set = this.holders.get(name);
    if (!set) this.holders.set(name, (set = new Set()));
    set.add(h);
    this.arm(h);
    return { release: () => this.remove(h) };
  }

  private arm(h: Holder): void {
    const delay = h.identity.expires.getTime() - this.now() + 1;
    h.timer = setTimeout(
      () => {
        if (h.closed) return;
        if (h.identity.expires.getTime() < this.now()) this.end(h);
        else this.arm(h);
      },
      Math.min(Math.max(delay, 0), MAX_TIMER_MS),
    );
    h.timer.unref();
  }

  private remove(h: Holder): void {
    if (h.timer) clearTimeout(h.timer);
    h.closed = true;
    const set = this.holders.get(h.identity.username);
    if (!set) return;
    set.delete(h);
    if (set.size === 0) this.holders.delete(h.identity.username);
  }

  /** Ends one holder if its identity has lost its right. */
  private end(h: Holder): void {
    const reason = this.revoked(h.identity);
    if (!reason || h.closed) return;
    this.remove(h);
    this.o.logger.info({ user: h.identity.username, reason: reason.text, stream: h.counted }, 'closing a connection whose right ended');
    try {
      h.close(reason.text);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'closing a revoked connection failed');
    }
  }

  private onChange(change: CacheChange): void {
    if (change.type === 'init') return this.sweep();
    if (change.kind === 'lock' && change.type === 'put') return this.sweep();
    if (change.kind === 'user' && change.type === 'delete') return this.sweep(change.name);
    // A role turned strict matters only while the view is stale.
    if (change.kind === 'role' && this.isStale()) return this.sweep();
  }

  /** Checks every holder (of one user); streams first, so a session says why before its connection goes. */
  private sweep(username?: string): void {
    const sets = username ? [this.holders.get(username) ?? new Set<Holder>()] : [...this.holders.values()];
    for (const set of sets) {
      const all = [...set];
      for (const h of all) if (h.counted) this.end(h);
      for (const h of all) if (!h.counted) this.end(h);
    }
  }
}
