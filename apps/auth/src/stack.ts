import { isIP } from 'node:net';
import type { KeywayConfig } from '@keyway/config';
import { BadParameterError } from '@keyway/errors';
import { inClusterCredentials, loadKubeconfig, upstreamLimitsFromConfig, type ClusterCredentials } from '@keyway/forwarder';
import type { Logger } from '@keyway/log';
import { ProxyService, readHttpsKeyPairs, listenerTimeoutsFromConfig } from '@keyway/proxy';
import { PROXY_SERVER_NAME } from '@keyway/tunnel';
import type { Caller } from './api/caller.js';
import { AuthService, hostOf } from './service.js';

export interface Stack {
  auth: AuthService;
  proxy?: ProxyService;
  authAddress: string;
  proxyAddress?: string;
  kubeAddress?: string;
  close(): Promise<void>;
  /** Where the proxy listens, as bound: `0.0.0.0:3080` (proxyAddress is the address to dial). */
  proxyListenAddress?: string;
  kubeListenAddress?: string;
  /** The address to give kw and kubectl: the first public_addr, else this host. */
  proxyPublicAddress?: string;
}

/**
 * `keyway start`: the auth service, and in the same process the proxy (with the clusters
 * it serves itself: proxy_service.kubernetes.kubeconfig_file, and kubernetes_service's
 * kubeconfig when that service is enabled here).
 */
export async function startStack(config: KeywayConfig, logger: Logger, clock?: () => Date, options: { allowHttpSsoProviders?: boolean; ssoRecheckIntervalMs?: number } = {}): Promise<Stack> {
  // keyway start runs kubernetes_service's clusters in its proxy (agents are keyway-kube-agent).
  if (config.kubernetes_service.enabled && !config.proxy_service.enabled) {
    throw new BadParameterError(
      'kubernetes_service is enabled but proxy_service is not: keyway start serves kubernetes_service clusters from its own proxy; enable proxy_service, or run keyway-kube-agent --config with this file on a host of its own',
    );
  }
  // A wrong certificate file is refused before anything starts.
  const httpsKeyPairs = config.proxy_service.enabled ? readHttpsKeyPairs(config.proxy_service.https_keypairs) : [];
  const auth = await AuthService.create({ config, logger: logger.child({ service: 'auth' }), ...(clock ? { clock } : {}), ...options });
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
    const credentials = auth.issueHostCredentials('Proxy', dnsNames, ipAddresses);
    // The local clusters' presence is the proxy's, kept by auth in this same process: as an
    // agent's would be, under the proxy's host id, with the rights of a kube server for that id only.
    const kubeServer: Caller = { kind: 'host', identity: { ...credentials.identity, roles: ['Kube'], systemRoles: ['Kube'] } };
    proxy = new ProxyService({
      clusterName: config.cluster_name,
      listenAddr: p.listen_addr,
      publicAddrs: p.public_addr,
      ...(p.kubernetes.listen_addr ? { kubeListenAddr: p.kubernetes.listen_addr } : {}),
      kubePublicAddrs: p.kubernetes.public_addr,
      authAddr: authAddress,
      credentials,
      ...(config.nodename ? { hostname: config.nodename } : {}),
      announceLocalClusters: (heartbeat) => auth.api.heartbeat(kubeServer, heartbeat),
      httpsKeyPairs,
      httpsKeyPairsReload: { files: p.https_keypairs, intervalMs: p.https_keypairs_reload_interval },
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
      proxyListenAddress: listenedOn(p.listen_addr, bound.address),
      ...(bound.kubeAddress && p.kubernetes.listen_addr ? { kubeListenAddress: listenedOn(p.kubernetes.listen_addr, bound.kubeAddress) } : {}),
      proxyPublicAddress: p.public_addr[0] ?? publicAddressOf(listenedOn(p.listen_addr, bound.address)),
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

/** The configured host with the port actually bound (`:0` resolved): what the listener is on. */
export function listenedOn(configured: string, bound: string): string {
  const port = bound.slice(bound.lastIndexOf(':') + 1);
  const host = configured.slice(0, configured.lastIndexOf(':'));
  return `${host === '' ? '0.0.0.0' : host}:${port}`;
}

/** Where a client on this host reaches a listener: localhost for a wildcard or loopback one. */
export function publicAddressOf(listen: string): string {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i);
  const local = ['0.0.0.0', '[::]', '::', '127.0.0.1', '[::1]', 'localhost'].includes(host);
  return `${local ? 'localhost' : host}:${listen.slice(i + 1)}`;
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
