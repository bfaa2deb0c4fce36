export { ClusterCache } from './cache.js';
export { KubeHandler, type KubeHandlerOptions } from './kube-handler.js';
export { ProxyService, PROXY_VERSION, classify, type LocalClustersHeartbeat, type ProxyServiceConfig } from './proxy-service.js';
export { ClusterRegistry, type ClusterRoute } from './registry.js';
export { createRouter, type Route, type RouterOptions } from './router.js';
export { SessionObserver, SessionRecorder, tapSession, type RecordingSink, type SessionChunk, type SessionEvent, type SessionMeta } from './recording/index.js';
export { DEFAULT_LISTENER_TIMEOUTS, listenerTimeoutsFromConfig, type ListenerTimeouts } from './timeouts.js';
export { readHttpsKeyPairs } from './web/https-keypairs.js';
