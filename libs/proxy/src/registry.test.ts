import { describe, expect, it } from 'vitest';
import type { KubeBackend } from '@keyway/tunnel';
import { ClusterRegistry, TUNNEL_PENDING_RETRY_AFTER_S, isTunnelPending, noRouteStatus, presentClusters, type ClusterRoute } from './registry.js';

const backend: KubeBackend = { request: () => Promise.reject(new Error('unused')), upgrade: () => Promise.reject(new Error('unused')) };

function route(cluster: string, serverId: string, labels: Record<string, string> = {}): ClusterRoute & { open: boolean } {
  const r: ClusterRoute & { open: boolean } = { cluster, serverId, labels, backend, open: true, isOpen: () => r.open };
  return r;
}

describe('ClusterRegistry', () => {
  it('knows a cluster (with the labels of an open route) only while a route to it is open', () => {
    const registry = new ClusterRegistry();
    const a = route('prod', 'agent-a', { env: 'prod' });
    const b = route('prod', 'agent-b', { env: 'prod' });
    const removeA = registry.add(a);
    registry.add(b);
    registry.add(route('dev', 'agent-c'));
    expect(registry.cluster('prod')).toEqual({ name: 'prod', labels: { env: 'prod' } });
    expect(registry.clusters().map((c) => c.name)).toEqual(['dev', 'prod']);
    expect(registry.cluster('staging')).toBeUndefined();

    a.open = false;
    expect(new Set([registry.pick('prod')?.serverId, registry.pick('prod')?.serverId])).toEqual(new Set(['agent-b']));
    b.open = false;
    expect(registry.cluster('prod')).toBeUndefined();
    expect(registry.pick('prod')).toBeUndefined();
    removeA();
    expect(registry.clusters().map((c) => c.name)).toEqual(['dev']);
  });
});

describe('a cluster without a route', () => {
  const heartbeats = [
    { host_id: 'a1', kube_clusters: [{ name: 'prod', labels: { env: 'prod' } }, { name: 'dev', labels: { env: 'dev' } }] },
    { host_id: 'a2', kube_clusters: 'not a list' },
    { host_id: 'a3', kube_clusters: [null, { name: 7 }, { name: '' }, { name: 'odd', labels: ['x'] }] },
    { host_id: 'a4' },
  ];
  const present = (n: string) => presentClusters(heartbeats).get(n);

  it('is known from agent heartbeats, whatever shape a host sent', () => {
    expect([...presentClusters(heartbeats).values()]).toEqual([
      { name: 'prod', labels: { env: 'prod' } },
      { name: 'dev', labels: { env: 'dev' } },
      { name: 'odd', labels: {} },
    ]);
  });

  it('answers a retryable 503 while the cluster exists and the user may see it', () => {
    const status = noRouteStatus('dev', { present, canSee: (c) => c.labels['env'] === 'dev', visible: () => ['dev'] });
    expect(status.code).toBe(503);
    expect(status.reason).toBe('ServiceUnavailable');
    expect(status.details?.retryAfterSeconds).toBe(TUNNEL_PENDING_RETRY_AFTER_S);
    expect(status.message).toContain('"dev" has no agent tunnel to this proxy yet');
    // The kube handler holds such a request until the tunnel arrives; a 404 it answers at once.
    expect(isTunnelPending(status)).toBe(true);
    expect(isTunnelPending(noRouteStatus('gone', { present, canSee: () => true, visible: () => [] }))).toBe(false);
  });

  it('answers 404 for a cluster nobody serves, and for one the user may not see (existence does not leak)', () => {
    const canSee = (c: { labels: Record<string, string> }) => c.labels['env'] === 'dev';
    const missing = noRouteStatus('staging', { present, canSee, visible: () => ['dev'] });
    expect([missing.code, missing.message]).toEqual([404, 'keyway: Kubernetes cluster "staging" not found; you can access: dev']);
    const hidden = noRouteStatus('prod', { present, canSee, visible: () => [] });
    expect([hidden.code, hidden.message, hidden.details]).toEqual([404, 'keyway: Kubernetes cluster "prod" not found; you can access: none', undefined]);
  });
});
