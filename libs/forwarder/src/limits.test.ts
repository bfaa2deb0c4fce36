import { describe, expect, it } from 'vitest';
import { loadConfig } from '@keyway/config';
import type { KubeRequestHead } from '@keyway/tunnel';
import { DEFAULT_UPSTREAM_LIMITS, isLongRunning, upstreamLimitsFromConfig } from './limits.js';

const head = (method: string, path: string, upgrade?: string): KubeRequestHead => ({ method, path, headers: {}, cluster: 'c', user: 'u', groups: [], ...(upgrade ? { upgrade } : {}) });

describe('isLongRunning (which pool a request takes)', () => {
  it('counts watches, logs, exec, attach, port-forward and proxy as streams, as kube-apiserver does', () => {
    for (const [method, path, upgrade] of [
      ['GET', '/api/v1/namespaces/default/pods?watch=true'],
      ['GET', '/api/v1/namespaces/default/pods?watch=1&resourceVersion=5'],
      ['GET', '/api/v1/watch/namespaces/default/pods'],
      ['GET', '/apis/apps/v1/deployments?watch=true'],
      ['GET', '/api/v1/namespaces/default/pods/web/log?follow=true'],
      ['GET', '/api/v1/namespaces/default/services/web/proxy/metrics'],
      ['POST', '/api/v1/namespaces/default/pods/web/exec?command=ls', 'SPDY/3.1'],
      ['POST', '/api/v1/namespaces/default/pods/web/portforward', 'websocket'],
    ] as const) {
      expect(isLongRunning(head(method, path, upgrade)), path).toBe(true);
    }
  });

  it('counts gets, lists, writes and discovery as short requests', () => {
    for (const [method, path] of [
      ['GET', '/api/v1/namespaces/default/pods'],
      ['GET', '/api/v1/namespaces/default/pods/web'],
      ['GET', '/api/v1/namespaces/default/pods?watch=false'],
      ['POST', '/api/v1/namespaces/default/configmaps'],
      ['GET', '/api'],
      ['GET', '/apis'],
      ['GET', '/version'],
    ] as const) {
      expect(isLongRunning(head(method, path)), path).toBe(false);
    }
  });
});

describe('upstream limits from the config file', () => {
  it('takes what is set (durations in ms) and leaves the rest to the defaults', () => {
    const config = loadConfig({ env: { KEYWAY_KUBERNETES_SERVICE__UPSTREAM__MAX_STREAMS_PER_USER: '5', KEYWAY_KUBERNETES_SERVICE__UPSTREAM__QUEUE_TIMEOUT: '2s' } });
    const limits = { ...DEFAULT_UPSTREAM_LIMITS, ...upstreamLimitsFromConfig(config.kubernetes_service.upstream) };
    expect(limits).toEqual({ ...DEFAULT_UPSTREAM_LIMITS, maxStreamsPerUser: 5, queueTimeoutMs: 2_000 });
    expect(upstreamLimitsFromConfig(loadConfig({ env: {} }).proxy_service.kubernetes.upstream)).toEqual({});
  });

  it('refuses a limit that is not a positive whole number', () => {
    expect(() => loadConfig({ env: { KEYWAY_KUBERNETES_SERVICE__UPSTREAM__MAX_STREAMS: '0' } })).toThrow(/max_streams/);
  });
});
