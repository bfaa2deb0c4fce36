import { presentClusters } from './registry.js';

/** Clusters named in the answer; a large fleet gets a count for the rest. */
const MAX_NAMED = 20;

export interface Readiness {
  ready: boolean;
  /** What the proxy still waits for, one phrase each; empty when ready. */
  waiting_for: string[];
}

/**
 * When a proxy is ready for traffic (`GET /readyz`): it holds an identity that has not
 * expired, its copy of the auth server's state is in and its watch is up, and it has a
 * tunnel (or serves itself) every cluster that agents heartbeat. A balancer that checks it
 * sends a restarted proxy no kubectl request it could only answer with "try again".
 */
export function readiness(o: {
  identityExpires: Date | undefined;
  cacheHealthy: boolean;
  kubeServers: Iterable<{ host_id?: unknown; kube_clusters?: unknown }>;
  hasRoute: (cluster: string) => boolean;
  /**
   * Whether a kube_server presence is a proxy's own (the clusters it serves from its
   * kubeconfig): no agent will ever open a tunnel for those, so no proxy waits for one.
   */
  isProxy?: (hostId: string) => boolean;
  now?: number;
}): Readiness {
  const waiting: string[] = [];
  if (!o.identityExpires) waiting.push('a host identity (joining the cluster)');
  else if (o.identityExpires.getTime() <= (o.now ?? Date.now())) waiting.push('a valid host certificate (it expired; renewal has not succeeded)');
  if (!o.cacheHealthy) waiting.push("the auth server's watch (the cache of users, roles, locks and hosts is not current)");
  else {
    const isProxy = o.isProxy ?? (() => false);
    const agents = [...o.kubeServers].filter((s) => !(typeof s.host_id === 'string' && isProxy(s.host_id)));
    const missing = [...presentClusters(agents).keys()].filter((c) => !o.hasRoute(c)).sort();
    if (missing.length > 0) {
      const named = missing.length > MAX_NAMED ? `${missing.slice(0, MAX_NAMED).join(', ')} and ${missing.length - MAX_NAMED} more` : missing.join(', ');
      waiting.push(`agent tunnels for cluster${missing.length > 1 ? 's' : ''} ${named}`);
    }
  }
  return { ready: waiting.length === 0, waiting_for: waiting };
}
