import { Command, Option } from 'commander';
import { runProgram } from '@keyway/cli';
import type { AuthClient } from '@keyway/client';
import { COMMANDS } from './commands/index.js';
import { connectAuth, type CommandContext, type GlobalOptions } from './context.js';

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
    .description("Keyway's admin tool (like Teleport's tctl)")
    .addOption(new Option('-i, --identity <file>', 'admin identity file').env('KEYWAY_IDENTITY'))
    .addOption(new Option('--auth-server <host:port>', 'auth server address').env('KEYWAY_AUTH_SERVER'))
    .addOption(new Option('-d, --data-dir <dir>', 'data dir of a local `keyway start` (default ./.keyway)').env('KEYWAY_DATA_DIR'));
  const ctx: CommandContext = {
    out,
    err,
    readStdin: () => readAll(o.stdin ?? process.stdin),
    async withClient<T>(cmd: Command, fn: (client: AuthClient) => Promise<T>): Promise<T> {
      const client = connectAuth(cmd.optsWithGlobals<GlobalOptions>(), env);
      try {
        return await fn(client);
      } finally {
        client.close();
      }
    },
  };
  for (const register of COMMANDS) register(program, ctx);
  return runProgram(program, o.argv, out, err);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks).toString('utf8');
}
