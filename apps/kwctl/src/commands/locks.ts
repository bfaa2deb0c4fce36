import type { Command } from 'commander';
import { BadParameterError } from '@keyway/errors';
import type { LockResource } from '@keyway/resources';
import { ttlSeconds } from '../ttl.js';
import type { CommandContext } from '../context.js';

/** `kwctl lock` and `kwctl unlock`. */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('lock')
    .description('create a new lock: no login, no renewal, no access for its target, and open sessions are closed')
    .option('--user <name>', 'name of a user to lock')
    .option('--role <name>', 'name of a role to lock (every user with it)')
    .option('--message <text>', 'message to display to locked-out users')
    .option('--expires <time>', 'time point (RFC3339) when the lock expires')
    .option('--ttl <duration>', 'time duration after which the lock expires')
    .action(async (opts: { user?: string; role?: string; message?: string; ttl?: string; expires?: string }, cmd: Command) => {
      if (!opts.user && !opts.role) throw new BadParameterError('give --user or --role');
      if (opts.ttl && opts.expires) throw new BadParameterError('give --ttl or --expires, not both');
      const seconds = opts.expires ? secondsUntil(opts.expires) : opts.ttl ? ttlSeconds('--ttl', opts.ttl, 87_600 * 3600_000) : 0;
      await ctx.withClient(cmd, async (client) => {
        const r = await client.call('createLock', {
          user: opts.user ?? '',
          role: opts.role ?? '',
          message: opts.message ?? '',
          ttlSeconds: seconds,
        });
        const lock = JSON.parse(r.json) as LockResource;
        ctx.out.write(`Created a lock with name "${lock.metadata.name}".\n`);
      });
    });
  program
    .command('unlock')
    .description('remove a lock: by its name, or every lock on --user / --role')
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

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** --expires as a TTL for the API, rounded up to the second: it must be a future RFC 3339 time. */
export function secondsUntil(value: string, now = Date.now()): number {
  const t = Date.parse(value);
  if (!RFC3339.test(value) || Number.isNaN(t)) throw new BadParameterError(`--expires must be an RFC 3339 time such as 2026-12-31T23:00:00Z (got ${value})`);
  const seconds = Math.ceil((t - now) / 1000);
  if (seconds < 1) throw new BadParameterError(`--expires must be in the future (got ${value})`);
  if (seconds > 87_600 * 3600) throw new BadParameterError(`--expires must be at most 87600h (10 years) away (got ${value})`);
  return seconds;
}
