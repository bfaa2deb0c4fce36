export { KubeForwarder } from './forwarder.js';
export { inClusterCredentials, inClusterNamespace, loadKubeconfig, type ClusterCredentials } from './kubeconfig.js';
