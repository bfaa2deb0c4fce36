export { AuthClient, AUTH_SERVER_NAME, GRPC_MAX_MESSAGE_BYTES, trustOnPin, type AuthClientOptions } from './auth-client.js';
export {
  formatIdentityFile,
  parseIdentityFile,
  readIdentityFile,
  writeIdentityFile,
  writeSecretFile,
  type IdentityFile,
} from './identity-file.js';
export { fileIdentityStore, type IdentityStore } from './identity-store.js';
export { buildKubeconfig, contextName, KUBE_SNI, type KubeconfigOptions } from './kubeconfig.js';
export {
  fromIdentityFile,
  loadOrJoin,
  renewHostCredentials,
  renewalDelayMs,
  toIdentityFile,
  type HostCredentials,
  type HostJoinOptions,
} from './host-credentials.js';
export { splitHostPort } from './address.js';
export { THE_AUTH_SERVICE, THE_PROXY, callFailure, transportFailure } from './unreachable.js';
export { untilReachable, unreachableReason, type WaitOptions } from './wait.js';
export { kwHomeDir, kwProfileKey, readKwLogin, type KwLogin } from './kw-profile.js';
