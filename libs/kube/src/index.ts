export { INTERNAL_PATH_PREFIX, isInternalPath, normalizeRequestPath, parseQuery, validateQuery, type NormalizedRequestPath } from './path.js';
export { parseRequestInfo, type RequestInfo } from './request-info.js';
export { kindOf, kindDisplayName, TELEPORT_KUBE_KINDS, CLUSTER_SCOPED_KINDS, type KubeKind } from './kinds.js';
export {
  kubeStatus,
  kubeStatusFromError,
  statusReasonForCode,
  type KubeStatus,
  type StatusReason,
  type StatusDetails,
  type StatusCause,
} from './status.js';
export { SPDY3_DICTIONARY, SPDY3_DICTIONARY_SHA256 } from './spdy3-dictionary.js';
