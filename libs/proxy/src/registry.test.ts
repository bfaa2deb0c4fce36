import { describe, expect, it } from 'vitest';
import type { KubeBackend } from '@keyway/tunnel';
import { ClusterRegistry, type ClusterRoute } from './registry.js';

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
