import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { BadParameterError, KeywayError } from '@keyway/errors';
import { formatResources, parseResourceDocuments, resolveKind, type Resource } from '@keyway/resources';
import type { CommandContext } from '../context.js';
import { isKubeServerKind } from './kube.js';

/** Connectors are edited with their secrets, or saving would blank them. */
const WITH_SECRETS = new Set(['github', 'oidc', 'saml']);

/** The editor, as the brief of `kwctl edit` says: $EDITOR, then $VISUAL, then vi. */
export function editorOf(env: NodeJS.ProcessEnv): string {
  return env['EDITOR']?.trim() || env['VISUAL']?.trim() || 'vi';
}

/** Runs the editor on the file through the shell, so EDITOR may carry arguments ("code --wait"). */
function runEditor(editor: string, file: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `${editor} "$1"`, 'kwctl-edit', file], { stdio: 'inherit', env });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/**
 * `kwctl edit KIND/NAME` (tctl edit): the resource in $EDITOR, saved only if nobody changed
 * it meanwhile. A failed save keeps the edited file and names it, so no edit is lost.
 */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('edit')
    .description('edit a Keyway resource in $EDITOR (then $VISUAL, then vi); saved only if nobody changed it meanwhile')
    .argument('<resource>', 'KIND/NAME, e.g. role/junior-devs')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const [kindPart, name, extra] = ref.split('/');
      if (!kindPart || !name || extra !== undefined) throw new BadParameterError(`"${ref}" is not KIND/NAME (e.g. role/junior-devs)`);
      if (isKubeServerKind(kindPart)) throw new BadParameterError("a kube_server is an agent's heartbeat and cannot be edited; edit the agent's configuration instead");
      const kind = resolveKind(kindPart);
      await ctx.withClient(cmd, async (client) => {
        const got = await client.call('getResource', { kind, name, withSecrets: WITH_SECRETS.has(kind) });
        // Status (a kube cluster's agents) is the server's to say, not part of what is saved.
        const { status: _status, ...current } = JSON.parse(got.json) as Resource & { status?: unknown };
        const before = formatResources([current as Resource], 'yaml');
        const dir = mkdtempSync(join(tmpdir(), 'kwctl-edit-'));
        const file = join(dir, `${kind}-${name}.yaml`);
        writeFileSync(file, before, { mode: 0o600 });
        const keep = (why: string) => new BadParameterError(`${why}; your edits are kept in ${file}`, { file });
        const editor = editorOf(ctx.env);
        const code = await runEditor(editor, file, ctx.env);
        if (code !== 0) throw keep(`the editor (${editor}) exited with status ${code}; nothing was saved`);
        const after = readFileSync(file, 'utf8');
        if (after === before) {
          rmSync(dir, { recursive: true, force: true });
          ctx.out.write('edit canceled, no changes\n');
          return;
        }
        let doc: Resource;
        try {
          const { docs } = parseResourceDocuments(after, file);
          if (docs.length !== 1 || !docs[0]) throw new BadParameterError(`${file} must hold exactly one resource (it holds ${docs.length})`);
          doc = docs[0];
        } catch (err) {
          throw keep(`nothing was saved: ${(err as Error).message}`);
        }
        if (doc.kind !== kind || doc.metadata.name !== name) {
          throw keep(`nothing was saved: the file is now ${doc.kind} "${doc.metadata.name}"; kwctl edit changes ${kind} "${name}" only (create the new one with kwctl create)`);
        }
        try {
          await client.call('createResources', { resources: [{ kind, name, json: JSON.stringify(doc), revision: got.revision }], force: true });
        } catch (err) {
          if (err instanceof KeywayError && err.kind === 'CompareFailed') {
            throw new BadParameterError(
              `${kind} "${name}" was changed by someone else while you edited it; nothing was saved. Your edits are kept in ${file}: compare with kwctl get ${kind}/${name}, then kwctl create -f ${file} to overwrite, or kwctl edit ${kind}/${name} again`,
              { file, kind, name },
              { cause: err },
            );
          }
          // Whatever else went wrong (a refusal, an unreachable server), the edits stay on disk.
          if (err instanceof KeywayError) throw new KeywayError(err.kind, `nothing was saved: ${err.message}; your edits are kept in ${file}`, { ...err.data, file }, { cause: err });
          throw keep(`nothing was saved: ${(err as Error).message}`);
        }
        rmSync(dir, { recursive: true, force: true });
        ctx.out.write(`${kind} "${name}" has been updated\n`);
      });
    });
}
