import type { PresenceEntry, StoredResource } from '@keyway/store';

export const KUBE_SERVER = 'kube_server';

/** What get and list return: a stored resource, or a kube agent's heartbeat shown as one. */
export type ReadResource = Omit<StoredResource, 'kind'> & { kind: StoredResource['kind'] | typeof KUBE_SERVER };

/**
 * Kube agents' heartbeats as `kube_server` resources (Teleport's kind for them), one per
 * agent with the clusters it serves, for `kwctl get kube_servers`. They are not stored
 * resources: they have no revision and cannot be created, edited or deleted.
 */
export function kubeServerResources(entries: readonly PresenceEntry[]): ReadResource[] {
  return entries.map((p) => {
    const d = p.data as { hostname?: string; addr?: string; version?: string; kube_clusters?: { name: string; labels?: Record<string, string> }[] };
    return {
      kind: KUBE_SERVER,
      name: p.hostId,
      revision: '',
      expires: p.expires,
      resource: {
        kind: KUBE_SERVER,
        version: 'v3',
        metadata: { name: p.hostId, expires: p.expires.toISOString() },
        spec: {
          host_id: p.hostId,
          hostname: d.hostname ?? '',
          addr: d.addr ?? '',
          version: d.version ?? '',
          kube_clusters: (d.kube_clusters ?? []).map((c) => ({ name: c.name, labels: c.labels ?? {} })),
        },
      },
    };
  });
}
