import { Command, Option } from 'commander';
import { loadConfig } from '@keyway/config';
import { KeywayError } from '@keyway/errors';
import { createLogger } from '@keyway/log';
import { SERVER_VERSION } from './api/auth-api.js';
import { startStack } from './stack.js';

const program = new Command('keyway')
  .description('Keyway: identity-aware access to Kubernetes')
  .version(SERVER_VERSION, '-v, --version')
  .showHelpAfterError();

program
  .command('start')
  .description('start the Keyway services (auth; with no configuration, on an embedded store under ./.keyway)')
  .addOption(new Option('-c, --config <file>', 'keyway.yaml, or a teleport.yaml as written (v1-v3)').env('KEYWAY_CONFIG'))
  .option('-d, --data-dir <dir>', 'data directory (default ./.keyway)')
  .option('--auth-listen-addr <host:port>', 'auth gRPC listen address (default 127.0.0.1:3025)')
  .option('--proxy-listen-addr <host:port>', 'proxy listen address (default 0.0.0.0:3080)')
  .option('--kubeconfig <file>', 'serve the clusters of this kubeconfig from the proxy itself')
  .action(async (opts: { config?: string; dataDir?: string; authListenAddr?: string; proxyListenAddr?: string; kubeconfig?: string }) => {
    const env = { ...process.env };
    if (opts.dataDir) env['KEYWAY_DATA_DIR'] = opts.dataDir;
    if (opts.authListenAddr) env['KEYWAY_AUTH_LISTEN_ADDR'] = opts.authListenAddr;
    if (opts.proxyListenAddr) env['KEYWAY_PROXY_LISTEN_ADDR'] = opts.proxyListenAddr;
    if (opts.kubeconfig) env['KEYWAY_PROXY_SERVICE__KUBERNETES__KUBECONFIG_FILE'] = opts.kubeconfig;
    const config = loadConfig({ ...(opts.config ? { file: opts.config } : {}), env });
    // Everything this process writes (keys, identities, the embedded database) is private.
    process.umask(0o077);
    const logger = createLogger('keyway', { level: config.log.level });
    // Teleport settings and services Keyway does not have: said once at start, never dropped silently.
    for (const warning of config.warnings) logger.warn({ config: config.source }, warning);
    const stack = await startStack(config, logger);
    const auth = stack.auth;
    const address = stack.authAddress;
    process.stdout.write(
      [
        `Keyway ${SERVER_VERSION} cluster "${config.cluster_name}" is running.`,
        `  auth service (gRPC, mTLS):  ${address}`,
        ...(stack.proxyListenAddress ? [`  proxy (kubectl, agents):    listening on ${stack.proxyListenAddress}`] : []),
        ...(stack.kubeListenAddress ? [`  kube listener:              listening on ${stack.kubeListenAddress}`] : []),
        `  store:                      ${config.storage.type === 'embedded' ? `embedded (${config.storage.dataDir})` : 'postgres'}`,
        `  admin identity:             ${auth.adminIdentityPath}`,
        '',
        'Add the first user:',
        `  npx kwctl users add alice --roles=editor,access${opts.dataDir ? ` --data-dir=${opts.dataDir}` : ''}`,
        ...(stack.proxyPublicAddress ? ['Then point kw at the proxy:', `  npx kw login --proxy=${stack.proxyPublicAddress} --user=alice --insecure`] : []),
        '',
      ].join('\n'),
    );
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      stack.close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof KeywayError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`keyway: ${message}\n`);
  process.exit(1);
});
