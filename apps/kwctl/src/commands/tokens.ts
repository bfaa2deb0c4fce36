import type { Command } from 'commander';
import { formatResources, type Resource } from '@keyway/resources';
import { ttlSeconds } from '../ttl.js';
import type { CommandContext } from '../context.js';

/** `kwctl tokens add|ls|rm`: join tokens for agents and proxies, and SCIM bearer tokens. */
export function register(program: Command, ctx: CommandContext): void {
  const tokens = program.command('tokens').description('manage join tokens');
  tokens
    .command('add')
    .description('create a join token, or a SCIM bearer token for an identity provider')
    .requiredOption('--type <types>', 'what may join with it: kube, proxy, or both as kube,proxy; or scim (a bearer token for /scim/v2)')
    .option('--ttl <duration>', 'how long the token is valid (default 30m; scim: 8760h)')
    .option('--value <token>', 'use this value instead of a random one')
    .action(async (opts: { type: string; ttl?: string; value?: string }, cmd: Command) => {
      const roles = opts.type.split(',').map((t) => t.trim()).filter(Boolean);
      const scim = roles.some((r) => r.toLowerCase() === 'scim');
      await ctx.withClient(cmd, async (client) => {
        const r = await client.call('createToken', {
          roles,
          ttlSeconds: scim && opts.ttl === undefined ? 0 : ttlSeconds('--ttl', opts.ttl ?? '30m', (scim ? 8760 : 720) * 3600_000),
          name: opts.value ?? '',
          labels: {},
        });
        const token = JSON.parse(r.json) as { metadata: { name: string; expires: string }; status?: { token?: string } };
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
    .description('list join tokens')
    .option('--format <format>', 'yaml, json or text', 'text')
    .action(async (opts: { format: 'yaml' | 'json' | 'text' }, cmd: Command) => {
      await ctx.withClient(cmd, async (client) => {
        const resources = await client.listAllResources('token');
        ctx.out.write(formatResources(resources.map((r) => JSON.parse(r.json) as Resource), opts.format));
      });
    });
  tokens
    .command('rm')
    .description('delete a join token')
    .argument('<token>')
    .action(async (token: string, _opts: unknown, cmd: Command) => {
      await ctx.withClient(cmd, async (client) => {
        await client.call('deleteResource', { kind: 'token', name: token });
        ctx.out.write(`Token ${token} has been deleted\n`);
      });
    });
}
