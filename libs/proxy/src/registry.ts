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
