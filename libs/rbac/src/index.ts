export { checkAccess, evaluateAccess, RULE_VERBS, RULE_RESOURCES, type AccessDecision, type RuleVerb } from './access.js';
export { expandTemplate, userTraits, type Traits } from './templates.js';
export { identityKubeGrants, maxSessionTtl, certTtl, DEFAULT_CERT_TTL_MS, type KubeGrants } from './grants.js';
export {
  authorizeKubeRequest,
  visibleKubeClusters,
  kubeLabelsMatch,
  matchKubePattern,
  KUBE_SYSTEM_AUTHENTICATED,
  type KubeAccessInput,
  type KubeAccessResult,
  type KubeClusterInfo,
} from './kube.js';
export { PRESET_ROLES, EDITOR_ROLE, ACCESS_ROLE, AUDITOR_ROLE, SYSTEM_ADMIN_ROLE } from './presets.js';
export { DEFAULT_MAX_SESSION_TTL_MS } from '@keyway/resources';
