import { stringify } from 'yaml';

/**
 * The SNI every Keyway kubeconfig sends: the proxy routes it to the Kubernetes handler
 * (Teleport's name, so Teleport-era kubeconfigs and load balancer rules keep working).
 */
export const KUBE_SNI = 'kube-teleport-proxy-alpn.keyway.cluster.local';

export interface KubeconfigOptions {
  /** Keyway cluster name: names the kubeconfig cluster entry. */
  clusterName: string;
  /** Target kube cluster; part of the context name when given. */
  kubeCluster?: string;
  /** host:port of the proxy. */
  proxyAddr: string;
  /** CA that verifies the proxy (the host CA). */
  caPems: string[];
  /** Embedded credentials (kwctl auth sign) ... */
  credentials?: { certPem: string; keyPem: string };
  /** ... or an exec plugin (kw kube login). */
  exec?: { command: string; args: string[]; env?: Record<string, string> };
}

export function contextName(clusterName: string, kubeCluster?: string): string {
  return kubeCluster ? `${clusterName}-${kubeCluster}` : clusterName;
}

/** A kubeconfig in the layout `kw kube login` writes: one cluster per Keyway cluster, one context and user per kube cluster. */
export function buildKubeconfig(o: KubeconfigOptions): string {
  const name = contextName(o.clusterName, o.kubeCluster);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const user: Record<string, unknown> = o.credentials
    ? { 'client-certificate-data': b64(o.credentials.certPem), 'client-key-data': b64(o.credentials.keyPem) }
    : {
        exec: {
          apiVersion: 'client.authentication.k8s.io/v1beta1',
          command: o.exec?.command,
          args: o.exec?.args,
          ...(o.exec?.env ? { env: Object.entries(o.exec.env).map(([n, value]) => ({ name: n, value })) } : {}),
          interactiveMode: 'IfAvailable',
          provideClusterInfo: false,
        },
      };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: [
      {
        name: o.clusterName,
        cluster: {
          server: `https://${o.proxyAddr}`,
          'certificate-authority-data': b64(o.caPems.join('')),
          'tls-server-name': KUBE_SNI,
        },
      },
    ],
    contexts: [{ name, context: { cluster: o.clusterName, user: name } }],
    'current-context': name,
    users: [{ name, user }],
  });
}
