import { describe, expect, it } from 'vitest';
import { readiness } from './readiness.js';

const later = new Date(Date.now() + 3_600_000);
const servers = [{ kube_clusters: [{ name: 'prod', labels: {} }] }, { kube_clusters: [{ name: 'dev', labels: {} }] }];

describe('proxy readiness', () => {
  it('waits for the watch first, then for a tunnel per cluster agents heartbeat', () => {
    expect(readiness({ identityExpires: later, cacheHealthy: false, kubeServers: servers, hasRoute: () => true })).toEqual({
      ready: false,
      waiting_for: ["the auth server's watch (the cache of users, roles, locks and hosts is not current)"],
    });
    expect(readiness({ identityExpires: later, cacheHealthy: true, kubeServers: servers, hasRoute: (c) => c === 'dev' })).toEqual({
      ready: false,
      waiting_for: ['agent tunnels for cluster prod'],
    });
    expect(readiness({ identityExpires: later, cacheHealthy: true, kubeServers: servers, hasRoute: () => true })).toEqual({ ready: true, waiting_for: [] });
    // A proxy's own clusters (its kubeconfig) get no agent tunnel: nobody waits for one.
    const local = [...servers, { host_id: 'proxy-1', kube_clusters: [{ name: 'edge', labels: {} }] }];
    expect(readiness({ identityExpires: later, cacheHealthy: true, kubeServers: local, hasRoute: (c) => c !== 'edge', isProxy: (id) => id === 'proxy-1' }).ready).toBe(true);
    expect(readiness({ identityExpires: later, cacheHealthy: true, kubeServers: local, hasRoute: (c) => c !== 'edge' }).waiting_for).toEqual(['agent tunnels for cluster edge']);
    // No agent anywhere: nothing to wait for.
    expect(readiness({ identityExpires: later, cacheHealthy: true, kubeServers: [], hasRoute: () => false }).ready).toBe(true);
  });

  it('is not ready with an expired certificate, and names at most 20 clusters', () => {
    const expired = readiness({ identityExpires: new Date(Date.now() - 1), cacheHealthy: true, kubeServers: [], hasRoute: () => false });
    expect(expired.waiting_for).toEqual(['a valid host certificate (it expired; renewal has not succeeded)']);
    const many = [{ kube_clusters: Array.from({ length: 50 }, (_, i) => ({ name: `c${String(i).padStart(2, '0')}`, labels: {} })) }];
    const r = readiness({ identityExpires: later, cacheHealthy: true, kubeServers: many, hasRoute: () => false });
    expect(r.waiting_for).toHaveLength(1);
    expect(r.waiting_for[0]).toMatch(/^agent tunnels for clusters c00, c01, .*, c19 and 30 more$/);
  });
});
