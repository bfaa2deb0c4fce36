/**
 * What the kube agent's identity may do in a cluster, in one place: `keyway-kube-agent configure`
 * applies these rules, and tests check that k8s/agent/serviceaccount.yaml and
 * k8s/agent/make-kubeconfig.sh grant exactly the same.
 *
 * Only impersonation: every request the agent forwards carries Impersonate-User/-Group for the
 * Keyway user, so the API server decides with that user's rights, never the agent's. No
 * selfsubjectaccessreviews rule: the agent makes no access checks of its own, and every
 * authenticated identity may create them anyway (the built-in system:basic-user role).
 */
export const AGENT_IMPERSONATION_RULES: readonly { apiGroups: string[]; resources: string[]; verbs: string[] }[] = [
  { apiGroups: [''], resources: ['users', 'groups', 'serviceaccounts'], verbs: ['impersonate'] },
];

export const DEFAULT_AGENT_NAMESPACE = 'keyway';
export const DEFAULT_AGENT_SERVICE_ACCOUNT = 'keyway-kube-agent';

/** Names of the objects made for a service account (the ClusterRole's as in serviceaccount.yaml). */
export function agentObjectNames(serviceAccount: string): { clusterRole: string; clusterRoleBinding: string; tokenSecret: string } {
  return { clusterRole: `${serviceAccount}-impersonation`, clusterRoleBinding: `${serviceAccount}-impersonation`, tokenSecret: `${serviceAccount}-token` };
}
