import type { Command } from 'commander';
import { THE_PROXY, type AuthClient } from '@keyway/client';
import { BadParameterError } from '@keyway/errors';
import { formatResources, type Resource, type UserResource } from '@keyway/resources';
import { ttlSeconds } from '../ttl.js';
import type { CommandContext } from '../context.js';

const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : []);

interface UpdateFlags {
  setRoles?: string;
  setLogins?: string;
  setKubernetesGroups?: string;
  setKubernetesUsers?: string;
}

/** The trait flags as traits; with `keepEmpty`, a flag given as "" clears its trait. */
function traitFlags(o: { logins?: string | undefined; kubernetesGroups?: string | undefined; kubernetesUsers?: string | undefined }, keepEmpty = false): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const put = (trait: string, value: string | undefined) => {
    if (value === undefined) return;
    const values = list(value);
    if (values.length > 0 || keepEmpty) out[trait] = values;
  };
  put('logins', o.logins);
  put('kubernetes_groups', o.kubernetesGroups);
  put('kubernetes_users', o.kubernetesUsers);
  return out;
}

/** `kwctl users add|ls|rm|reset`. */
export function register(program: Command, ctx: CommandContext): void {
  const users = program.command('users').description('manage user accounts');

  users
    .command('add')
    .description('generate a user invitation token: a one-time token the user redeems with kw signup')
    .argument('<account>', 'the user name')
    .requiredOption('--roles <roles>', 'list of roles for the new user to assume, e.g. access,editor')
    .option('--logins <logins>', 'list of allowed SSH logins for the new user (the trait logins)')
    .option('--kubernetes-groups <groups>', 'list of allowed Kubernetes groups for the new user (the trait kubernetes_groups)')
    .option('--kubernetes-users <users>', 'list of allowed Kubernetes users for the new user (the trait kubernetes_users)')
    .option('--ttl <duration>', 'how long the invitation token is valid, at most 168h', '1h')
    .action(async (name: string, opts: { roles: string; logins?: string; kubernetesGroups?: string; kubernetesUsers?: string; ttl: string }, cmd: Command) => {
      const roles = list(opts.roles);
      if (roles.length === 0) throw new BadParameterError('--roles needs at least one role');
      const traits: Record<string, { values: string[] }> = {};
      for (const [trait, value] of Object.entries(traitFlags(opts))) traits[trait] = { values: value };
      await ctx.withClient(cmd, async (client) => {
        const t = await client.call('createUser', { name, roles, traits, tokenTtlSeconds: ttlSeconds('--ttl', opts.ttl, 168 * 3600_000) });
        ctx.out.write(signupMessage(t, 'has been created but requires a password', await signupTarget(client)));
      });
    });

  users
    .command('update')
    .description("update a user's roles and traits; the flags given replace what the user has, the rest stays")
    .argument('<account>', 'the user name')
    .option('--set-roles <roles>', 'replace the roles of the user, e.g. access,editor')
    .option('--set-logins <logins>', 'replace the allowed SSH logins (the trait logins); "" clears them')
    .option('--set-kubernetes-groups <groups>', 'replace the allowed Kubernetes groups (the trait kubernetes_groups); "" clears them')
    .option('--set-kubernetes-users <users>', 'replace the allowed Kubernetes users (the trait kubernetes_users); "" clears them')
    .action(async (name: string, opts: UpdateFlags, cmd: Command) => {
      const traits = traitFlags({ logins: opts.setLogins, kubernetesGroups: opts.setKubernetesGroups, kubernetesUsers: opts.setKubernetesUsers }, true);
      const roles = opts.setRoles === undefined ? undefined : list(opts.setRoles);
      if (roles?.length === 0) throw new BadParameterError('--set-roles needs at least one role (a user without roles can do nothing; use kwctl users rm or kwctl lock)');
      if (!roles && Object.keys(traits).length === 0) {
        throw new BadParameterError('nothing to update: give --set-roles, --set-logins, --set-kubernetes-groups or --set-kubernetes-users');
      }
      await ctx.withClient(cmd, async (client) => {
        const got = await client.call('getResource', { kind: 'user', name, withSecrets: false });
        const user = JSON.parse(got.json) as UserResource;
        if (roles) user.spec.roles = roles;
        const merged: Record<string, string[]> = { ...(user.spec.traits ?? {}) };
        for (const [trait, values] of Object.entries(traits)) {
          if (values.length === 0) delete merged[trait];
          else merged[trait] = values;
        }
        user.spec.traits = merged;
        // Guarded by the revision read above: a change made meanwhile is not overwritten.
        await client.call('createResources', { resources: [{ kind: 'user', name, json: JSON.stringify(user), revision: got.revision }], force: true });
        const changed = [...(roles ? [`roles to ${roles.join(',')}`] : []), ...Object.entries(traits).map(([t, v]) => `${t} to ${v.length ? v.join(',') : '(none)'}`)];
        ctx.out.write(`User ${name} has been updated: set ${changed.join(', ')}\n`);
      });
    });

  users
    .command('ls')
    .description('lists all user accounts')
    .option('--format <format>', 'yaml, json or text', 'text')
    .action(async (opts: { format: 'yaml' | 'json' | 'text' }, cmd: Command) => {
      await ctx.withClient(cmd, async (client) => {
        const resources = await client.listAllResources('user');
        ctx.out.write(formatResources(resources.map((r) => JSON.parse(r.json) as Resource), opts.format));
      });
    });

  users
    .command('rm')
    .description('deletes user accounts')
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
    .description('reset user password and second factor and generate a new token')
    .argument('<name>')
    .option('--ttl <duration>', 'how long the reset token is valid', '1h')
    .action(async (name: string, opts: { ttl: string }, cmd: Command) => {
      await ctx.withClient(cmd, async (client) => {
        const t = await client.call('resetUser', { name, tokenTtlSeconds: ttlSeconds('--ttl', opts.ttl, 168 * 3600_000) });
        ctx.out.write(signupMessage(t, 'has been reset', await signupTarget(client)));
      });
    });
}

/**
 * Where the user redeems the token (the address kwctl reached: the auth server, or the proxy
 * of the kw login it used) and the CA pin that lets kw trust that server. README's walkthrough
 * shows the same command.
 */
async function signupTarget(client: AuthClient): Promise<{ via: 'auth-server' | 'proxy'; address: string; pin: string }> {
  const ping = await client.call('ping', {});
  return {
    via: client.serverName === THE_PROXY ? 'proxy' : 'auth-server',
    address: client.address,
    pin: ping.certAuthorities.find((ca) => ca.type === 'host')?.spkiPin ?? '',
  };
}

function signupMessage(t: { token: string; user: string; expires: string }, what: string, target: { via: string; address: string; pin: string }): string {
  return [
    `User "${t.user}" ${what}. Share this token with the user to set a password and second factor;`,
    `it is valid until ${t.expires} and works once:`,
    '',
    `  ${t.token}`,
    '',
    'The user runs:',
    `  kw signup ${t.token} --${target.via}=${target.address} --ca-pin=${target.pin}`,
    '',
  ].join('\n');
}
