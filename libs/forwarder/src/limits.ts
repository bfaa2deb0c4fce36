import { normalizeRequestPath, parseRequestInfo } from '@keyway/kube';
import type { KubeRequestHead } from '@keyway/tunnel';

/** Bounds on what the forwarder asks of one API server (per cluster it serves). */
export interface UpstreamLimits {
  /** Short requests in flight for everybody together: the short-request pool's connections. */
  maxRequests: number;
  /** Short requests in flight for one Kubernetes user; more wait their turn. */
  maxRequestsPerUser: number;
  /** Short requests of one user that may wait for a slot; beyond that, 429. */
  queuedRequestsPerUser: number;
  /** The longest a short request waits for a slot before it is answered 429. */
  queueTimeoutMs: number;
  /** Long-running requests (watch, logs, exec, attach, port-forward, proxy) open for everybody together. */
  maxStreams: number;
  /** Long-running requests one Kubernetes user may hold open; the next is answered 429 at once. */
  maxStreamsPerUser: number;
  /** No response head from the API server within this: 504 (kube-apiserver itself gives up on short requests after 60 s). */
  responseTimeoutMs: number;
  /** Connecting (TCP and TLS) to the API server. */
  connectTimeoutMs: number;
}

export const DEFAULT_UPSTREAM_LIMITS: UpstreamLimits = {
  maxRequests: 256,
  // kubectl's discovery burst is about 50 parallel requests; a user above that waits its turn.
  maxRequestsPerUser: 64,
  queuedRequestsPerUser: 512,
  queueTimeoutMs: 30_000,
  maxStreams: 4096,
  maxStreamsPerUser: 200,
  responseTimeoutMs: 90_000,
  connectTimeoutMs: 10_000,
};

const LONG_RUNNING_SUBRESOURCES = new Set(['log', 'exec', 'attach', 'portforward', 'proxy']);

/**
 * kube-apiserver's own notion of a long-running request (its LongRunningRequestCheck):
 * watches, proxying, and the log, exec, attach, port-forward and proxy subresources.
 */
export function isLongRunning(head: KubeRequestHead): boolean {
  if (head.upgrade) return true;
  try {
    const { path, query } = normalizeRequestPath(head.path);
    const info = parseRequestInfo(head.method, path, query);
    return info.verb === 'watch' || info.verb === 'proxy' || LONG_RUNNING_SUBRESOURCES.has(info.subresource);
  } catch {
    return false; // the proxy authorized this path, so it parses; if not, a short request it is
  }
}

/** The config file's `upstream` section (durations already in ms), as UpstreamLimits. */
export interface UpstreamLimitsConfig {
  max_requests?: number | undefined;
  max_requests_per_user?: number | undefined;
  queued_requests_per_user?: number | undefined;
  queue_timeout?: number | undefined;
  max_streams?: number | undefined;
  max_streams_per_user?: number | undefined;
  response_timeout?: number | undefined;
  connect_timeout?: number | undefined;
}

export function upstreamLimitsFromConfig(c: UpstreamLimitsConfig | undefined): Partial<UpstreamLimits> {
  const out: Partial<UpstreamLimits> = {};
  const set = <K extends keyof UpstreamLimits>(key: K, value: number | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  set('maxRequests', c?.max_requests);
  set('maxRequestsPerUser', c?.max_requests_per_user);
  set('queuedRequestsPerUser', c?.queued_requests_per_user);
  set('queueTimeoutMs', c?.queue_timeout);
  set('maxStreams', c?.max_streams);
  set('maxStreamsPerUser', c?.max_streams_per_user);
  set('responseTimeoutMs', c?.response_timeout);
  set('connectTimeoutMs', c?.connect_timeout);
  return out;
}
