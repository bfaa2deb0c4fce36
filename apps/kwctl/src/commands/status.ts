import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

/** `kwctl status`: cluster name and each CA's fingerprint, as `tctl status`. */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('status')
    .description('report cluster status: its name, version and certificate authorities')
    .action(async (_opts: unknown, cmd: Command) => {
      await ctx.withClient(cmd, async (client) => {
        const p = await client.call('ping', {});
        const rows: [string, string][] = [
          ['Cluster', p.clusterName],
          ['Version', p.serverVersion],
          ['Second factor', p.secondFactor],
        ];
        for (const ca of p.certAuthorities) {
          rows.push([`${ca.type} CA`, ca.fingerprint]);
          rows.push([`${ca.type} CA pin`, ca.spkiPin]);
        }
        const width = Math.max(...rows.map(([k]) => k.length)) + 1;
        ctx.out.write(rows.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join('\n') + '\n');
      });
    });
}
