import type { Command } from 'commander';
import { decodeIdentity } from '@keyway/pki';
import type { CommandContext } from '../context.js';
import { loadProfile, type LoadedProfile } from '../profile.js';

/** tsh's status block. */
export function statusBlock(p: LoadedProfile, now = Date.now()): string {
  const id = decodeIdentity(p.certPem);
  const left = id.expires.getTime() - now;
  const validity = left > 0 ? `valid for ${duration(left)}` : 'EXPIRED';
  const rows: [string, string][] = [
    ['Profile URL', `https://${p.profile.proxy}`],
    ['Logged in as', id.username],
    ['Cluster', id.clusterName],
    ['Roles', id.roles.join(', ')],
    ['Kubernetes', 'enabled'],
    ...(id.kubernetesUsers.length ? ([['Kubernetes users', id.kubernetesUsers.join(', ')]] as [string, string][]) : []),
    ['Kubernetes groups', id.kubernetesGroups.join(', ') || '(none)'],
    ['Valid until', `${id.expires.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000 UTC')} [${validity}]`],
  ];
  return `> ${rows.map(([k, v]) => `${`${k}:`.padEnd(20)}${v}`).join('\n  ')}\n`;
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m${s % 60}s`;
}

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('status')
    .description('show the current login')
    .option('--proxy <host:port>', 'profile of this proxy (default: the current one)')
    .action((opts: { proxy?: string }) => {
      ctx.out.write(statusBlock(loadProfile(opts.proxy)));
    });
}
