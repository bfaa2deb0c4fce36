import { join } from 'node:path';
import { Command, Option } from 'commander';
import { KubeAgent, AGENT_VERSION } from '@keyway/agent';
import { fileIdentityStore, type IdentityStore } from '@keyway/client';
import { loadConfig, type ParsedConfig } from '@keyway/config';
import { BadParameterError, KeywayError } from '@keyway/errors';
import { inClusterCredentials, inClusterNamespace, loadKubeconfig, secretIdentityStore, upstreamLimitsFromConfig, type ClusterCredentials } from '@keyway/forwarder';
import { createLogger } from '@keyway/log';
import { configureCommand } from './configure.js';

const program = new Command('keyway-kube-agent')
  .description('Keyway kube agent: dials out to the proxies and serves its cluster(s) through them')
  .version(AGENT_VERSION, '-v, --version')
  // The agent's options before a subcommand, the subcommand's after it (both have --kubeconfig).
  .enablePositionalOptions()
  .addCommand(configureCommand())
  .addOption(new Option('-c, --config <file>', 'keyway.yaml (kubernetes_service)').env('KEYWAY_CONFIG'))
  .option('--proxy <host:port>', 'proxy (load balancer) address')
  .option('--token <token>', 'join token (kwctl tokens add --type=kube)')
  .option('--kubeconfig <file>', 'serve the contexts of this kubeconfig (default: the in-cluster service account)')
  .option('--kube-cluster-name <name>', 'serve only this context (or name the in-cluster cluster)')
  .option('--labels <k=v,...>', 'static labels of the cluster(s)')
  .option('--ca-pin <pin>', 'sha256:<hex> of the host CA (kwctl status)')
  .option('-d, --data-dir <dir>', 'where the agent keeps its credentials')
  .option('--identity-secret <name>', 'keep the credentials in this Secret of the cluster the agent runs in instead (survives rescheduling)')
  .option('--identity-secret-namespace <ns>', "the Secret's namespace (default: the pod's own)")
  .action(
    async (opts: {
      config?: string;
      proxy?: string;
      token?: string;
      kubeconfig?: string;
      kubeClusterName?: string;
      labels?: string;
      caPin?: string;
      dataDir?: string;
      identitySecret?: string;
      identitySecretNamespace?: string;
    }) => {
      const env = { ...process.env };
      if (opts.proxy) env['KEYWAY_KUBERNETES_SERVICE__PROXY_ADDR'] = opts.proxy;
      if (opts.token) env['KEYWAY_KUBERNETES_SERVICE__JOIN_PARAMS__TOKEN_NAME'] = opts.token;
      if (opts.kubeconfig) env['KEYWAY_KUBERNETES_SERVICE__KUBECONFIG_FILE'] = opts.kubeconfig;
      if (opts.kubeClusterName) env['KEYWAY_KUBERNETES_SERVICE__KUBE_CLUSTER_NAME'] = opts.kubeClusterName;
      if (opts.dataDir) env['KEYWAY_DATA_DIR'] = opts.dataDir;
      if (opts.caPin) env['KEYWAY_CA_PIN'] = `[${opts.caPin}]`;
      if (opts.identitySecret) env['KEYWAY_KUBERNETES_SERVICE__IDENTITY_SECRET'] = opts.identitySecret;
      if (opts.identitySecretNamespace) env['KEYWAY_KUBERNETES_SERVICE__IDENTITY_SECRET_NAMESPACE'] = opts.identitySecretNamespace;
      const config = loadConfig({ ...(opts.config ? { file: opts.config } : {}), env });
      const ks = config.kubernetes_service;
      if (!ks.proxy_addr) throw new BadParameterError('set kubernetes_service.proxy_addr (or --proxy)');
      if (!ks.join_params?.token_name) throw new BadParameterError('set kubernetes_service.join_params.token_name (or --token)');
      const labels = { ...ks.labels, ...parseLabels(opts.labels) };
      const clusters = ks.kubeconfig_file
        ? loadKubeconfig(ks.kubeconfig_file, ks.kube_cluster_name ? { only: ks.kube_cluster_name } : {})
        : [inClusterCredentials(ks.kube_cluster_name ?? 'kubernetes')];
      const logger = createLogger('kube-agent', { level: config.log.level });
      for (const warning of config.warnings) logger.warn({ config: config.source }, warning);
      // Stoppable while it still waits for the proxy to join through.
      const starting = new AbortController();
      const running: { agent?: KubeAgent } = {};
      const stop = () => {
        starting.abort(new Error('stopped'));
        void (running.agent?.close() ?? Promise.resolve()).then(() => process.exit(0));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      const agent = await KubeAgent.create(
        {
          proxyAddr: ks.proxy_addr,
          token: ks.join_params.token_name,
          identityStore: identityStore(ks, clusters, config.dataDir),
          caPins: config.ca_pin,
          clusters: clusters.map((creds) => ({ creds, labels })),
          logger,
          upstream: upstreamLimitsFromConfig(ks.upstream),
        },
        { signal: starting.signal },
      );
      running.agent = agent;
      agent.serve();
      process.stdout.write(`keyway-kube-agent ${AGENT_VERSION} (host id ${agent.hostId}) serving ${clusters.map((c) => c.name).join(', ')} via ${ks.proxy_addr}\n`);
    },
  );

/**
 * A Secret in the cluster the agent runs in (the in-cluster one, or the kubeconfig's first),
 * when identity_secret is set; otherwise a file in the data dir.
 */
function identityStore(ks: ParsedConfig['kubernetes_service'], clusters: ClusterCredentials[], dataDir: string): IdentityStore {
  if (!ks.identity_secret) return fileIdentityStore(join(dataDir, 'agent-identity.pem'));
  const namespace = ks.identity_secret_namespace ?? inClusterNamespace();
  if (!namespace) throw new BadParameterError('set kubernetes_service.identity_secret_namespace (or --identity-secret-namespace): not running in a pod');
  const creds = clusters[0];
  if (!creds) throw new BadParameterError('no cluster to keep the identity Secret in');
  return secretIdentityStore({ creds, namespace, name: ks.identity_secret });
}

function parseLabels(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (s ?? '').split(',').filter(Boolean)) {
    const [k, v] = pair.split('=');
    if (!k || v === undefined) throw new BadParameterError(`label "${pair}" is not key=value`);
    out[k.trim()] = v.trim();
  }
  return out;
}

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`keyway-kube-agent: ${err instanceof KeywayError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
