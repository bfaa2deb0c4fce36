import type { Command } from 'commander';
import { Option } from 'commander';
import { stringify } from 'yaml';
import { BadParameterError } from '@keyway/errors';
import { formatResources, type Resource } from '@keyway/resources';
import { ttlSeconds } from '../ttl.js';
import type { CommandContext } from '../context.js';

/** `kwctl tokens add|ls|rm`: join tokens for agents and proxies, and SCIM bearer tokens. */
export function register(program: Command, ctx: CommandContext): void {
  const tokens = program.command('tokens').description('list or revoke invitation tokens for agents and proxies (and SCIM tokens)');
  tokens
    .command('add')
    .description('create an invitation token for an agent or a proxy to join the cluster, or a SCIM bearer token')
    .requiredOption('--type <types>', 'type(s) of token to add: kube, proxy, or both as kube,proxy; Keyway also has scim (a bearer token for /scim/v2)')
    .option('--value <token>', 'override the default random generated token with a specified value')
    .option('--labels <k=v,...>', 'set token labels, e.g. env=prod,region=eu')
    .option('--ttl <duration>', 'set expiration time for token (default 30m; scim: 8760h)')
    .addOption(new Option('--format <format>', 'output format: text tells how to use the token; json and yaml print token, roles and expires').choices(['text', 'json', 'yaml']).default('text'))
    .action(async (opts: { type: string; ttl?: string; value?: string; labels?: string; format: 'text' | 'json' | 'yaml' }, cmd: Command) => {
      const roles = opts.type.split(',').map((t) => t.trim()).filter(Boolean);
      const scim = roles.some((r) => r.toLowerCase() === 'scim');
      const labels = opts.labels === undefined ? {} : parseLabels('--labels', opts.labels);
      await ctx.withClient(cmd, async (client) => {
        const r = await client.call('createToken', {
          roles,
          ttlSeconds: scim && opts.ttl === undefined ? 0 : ttlSeconds('--ttl', opts.ttl ?? '30m', (scim ? 8760 : 720) * 3600_000),
          name: opts.value ?? '',
          labels,
        });
        const token = JSON.parse(r.json) as { metadata: { name: string; expires: string }; spec: { roles: string[] }; status?: { token?: string } };
        if (opts.format !== 'text') {
          // As tctl prints it: the value to hand over, what it joins as, when it stops working.
          const out = { token: scim ? (token.status?.token ?? '') : token.metadata.name, roles: token.spec.roles, expires: token.metadata.expires };
          ctx.out.write(opts.format === 'json' ? `${JSON.stringify(out, null, 2)}\n` : stringify(out));
          return;
        }
        if (scim) {
          // Only the hash of a SCIM token is stored: this is the one time its value is shown.
          ctx.out.write(
            [
              `The SCIM token: ${token.status?.token ?? ''}`,
              `This token will expire at ${token.metadata.expires}. It is shown once; Keyway keeps only its hash, ${token.metadata.name} (for kwctl tokens rm).`,
              '',
              'In the identity provider, set the SCIM base URL to https://<proxy host:port>/scim/v2 and this token as the bearer token.',
              '',
            ].join('\n'),
          );
          return;
        }
        ctx.out.write(
          [
            `The invite token: ${token.metadata.name}`,
            `This token will expire at ${token.metadata.expires}.`,
            '',
            opts.type.startsWith('kube')
              ? `Start an agent with it:\n  keyway-kube-agent --token=${token.metadata.name} --proxy=<proxy host:port>`
              : `Start a proxy with it:\n  keyway-proxy --token=${token.metadata.name} --auth-server=<auth host:port>`,
            '',
          ].join('\n'),
        );
      });
    });
  tokens
    .command('ls')
    .description('list node and user invitation tokens')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'))
    .action(async (opts: { format: 'yaml' | 'json' | 'text' }, cmd: Command) => {
      await ctx.withClient(cmd, async (client) => {
        const resources = await client.listAllResources('token');
        ctx.out.write(formatResources(resources.map((r) => JSON.parse(r.json) as Resource), opts.format));
      });
    });
  tokens
    .command('rm')
    .description('delete/revoke an invitation token')
    .argument('<token>', 'token to delete')
    .action(async (token: string, _opts: unknown, cmd: Command) => {
      await ctx.withClient(cmd, async (client) => {
        await client.call('deleteResource', { kind: 'token', name: token });
        ctx.out.write(`Token ${token} has been deleted\n`);
      });
    });
}

/** `k=v,k2=v2` as labels; a pair without `=` or with an empty key is an error naming the flag. */
export function parseLabels(flag: string, value: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new BadParameterError(`${flag}: "${pair}" is not KEY=VALUE (e.g. ${flag}=env=prod,region=eu)`);
    labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return labels;
}
