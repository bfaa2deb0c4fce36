import type { Command } from 'commander';
import type { AuthClient } from '@keyway/client';
import { BadParameterError } from '@keyway/errors';
import { formatResources, type Resource } from '@keyway/resources';
import { ttlSeconds } from '../ttl.js';
import type { CommandContext } from '../context.js';

const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : []);

/** `kwctl users add|ls|rm|reset`. */
export function register(program: Command, ctx: CommandContext): void {
  const users = program.command('users').description('manage local users');

  users
    .command('add')
    .description('add a user; prints a one-time signup token')
    .argument('<name>')
    .requiredOption('--roles <roles>', 'comma-separated roles, e.g. access,editor')
    .option('--kubernetes-groups <groups>', 'comma-separated, becomes the trait kubernetes_groups')
    .option('--kubernetes-users <users>', 'comma-separated, becomes the trait kubernetes_users')
    .option('--ttl <duration>', 'how long the signup token is valid', '1h')
    .action(async (name: string, opts: { roles: string; kubernetesGroups?: string; kubernetesUsers?: string; ttl: string }, cmd: Command) => {
      const roles = list(opts.roles);
      if (roles.length === 0) throw new BadParameterError('--roles needs at least one role');
      const traits: Record<string, { values: string[] }> = {};
      if (opts.kubernetesGroups) traits['kubernetes_groups'] = { values: list(opts.kubernetesGroups) };
      if (opts.kubernetesUsers) traits['kubernetes_users'] = { values: list(opts.kubernetesUsers) };
      await ctx.withClient(cmd, async (client) => {
        const t = await client.call('createUser', { name, roles, traits, tokenTtlSeconds: ttlSeconds('--ttl', opts.ttl, 168 * 3600_000) });
        ctx.out.write(signupMessage(t, 'has been created but requires a password', await signupTarget(client)));
      });
    });

  users
    .command('ls')
    .description('list users')
    .option('--format <format>', 'yaml, json or text', 'text')
    .action(async (opts: { format: 'yaml' | 'json' | 'text' }, cmd: Command) => {
      await ctx.withClient(cmd, async (client) => {
        const resources = await client.listAllResources('user');
        ctx.out.write(formatResources(resources.map((r) => JSON.parse(r.json) as Resource), opts.format));
      });
    });

  users
    .command('rm')
    .description('delete users')
    .argument('<names...>')
    .action(async (names: string[], _opts: unknown, cmd: Command) => {
      await ctx.withClient(cmd, async (client) => {
        for (const name of names) {
          await client.call('deleteResource', { kind: 'user', name });
          ctx.out.write(`User "${name}" has been deleted\n`);
        }
      });
    });

  users
    .command('reset')
    .description('revoke a user\'s password and second factor and print a reset token')
    .argument('<name>')
    .option('--ttl <duration>', 'how long the reset token is valid', '1h')
    .action(async (name: string, opts: { ttl: string }, cmd: Command) => {
      await ctx.withClient(cmd, async (client) => {
        const t = await client.call('resetUser', { name, tokenTtlSeconds: ttlSeconds('--ttl', opts.ttl, 168 * 3600_000) });
        ctx.out.write(signupMessage(t, 'has been reset', await signupTarget(client)));
      });
    });
}

/** Where the user redeems the token, and the CA pin that lets kw trust that server. */
async function signupTarget(client: AuthClient): Promise<{ address: string; pin: string }> {
  const ping = await client.call('ping', {});
  return { address: client.address, pin: ping.certAuthorities.find((ca) => ca.type === 'host')?.spkiPin ?? '' };
}

function signupMessage(t: { token: string; user: string; expires: string }, what: string, target: { address: string; pin: string }): string {
  return [
    `User "${t.user}" ${what}. Share this token with the user to set a password and second factor;`,
    `it is valid until ${t.expires} and works once:`,
    '',
    `  ${t.token}`,
    '',
    'The user runs:',
    `  kw signup ${t.token} --auth-server=${target.address} --ca-pin=${target.pin}`,
    '',
  ].join('\n');
}
