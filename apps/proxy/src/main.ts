import { isIP } from 'node:net';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { QueueAuditLog } from '@keyway/audit';
import { fileIdentityStore, loadOrJoin, type IdentityStore } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { BadParameterError, KeywayError } from '@keyway/errors';
import { inClusterCredentials, inClusterNamespace, loadKubeconfig, secretIdentityStore, upstreamLimitsFromConfig } from '@keyway/forwarder';
import { createLogger } from '@keyway/log';
import { ProxyService, PROXY_VERSION, listenerTimeoutsFromConfig, readHttpsKeyPairs } from '@keyway/proxy';
import { PROXY_SERVER_NAME } from '@keyway/tunnel';

const program = new Command('keyway-proxy')
  .description('Keyway proxy: kubectl and agents connect here; it joins the auth server with a token')
  .version(PROXY_VERSION, '-v, --version')
  .addOption(new Option('-c, --config <file>', 'keyway.yaml (auth_server, join_params, proxy_service)').env('KEYWAY_CONFIG'))
  .option('--auth-server <host:port>', 'auth server address')
  .option('--token <token>', 'join token (kwctl tokens add --type=proxy)')
  .option('--listen-addr <host:port>', 'listen address (default 0.0.0.0:3080)')
  .option('-d, --data-dir <dir>', 'where the proxy keeps its credentials')
  .option('--identity-secret <name>', "keep the credentials in this Secret of the pod's cluster instead (survives rescheduling)")
  .option('--identity-secret-namespace <ns>', "the Secret's namespace (default: the pod's own)")
  .action(async (opts: { config?: string; authServer?: string; token?: string; listenAddr?: string; dataDir?: string; identitySecret?: string; identitySecretNamespace?: string }) => {
    const env = { ...process.env };
    if (opts.authServer) env['KEYWAY_AUTH_SERVER'] = opts.authServer;
    if (opts.token) env['KEYWAY_JOIN_PARAMS__TOKEN_NAME'] = opts.token;
    if (opts.listenAddr) env['KEYWAY_PROXY_LISTEN_ADDR'] = opts.listenAddr;
    if (opts.dataDir) env['KEYWAY_DATA_DIR'] = opts.dataDir;
    if (opts.identitySecret) env['KEYWAY_PROXY_SERVICE__IDENTITY_SECRET'] = opts.identitySecret;
    if (opts.identitySecretNamespace) env['KEYWAY_PROXY_SERVICE__IDENTITY_SECRET_NAMESPACE'] = opts.identitySecretNamespace;
    const config = loadConfig({ ...(opts.config ? { file: opts.config } : {}), env });
    const logger = createLogger('proxy', { level: config.log.level });
    for (const warning of config.warnings) logger.warn({ config: config.source }, warning);
    if (!config.auth_server) throw new BadParameterError('set auth_server (or --auth-server) to the auth service address');
    const p = config.proxy_service;
    const hosts = [...p.public_addr, ...p.kubernetes.public_addr].map((a) => a.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''));
    const dnsNames = [PROXY_SERVER_NAME, '*.keyway.cluster.local', 'localhost', ...hosts.filter((h) => !isIP(h)).flatMap((h) => [h, `*.${h}`])];
    const ipAddresses = ['127.0.0.1', '::1', ...hosts.filter((h) => isIP(h))];
    const identityStore = p.identity_secret ? podSecretStore(p.identity_secret, p.identity_secret_namespace) : fileIdentityStore(join(config.dataDir, 'proxy-identity.pem'));
    const credentials = await loadOrJoin({
      authAddr: config.auth_server,
      token: config.join_params?.token_name ?? '',
      role: 'Proxy',
      store: identityStore,
      caPins: config.ca_pin,
      dnsNames,
      ipAddresses,
      logger,
    });
    // Every event waits in this spool, on disk, until auth confirms it is stored.
    const spoolDir = join(config.dataDir, 'audit-spool-proxy');
    const audit = p.redis_url
      ? new QueueAuditLog({ redisUrl: p.redis_url, spoolPath: spoolDir, spoolMaxBytes: config.audit.spool_max_bytes, mode: config.audit.mode, logger })
      : undefined;
    const proxy = new ProxyService({
      clusterName: credentials.identity.clusterName,
      listenAddr: p.listen_addr,
      publicAddrs: p.public_addr,
      ...(p.kubernetes.listen_addr ? { kubeListenAddr: p.kubernetes.listen_addr } : {}),
      kubePublicAddrs: p.kubernetes.public_addr,
      authAddr: config.auth_server,
      credentials,
      identityStore,
      ...(audit ? { audit } : { auditSpool: { dir: spoolDir, maxBytes: config.audit.spool_max_bytes, mode: config.audit.mode } }),
      httpsKeyPairs: readHttpsKeyPairs(p.https_keypairs),
      httpsKeyPairsReload: { files: p.https_keypairs, intervalMs: p.https_keypairs_reload_interval },
      localClusters: p.kubernetes.kubeconfig_file ? loadKubeconfig(p.kubernetes.kubeconfig_file).map((creds) => ({ creds, labels: {} })) : [],
      logger,
      timeouts: listenerTimeoutsFromConfig(p.timeouts),
      upstreamLimits: upstreamLimitsFromConfig(p.kubernetes.upstream),
    });
    const { address, kubeAddress } = await proxy.serve();
    process.stdout.write(`keyway-proxy ${PROXY_VERSION} listening on ${address}${kubeAddress ? `, kube on ${kubeAddress}` : ''} (host id ${proxy.hostId})\n`);
    const stop = () =>
      void proxy
        .close()
        .then(() => audit?.close())
        .then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

/** The proxy's credentials in a Secret of the cluster its pod runs in, reached through the pod's service account. */
function podSecretStore(name: string, namespace: string | undefined): IdentityStore {
  const ns = namespace ?? inClusterNamespace();
  if (!ns) throw new BadParameterError('set proxy_service.identity_secret_namespace (or --identity-secret-namespace): not running in a pod');
  return secretIdentityStore({ creds: inClusterCredentials('local'), namespace: ns, name });
}

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`keyway-proxy: ${err instanceof KeywayError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
