import { kubeStatus, type KubeStatus } from '@keyway/kube';
import type { KubeBackend } from '@keyway/tunnel';

export interface ClusterRoute {
  cluster: string;
  labels: Record<string, string>;
  /** Agent host id, or `local` when this proxy serves the cluster itself. */
  serverId: string;
  backend: KubeBackend;
  isOpen(): boolean;
}

/**
 * Which backends serve which cluster on this proxy: agent tunnels (an agent pool gives
 * several per cluster) and clusters the proxy serves itself. Requests are spread over the
 * open routes; a route leaves as soon as its tunnel closes.
 */
export class ClusterRegistry {
  private readonly routes = new Map<string, ClusterRoute[]>();
  private next = 0;

  add(route: ClusterRoute): () => void {
    const list = this.routes.get(route.cluster) ?? [];
    list.push(route);
    this.routes.set(route.cluster, list);
    return () => {
      const current = this.routes.get(route.cluster)?.filter((r) => r !== route) ?? [];
      if (current.length > 0) this.routes.set(route.cluster, current);
      else this.routes.delete(route.cluster);
    };
  }

  /** An open route to the cluster, round-robin. */
  pick(cluster: string): ClusterRoute | undefined {
    const open = (this.routes.get(cluster) ?? []).filter((r) => r.isOpen());
    if (open.length === 0) return undefined;
    this.next = (this.next + 1) % 1_000_000;
    return open[this.next % open.length];
  }

  /** Every open route of the cluster except `not`, for a retry. */
  others(cluster: string, not: ClusterRoute): ClusterRoute[] {
    return (this.routes.get(cluster) ?? []).filter((r) => r !== not && r.isOpen());
  }

  /** The cluster with its labels, while a route to it is open. */
  cluster(name: string): { name: string; labels: Record<string, string> } | undefined {
    const open = this.routes.get(name)?.find((r) => r.isOpen());
    return open ? { name, labels: open.labels } : undefined;
  }

  clusters(): { name: string; labels: Record<string, string> }[] {
    const out: { name: string; labels: Record<string, string> }[] = [];
    for (const [name, list] of this.routes) {
      const open = list.filter((r) => r.isOpen());
      if (open[0]) out.push({ name, labels: open[0].labels });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }
}

export interface PresentCluster {
  name: string;
  labels: Record<string, string>;
}

/**
 * The clusters agents say they serve (kube_server heartbeats in the proxy's cache), whether
 * or not this proxy has a tunnel to one yet. Heartbeats come from hosts: checked for shape.
 */
export function presentClusters(servers: Iterable<{ kube_clusters?: unknown }>): Map<string, PresentCluster> {
  const out = new Map<string, PresentCluster>();
  for (const server of servers) {
    const list = server?.kube_clusters;
    if (!Array.isArray(list)) continue;
    for (const c of list as { name?: unknown; labels?: unknown }[]) {
      if (typeof c?.name !== 'string' || !c.name || out.has(c.name)) continue;
      const labels = c.labels && typeof c.labels === 'object' && !Array.isArray(c.labels) ? (c.labels as Record<string, string>) : {};
      out.set(c.name, { name: c.name, labels });
    }
  }
  return out;
}

/** Seconds kubectl is told to wait before retrying a cluster whose tunnel is on its way. */
export const TUNNEL_PENDING_RETRY_AFTER_S = 1;

/** Whether a status is noRouteStatus's "tunnel on its way" (a 503 that names the cluster). */
export function isTunnelPending(status: KubeStatus): boolean {
  return status.code === 503 && status.details?.kind === 'kube_cluster' && status.details.retryAfterSeconds === TUNNEL_PENDING_RETRY_AFTER_S;
}

/**
 * The answer for a request to a cluster this proxy has no open route to. A cluster that
 * exists (an agent heartbeats it) and that the user may see is on its way: a just-started
 * proxy has no tunnels until agents dial it, so the answer is a retryable 503 with
 * Retry-After (client-go retries it by itself). Anything else, including a cluster the
 * user may not see, is 404, so existence does not leak.
 */
export function noRouteStatus(
  cluster: string,
  o: { present: (name: string) => PresentCluster | undefined; canSee: (c: PresentCluster) => boolean; visible: () => string[] },
): KubeStatus {
  const present = o.present(cluster);
  if (present && o.canSee(present)) {
    return kubeStatus(
      503,
      'ServiceUnavailable',
      `keyway: Kubernetes cluster "${cluster}" has no agent tunnel to this proxy yet (the proxy or the agent is restarting); retry in a second`,
      { name: cluster, kind: 'kube_cluster', retryAfterSeconds: TUNNEL_PENDING_RETRY_AFTER_S },
    );
  }
  return kubeStatus(404, 'NotFound', `keyway: Kubernetes cluster "${cluster}" not found; you can access: ${o.visible().join(', ') || 'none'}`);
}
