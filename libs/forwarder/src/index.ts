export { KubeForwarder } from './forwarder.js';
export { inClusterCredentials, loadKubeconfig, type ClusterCredentials } from './kubeconfig.js';
