export { KubeForwarder } from './forwarder.js';
export { inClusterCredentials, inClusterNamespace, loadKubeconfig, serviceAccountDir, type ClusterCredentials } from './kubeconfig.js';
export { IDENTITY_SECRET_KEY, secretIdentityStore, type SecretIdentityStoreOptions } from './identity-secret.js';
export { type KubeForwarderOptions } from './forwarder.js';
export { DEFAULT_UPSTREAM_LIMITS, isLongRunning, upstreamLimitsFromConfig, type UpstreamLimits, type UpstreamLimitsConfig } from './limits.js';
export { FairShare, type FairShareOptions, type Release } from './fair-share.js';
export { kubeJsonClient, type KubeJsonAnswer } from './kube-json.js';
