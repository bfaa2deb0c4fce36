import type { Command } from 'commander';
import { BadParameterError } from '@keyway/errors';
import type { LockResource } from '@keyway/resources';
import { ttlSeconds } from '../ttl.js';
import type { CommandContext } from '../context.js';

/** `kwctl lock` and `kwctl unlock`. */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('lock')
    .description('lock a user or a role out: no login, no renewal, no access')
    .option('--user <name>', 'lock this user')
    .option('--role <name>', 'lock every user with this role')
    .option('--message <text>', 'shown to the locked user')
    .option('--ttl <duration>', 'lift the lock automatically after this long')
    .action(async (opts: { user?: string; role?: string; message?: string; ttl?: string }, cmd: Command) => {
      if (!opts.user && !opts.role) throw new BadParameterError('give --user or --role');
      await ctx.withClient(cmd, async (client) => {
        const r = await client.call('createLock', {
          user: opts.user ?? '',
          role: opts.role ?? '',
          message: opts.message ?? '',
          ttlSeconds: opts.ttl ? ttlSeconds('--ttl', opts.ttl, 87_600 * 3600_000) : 0,
        });
        const lock = JSON.parse(r.json) as LockResource;
        ctx.out.write(`Created a lock with name "${lock.metadata.name}".\n`);
      });
    });
  program
    .command('unlock')
    .description('remove locks: by lock name, or every lock on --user / --role')
    .argument('[name]', 'lock name')
    .option('--user <name>')
    .option('--role <name>')
    .action(async (name: string | undefined, opts: { user?: string; role?: string }, cmd: Command) => {
      if (!name && !opts.user && !opts.role) throw new BadParameterError('give a lock name, --user or --role');
      await ctx.withClient(cmd, async (client) => {
        let names: string[];
        if (name) {
          names = [name];
        } else {
          const resources = await client.listAllResources('lock');
          names = resources
            .map((r) => JSON.parse(r.json) as LockResource)
            .filter((l) => (opts.user && l.spec.target.user === opts.user) || (opts.role && l.spec.target.role === opts.role))
            .map((l) => l.metadata.name);
          if (names.length === 0) throw new BadParameterError(`no lock targets ${opts.user ? `user "${opts.user}"` : `role "${opts.role}"`}`);
        }
        for (const n of names) {
          await client.call('deleteResource', { kind: 'lock', name: n });
          ctx.out.write(`Lock "${n}" has been removed\n`);
        }
      });
    });
}
