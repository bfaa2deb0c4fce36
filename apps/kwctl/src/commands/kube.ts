import type { Command } from 'commander';
import { Option } from 'commander';
import { stringify } from 'yaml';
import { formatTable } from '@keyway/cli';
import type { AuthClient } from '@keyway/client';
import type { CommandContext } from '../context.js';

/** Agents' heartbeats as the auth server shows them (`kwctl get kube_servers`). */
export interface KubeServer {
  kind: 'kube_server';
  version: string;
  metadata: { name: string; expires?: string };
  spec: { host_id: string; hostname: string; addr: string; version: string; kube_clusters: { name: string; labels: Record<string, string> }[] };
}

interface KubeCluster {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { agents?: string[] };
}

/** kube_server, kube_servers, kube-server: not a stored kind, so @keyway/resources does not know it. */
export function isKubeServerKind(s: string): boolean {
  return /^kube[_-]servers?$/i.test(s.trim());
}

export const labelText = (l: Record<string, string> | undefined): string =>
  Object.entries(l ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

export function kubeServerTable(servers: readonly KubeServer[]): string {
  return formatTable(
    ['Host', 'Hostname', 'Version', 'Clusters'],
    servers.map((s) => [s.spec.host_id, s.spec.hostname, s.spec.version, s.spec.kube_clusters.map((c) => c.name).join(',')]),
  );
}

export async function listKubeServers(client: AuthClient): Promise<KubeServer[]> {
  return (await client.listAllResources('kube_server')).map((r) => JSON.parse(r.json) as KubeServer);
}

/** `kwctl kube ls`: registered Kubernetes clusters, as `tctl kube ls`. */
export function register(program: Command, ctx: CommandContext): void {
  const kube = program.command('kube').description('operate on registered Kubernetes clusters');
  kube
    .command('ls')
    .description('list all Kubernetes clusters registered with the cluster (Keyway also shows the agents serving each)')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'))
    .action(async (opts: { format: 'text' | 'json' | 'yaml' }, cmd: Command) => {
      await ctx.withClient(cmd, async (client) => {
        const clusters = (await client.listAllResources('kube_cluster')).map((r) => JSON.parse(r.json) as KubeCluster);
        const servers = await listKubeServers(client);
        const rows = clusters.map((c) => {
          const serving = servers.filter((s) => s.spec.kube_clusters.some((k) => k.name === c.metadata.name));
          return {
            cluster: c.metadata.name,
            labels: c.metadata.labels ?? {},
            version: [...new Set(serving.map((s) => s.spec.version).filter(Boolean))].join(','),
            agents: serving.map((s) => (s.spec.hostname ? `${s.spec.host_id} (${s.spec.hostname})` : s.spec.host_id)),
          };
        });
        if (opts.format === 'json') ctx.out.write(`${JSON.stringify(rows, null, 2)}\n`);
        else if (opts.format === 'yaml') ctx.out.write(stringify(rows));
        else ctx.out.write(formatTable(['Cluster', 'Labels', 'Version', 'Agents'], rows.map((r) => [r.cluster, labelText(r.labels), r.version, r.agents.join(', ') || '(none online)'])));
      });
    });
}
