import { isIP } from 'node:net';
import type { KeywayConfig } from '@keyway/config';
import { inClusterCredentials, loadKubeconfig, upstreamLimitsFromConfig, type ClusterCredentials } from '@keyway/forwarder';
import type { Logger } from '@keyway/log';
import { ProxyService, listenerTimeoutsFromConfig } from '@keyway/proxy';
import { PROXY_SERVER_NAME } from '@keyway/tunnel';
import { AuthService, hostOf } from './service.js';

export interface Stack {
  auth: AuthService;
  proxy?: ProxyService;
  authAddress: string;
  proxyAddress?: string;
  kubeAddress?: string;
  close(): Promise<void>;
}

/**
 * `keyway start`: the auth service, and in the same process the proxy (with the clusters
 * it serves itself: proxy_service.kubernetes.kubeconfig_file, and kubernetes_service's
 * kubeconfig when that service is enabled here).
 */
export async function startStack(config: KeywayConfig, logger: Logger, clock?: () => Date): Promise<Stack> {
  const auth = await AuthService.create({ config, logger: logger.child({ service: 'auth' }), ...(clock ? { clock } : {}) });
  let proxy: ProxyService | undefined;
  try {
    const authAddress = await auth.serve();
    if (!config.proxy_service.enabled) {
      return { auth, authAddress, close: () => auth.close() };
    }
    const p = config.proxy_service;
    const publicHosts = [...p.public_addr, ...p.kubernetes.public_addr].map(hostOf).filter(Boolean);
    const dnsNames = [PROXY_SERVER_NAME, '*.keyway.cluster.local', 'localhost', ...publicHosts.filter((h) => !isIP(h)).flatMap((h) => [h, `*.${h}`])];
    const ipAddresses = ['127.0.0.1', '::1', ...publicHosts.filter((h) => isIP(h))];
    proxy = new ProxyService({
      clusterName: config.cluster_name,
      listenAddr: p.listen_addr,
      publicAddrs: p.public_addr,
      ...(p.kubernetes.listen_addr ? { kubeListenAddr: p.kubernetes.listen_addr } : {}),
      kubePublicAddrs: p.kubernetes.public_addr,
      authAddr: authAddress,
      credentials: auth.issueHostCredentials('Proxy', dnsNames, ipAddresses),
      localClusters: localClusters(config),
      // In one process the proxy writes through the auth service's own audit log.
      audit: auth.audit,
      logger: logger.child({ service: 'proxy' }),
      timeouts: listenerTimeoutsFromConfig(p.timeouts),
      upstreamLimits: upstreamLimitsFromConfig(p.kubernetes.upstream),
    });
    const bound = await proxy.serve();
    const started = proxy;
    let closing: Promise<void> | undefined;
    return {
      auth,
      proxy,
      authAddress,
      proxyAddress: bound.address,
      ...(bound.kubeAddress ? { kubeAddress: bound.kubeAddress } : {}),
      // Once: a second close (a signal during shutdown, a test's cleanup) waits for the first.
      close() {
        closing ??= (async () => {
          await started.close();
          await auth.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await proxy?.close().catch(() => undefined);
    await auth.close().catch(() => undefined);
    throw err;
  }
}

function localClusters(config: KeywayConfig): { creds: ClusterCredentials; labels: Record<string, string> }[] {
  const out: { creds: ClusterCredentials; labels: Record<string, string> }[] = [];
  const proxyKubeconfig = config.proxy_service.kubernetes.kubeconfig_file;
  if (proxyKubeconfig) for (const creds of loadKubeconfig(proxyKubeconfig)) out.push({ creds, labels: {} });
  const ks = config.kubernetes_service;
  if (ks.enabled) {
    const clusters = ks.kubeconfig_file
      ? loadKubeconfig(ks.kubeconfig_file, ks.kube_cluster_name ? { only: ks.kube_cluster_name } : {})
      : [inClusterCredentials(ks.kube_cluster_name ?? config.cluster_name)];
    for (const creds of clusters) out.push({ creds, labels: ks.labels });
  }
  return out;
}
