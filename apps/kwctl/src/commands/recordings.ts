import type { Command } from 'commander';
import { Option } from 'commander';
import { BadParameterError } from '@keyway/errors';
import type { CommandContext } from '../context.js';
import { formatTable, sessionDuration } from '@keyway/cli';

/** `kwctl recordings ls`: exec/attach session recordings, newest first. */
export function register(program: Command, ctx: CommandContext): void {
  const recordings = program.command('recordings').description('exec and attach session recordings');

  recordings
    .command('ls')
    .description('list recorded sessions, newest first')
    .option('--limit <n>', 'at most this many sessions', '100')
    .addOption(new Option('--format <format>', 'text: a table; json: one session per line').choices(['text', 'json']).default('text'))
    .action(async (opts: { limit: string; format: 'text' | 'json' }, cmd: Command) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BadParameterError('--limit must be a whole number from 1 to 1000');
      await ctx.withClient(cmd, async (client) => {
        const { sessions } = await client.call('listSessions', { limit });
        if (opts.format === 'json') {
          for (const s of sessions) ctx.out.write(`${JSON.stringify(s)}\n`);
          return;
        }
        const rows = sessions.map((s) => [s.id, s.user, s.cluster, `${s.namespace}/${s.pod}`, s.started, sessionDuration(s.started, s.ended)]);
        ctx.out.write(formatTable(['ID', 'User', 'Cluster', 'Pod', 'Start', 'Duration'], rows));
      });
    });
}

