import { Command, Option } from 'commander';
import { addVersionOption, runProgram } from '@keyway/cli';
import type { AuthClient } from '@keyway/client';
import { COMMANDS, HELP_GROUPS } from './commands/index.js';
import { connectAuth, explainDenied, type CommandContext, type GlobalOptions } from './context.js';

export interface RunOptions {
  argv: string[];
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  stdin?: NodeJS.ReadableStream;
  env?: NodeJS.ProcessEnv;
}

/** Runs kwctl with the given arguments; returns the exit code instead of exiting. */
export function runKwctl(o: RunOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  const env = o.env ?? process.env;
  const program = new Command('kwctl')
    .description("Keyway's admin tool (Teleport's tctl): manage resources, users, tokens, locks and certificates of a Keyway cluster")
    .usage('[<flags>] <command> [<args> ...]')
    .addOption(new Option('-i, --identity <file>', "path to an identity file; with --auth-server, for remote connections (an identity file can be exported with 'kwctl auth sign')").env('KEYWAY_IDENTITY'))
    .addOption(new Option('--auth-server <host:port>', 'connect to this auth server or proxy instead of the local one [127.0.0.1:3025]').env('KEYWAY_AUTH_SERVER'))
    .addOption(new Option('-d, --data-dir <dir>', 'data dir of a local `keyway start`, where kwctl finds its admin identity (default ./.keyway)').env('KEYWAY_DATA_DIR'))
    .addHelpText(
      'after',
      '\nCredentials, first found wins: --identity; the admin identity in the data dir; your `kw login` (as tctl uses tsh\'s profile), allowed what your roles allow.\n',
    );
  const ctx: CommandContext = {
    out,
    err,
    env,
    readStdin: () => readAll(o.stdin ?? process.stdin),
    async withClient<T>(cmd: Command, fn: (client: AuthClient) => Promise<T>): Promise<T> {
      const conn = connectAuth(cmd.optsWithGlobals<GlobalOptions>(), env);
      try {
        return await fn(conn.client);
      } catch (e) {
        throw explainDenied(e, conn);
      } finally {
        conn.client.close();
      }
    },
  };
  addVersionOption(program, out, env, '--version');
  for (const register of COMMANDS) register(program, ctx);
  for (const c of program.commands) c.helpGroup(HELP_GROUPS[c.name()] ?? 'Other Commands:');
  program.commandsGroup('Other Commands:').helpCommand('help [command]', 'show help for a command');
  return runProgram(program, o.argv, out, err);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks).toString('utf8');
}
