import { EventEmitter } from 'node:events';

export type WatchKind = 'role' | 'user' | 'lock' | 'kube_cluster' | 'token' | 'github' | 'oidc' | 'saml' | 'proxy' | 'kube_server' | 'cluster_auth_preference';

export interface Change {
  type: 'put' | 'delete';
  kind: WatchKind;
  name: string;
  /** The resource or heartbeat document; absent for deletes. */
  resource?: Record<string, unknown>;
  revision?: string;
}

/**
 * Publishes committed changes to watchers (proxies' caches). Changes are published after
 * their transaction commits, so a watcher never sees a write that was rolled back.
 *
 * One auth server publishes its own writes; several auth servers on one Postgres would
 * each need the others' (LISTEN/NOTIFY), which is not built yet.
 */
export class ChangeFeed {
  private readonly emitter = new EventEmitter();

  constructor() {
    // Every connected proxy holds one subscription.
    this.emitter.setMaxListeners(0);
  }

  publish(change: Change): void {
    this.emitter.emit('change', change);
  }

  subscribe(listener: (change: Change) => void): () => void {
    this.emitter.on('change', listener);
    return () => this.emitter.off('change', listener);
  }
}
