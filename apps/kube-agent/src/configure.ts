import { Command } from 'commander';
import { configureAgentKubeconfig, DEFAULT_AGENT_NAMESPACE, DEFAULT_AGENT_SERVICE_ACCOUNT } from '@keyway/agent';
import { BadParameterError } from '@keyway/errors';

/**
 * `keyway-kube-agent configure`: makes the kubeconfig an agent (or proxy) outside the cluster
 * uses, as Teleport's get-kubeconfig.sh; k8s/agent/make-kubeconfig.sh does the same with kubectl.
 */
export function configureCommand(): Command {
  return new Command('configure')
    .description('create a ServiceAccount that may only impersonate, a long-lived token for it, and a kubeconfig around them for the agent')
    .requiredOption('--kubeconfig <file>', 'an admin kubeconfig (may create ServiceAccounts, Secrets and RBAC)')
    .option('--context <name>', "the admin kubeconfig's context (default: its current-context)")
    .requiredOption('--out <file>', 'where to write the agent kubeconfig')
    .option('--namespace <ns>', 'namespace of the ServiceAccount', DEFAULT_AGENT_NAMESPACE)
    .option('--service-account <name>', 'name of the ServiceAccount', DEFAULT_AGENT_SERVICE_ACCOUNT)
    .option('--cluster-name <name>', "name of the written kubeconfig's cluster and context (what the agent serves it as; default: the context's name)")
    .option('--token-timeout <seconds>', 'how long to wait for the token controller to fill the token Secret', '60')
    .option('--force', 'overwrite --out if it exists')
    .action(async (opts: { kubeconfig: string; context?: string; out: string; namespace: string; serviceAccount: string; clusterName?: string; tokenTimeout: string; force?: boolean }) => {
      const seconds = Number(opts.tokenTimeout);
      if (!Number.isFinite(seconds) || seconds <= 0) throw new BadParameterError(`--token-timeout "${opts.tokenTimeout}" is not a positive number of seconds`);
      const result = await configureAgentKubeconfig({
        adminKubeconfig: opts.kubeconfig,
        ...(opts.context ? { context: opts.context } : {}),
        out: opts.out,
        namespace: opts.namespace,
        serviceAccount: opts.serviceAccount,
        ...(opts.clusterName ? { clusterName: opts.clusterName } : {}),
        force: opts.force === true,
        tokenTimeoutMs: seconds * 1000,
        report: (line) => process.stdout.write(`${line}\n`),
      });
      process.stdout.write(`run the agent with: keyway-kube-agent --kubeconfig=${result.out} --proxy=<host:port> --token=<join token>\n`);
    });
}
