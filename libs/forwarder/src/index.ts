export { KubeForwarder } from './forwarder.js';
export { inClusterCredentials, inClusterNamespace, loadKubeconfig, serviceAccountDir, type ClusterCredentials } from './kubeconfig.js';
export { IDENTITY_SECRET_KEY, secretIdentityStore, type SecretIdentityStoreOptions } from './identity-secret.js';
