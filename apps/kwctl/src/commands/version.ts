import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { versionLine } from '@keyway/log';

/** `kwctl version`, as `tctl version`: this binary's version; it reaches no server. */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('version')
    .description('print the version of kwctl')
    .action(() => {
      ctx.out.write(`${versionLine(ctx.env)}\n`);
    });
}
