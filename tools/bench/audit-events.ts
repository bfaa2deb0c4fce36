import { EVENTS, auditEvent, type AuditEventRecord } from '@keyway/audit';

/** The audit benchmark's event: a kube.request as the proxy writes it, unique per (tag, i). */
export function benchEvent(i: number, tag: string): AuditEventRecord {
  return auditEvent(EVENTS.kubeRequest, {
    cluster_name: 'bench',
    user: `user-${i % 50}`,
    user_roles: ['access'],
    kubernetes_cluster: 'prod',
    kubernetes_groups: ['system:authenticated', 'devs'],
    proto: 'kube',
    verb: 'GET',
    request_path: `/api/v1/namespaces/default/pods/${tag}-${i}`,
    resource_kind: 'pods',
    resource_namespace: 'default',
    resource_name: `${tag}-${i}`,
    response_code: 200,
    'addr.remote': '10.0.0.1',
  });
}
