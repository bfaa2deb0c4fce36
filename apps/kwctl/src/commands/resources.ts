import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import { parseAllDocuments } from 'yaml';
import { BadParameterError } from '@keyway/errors';
import { formatResources, parseResourceDocuments, resolveKind, type Resource } from '@keyway/resources';
import type { CommandContext } from '../context.js';
import { isKubeServerKind, kubeServerTable, listKubeServers, type KubeServer } from './kube.js';

const GETTABLE = ['user', 'role', 'token', 'github', 'oidc', 'saml', 'kube_cluster', 'lock'] as const;
type Format = 'yaml' | 'json' | 'text';

/** One item of `kwctl get`'s list: a kind (every resource of it) or one resource. */
interface Ref {
  kind: string;
  name?: string;
}

/** `users,roles/dev,all` → refs; kube_server(s) is kept apart from the stored kinds. */
export function parseRefs(arg: string): Ref[] {
  const refs: Ref[] = [];
  for (const item of arg.split(',').map((s) => s.trim())) {
    const [kindPart, name, extra] = item.split('/');
    if (extra !== undefined || !kindPart || name === '') throw new BadParameterError(`"${item}" is not KIND or KIND/NAME (e.g. roles, roles/dev, users,roles)`);
    if (kindPart === 'all') {
      if (name) throw new BadParameterError('"all" takes no name');
      refs.push(...GETTABLE.map((kind) => ({ kind })));
      continue;
    }
    refs.push({ kind: isKubeServerKind(kindPart) ? 'kube_server' : resolveKind(kindPart), ...(name ? { name } : {}) });
  }
  return refs;
}

/** `kwctl create`, `kwctl get`, `kwctl rm`: resources as Teleport's tctl handles them. */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('create')
    .description('create or update a resource from a YAML/JSON file (multi-document; - reads stdin)')
    .argument('[filename]', 'resource definition file, - for stdin')
    .option('-f, --force', 'overwrite the resource if already exists, whatever its stored revision', false)
    // Keyway's older spelling, kept for scripts: the file as an option.
    .addOption(new Option('--filename <file>', 'resource definition file').hideHelp())
    .addHelpText('after', '\nExamples:\n  kwctl create roles.yaml\n  kwctl create -f jimbo.yaml      # -f is --force, as in tctl\n  kwctl get roles/dev | kwctl create -f -\n')
    .action(async (file: string | undefined, opts: { force: boolean; filename?: string }, cmd: Command) => {
      if (file && opts.filename) throw new BadParameterError(`give the file once: as the argument (${file}) or --filename (${opts.filename})`);
      const path = file ?? opts.filename;
      if (!path) throw new BadParameterError('kwctl create needs a resource file: kwctl create FILE (or - for stdin); -f means --force, as in tctl');
      const source = path === '-' ? 'stdin' : path;
      let text: string;
      try {
        text = path === '-' ? await ctx.readStdin() : readFileSync(path, 'utf8');
      } catch (err) {
        throw new BadParameterError(`cannot read ${source}: ${(err as Error).message}`);
      }
      text = withoutServerStatus(text, (name) => ctx.err.write(`note: kube_cluster "${name}": status (its agents) is the server's to say; not sent\n`));
      // Validate every document before anything is sent: nothing is written if one is wrong.
      const { docs, notes } = parseResourceDocuments(text, source);
      // What a Teleport dump holds that Keyway skips or stores for later, said before writing.
      for (const note of notes) ctx.err.write(`note: ${note}\n`);
      if (docs.length === 0) throw new BadParameterError(notes.length ? `${source} holds nothing Keyway takes (see the notes above)` : `${source} holds no resources`);
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
    .description('print a YAML declaration of various Keyway resources')
    .argument('<resources>', `KIND, KIND/NAME or a comma list of them (users,roles/dev); KIND one of ${GETTABLE.join(', ')}, kube_server, or all`)
    .addOption(new Option('--format <format>', 'output format').choices(['yaml', 'json', 'text']).default('yaml'))
    .option('--with-secrets', 'include secrets in resources like github connectors and oidc connectors', false)
    .action(async (arg: string, opts: { format: Format; withSecrets: boolean }, cmd: Command) => {
      const refs = parseRefs(arg);
      await ctx.withClient(cmd, async (client) => {
        const resources: Resource[] = [];
        const servers: KubeServer[] = [];
        for (const { kind, name } of refs) {
          if (kind === 'kube_server') {
            if (name) servers.push(JSON.parse((await client.call('getResource', { kind, name, withSecrets: false })).json) as KubeServer);
            else servers.push(...(await listKubeServers(client)));
          } else if (name) {
            const r = await client.call('getResource', { kind, name, withSecrets: opts.withSecrets });
            resources.push(JSON.parse(r.json) as Resource);
          } else {
            const list = await client.listAllResources(kind, opts.withSecrets);
            resources.push(...list.map((r) => JSON.parse(r.json) as Resource));
          }
        }
        if (opts.format !== 'text') {
          // kube_server documents are not a stored kind; the YAML/JSON writer takes them as they are.
          ctx.out.write(formatResources([...resources, ...(servers as unknown as Resource[])], opts.format));
          return;
        }
        const parts = [];
        if (refs.some((r) => r.kind !== 'kube_server')) parts.push(formatResources(resources, 'text'));
        if (refs.some((r) => r.kind === 'kube_server')) parts.push(kubeServerTable(servers));
        ctx.out.write(parts.filter(Boolean).join('\n'));
      });
    });

  program
    .command('rm')
    .alias('delete')
    .description('delete a resource')
    .argument('<resource>', 'KIND/NAME, e.g. roles/junior-devs')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const [kindPart, name, extra] = ref.split('/');
      if (!kindPart || !name || extra !== undefined) throw new BadParameterError(`"${ref}" is not KIND/NAME`);
      if (isKubeServerKind(kindPart)) throw new BadParameterError('a kube_server is an agent\'s heartbeat: stop the agent, or lock it out, instead of deleting it');
      const kind = resolveKind(kindPart);
      await ctx.withClient(cmd, async (client) => {
        await client.call('deleteResource', { kind, name });
        ctx.out.write(`${kind} "${name}" has been deleted\n`);
      });
    });
}

/**
 * `kwctl get kube_cluster/x` shows the agents serving it under `status`; that output fed back
 * to create (tctl's get > file, edit, create -f file) drops it rather than failing on it.
 * Text without such a status is passed on untouched, so error positions stay the file's own.
 */
export function withoutServerStatus(text: string, onDropped: (name: string) => void): string {
  if (!/^status:/m.test(text) && !text.includes('"status"')) return text;
  let docs;
  try {
    docs = parseAllDocuments(text);
  } catch {
    return text;
  }
  if (!Array.isArray(docs) || docs.some((d) => d.errors.length > 0)) return text;
  let dropped = false;
  const out = docs.map((d) => {
    const value: unknown = d.toJS();
    const list = Array.isArray(value) ? value : [value];
    for (const r of list) {
      if (r && typeof r === 'object' && (r as { kind?: unknown }).kind === 'kube_cluster' && 'status' in r) {
        delete (r as { status?: unknown }).status;
        onDropped(String((r as { metadata?: { name?: unknown } }).metadata?.name ?? ''));
        dropped = true;
      }
    }
    return value;
  });
  if (!dropped) return text;
  return out.map((v) => JSON.stringify(v)).join('\n---\n');
}
