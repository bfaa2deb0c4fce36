import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import { BadParameterError } from '@keyway/errors';
import { formatResources, parseResourceDocuments, resolveKind, type Resource } from '@keyway/resources';
import type { CommandContext } from '../context.js';

const GETTABLE = ['user', 'role', 'token', 'github', 'oidc', 'saml', 'kube_cluster', 'lock'] as const;

/** `kwctl create`, `kwctl get`, `kwctl rm`: resources as Teleport's tctl handles them. */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('create')
    .description('create resources from a YAML/JSON file (multi-document; - reads stdin)')
    .requiredOption('-f, --filename <file>', 'resource file, or - for stdin')
    .option('--force', 'overwrite resources that exist', false)
    .action(async (opts: { filename: string; force: boolean }, cmd: Command) => {
      const source = opts.filename === '-' ? 'stdin' : opts.filename;
      let text: string;
      try {
        text = opts.filename === '-' ? await ctx.readStdin() : readFileSync(opts.filename, 'utf8');
      } catch (err) {
        throw new BadParameterError(`cannot read ${source}: ${(err as Error).message}`);
      }
      // Validate every document before anything is sent: nothing is written if one is wrong.
      const { docs } = parseResourceDocuments(text, source);
      if (docs.length === 0) throw new BadParameterError(`${source} holds no resources`);
      await ctx.withClient(cmd, async (client) => {
        const { changes } = await client.call('createResources', {
          resources: docs.map((d) => ({ kind: d.kind, name: d.metadata.name, json: JSON.stringify(d), revision: '' })),
          force: opts.force,
        });
        for (const c of changes) ctx.out.write(`${c.kind} "${c.name}" has been ${c.created ? 'created' : 'updated'}\n`);
      });
    });

  program
    .command('get')
    .description(`show resources: KIND or KIND/NAME, KIND one of ${GETTABLE.join(', ')}, or all`)
    .argument('<ref>', 'e.g. users, roles/junior-devs, all')
    .addOption(new Option('--format <format>', 'output format').choices(['yaml', 'json', 'text']).default('yaml'))
    .option('--with-secrets', 'include connector secrets (client secrets, signing keys)', false)
    .action(async (ref: string, opts: { format: 'yaml' | 'json' | 'text'; withSecrets: boolean }, cmd: Command) => {
      const [kindPart, name, extra] = ref.split('/');
      if (extra !== undefined || !kindPart || name === '') throw new BadParameterError(`"${ref}" is not KIND or KIND/NAME`);
      const kinds = kindPart === 'all' ? [...GETTABLE] : [resolveKind(kindPart)];
      if (kindPart === 'all' && name) throw new BadParameterError('"all" takes no name');
      await ctx.withClient(cmd, async (client) => {
        const resources: Resource[] = [];
        for (const kind of kinds) {
          if (name) {
            const r = await client.call('getResource', { kind, name, withSecrets: opts.withSecrets });
            resources.push(JSON.parse(r.json) as Resource);
          } else {
            const list = await client.listAllResources(kind, opts.withSecrets);
            resources.push(...list.map((r) => JSON.parse(r.json) as Resource));
          }
        }
        ctx.out.write(formatResources(resources, opts.format));
      });
    });

  program
    .command('rm')
    .alias('delete')
    .description('delete a resource: KIND/NAME')
    .argument('<ref>', 'e.g. roles/junior-devs')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const [kindPart, name, extra] = ref.split('/');
      if (!kindPart || !name || extra !== undefined) throw new BadParameterError(`"${ref}" is not KIND/NAME`);
      const kind = resolveKind(kindPart);
      await ctx.withClient(cmd, async (client) => {
        await client.call('deleteResource', { kind, name });
        ctx.out.write(`${kind} "${name}" has been deleted\n`);
      });
    });
}
