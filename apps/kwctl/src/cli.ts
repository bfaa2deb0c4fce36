import { Command, Option } from 'commander';
import { KeywayError } from '@keyway/errors';
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
export async function runKwctl(o: RunOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  const env = o.env ?? process.env;
  const program = new Command('kwctl')
    .description("Keyway's admin tool (like Teleport's tctl)")
    .addOption(new Option('-i, --identity <file>', 'admin identity file').env('KEYWAY_IDENTITY'))
    .addOption(new Option('--auth-server <host:port>', 'auth server address').env('KEYWAY_AUTH_SERVER'))
    .addOption(new Option('-d, --data-dir <dir>', 'data dir of a local `keyway start` (default ./.keyway)').env('KEYWAY_DATA_DIR'))
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err.write(s) })
    .showHelpAfterError();
  const ctx: CommandContext = {
    out,
    err,
    readStdin: () => readAll(o.stdin ?? process.stdin),
    connect: (cmd) => connectAuth(cmd.optsWithGlobals<GlobalOptions>(), env),
  };
  for (const register of COMMANDS) register(program, ctx);
  for (const c of program.commands) applyExitOverride(c);
  try {
    await program.parseAsync(o.argv, { from: 'user' });
    return 0;
  } catch (e) {
    const code = (e as { code?: string; exitCode?: number }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      return code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : ((e as { exitCode?: number }).exitCode ?? 1);
    }
    err.write(`ERROR: ${e instanceof KeywayError ? e.message : e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

function applyExitOverride(cmd: Command): void {
  cmd.exitOverride();
  for (const c of cmd.commands) applyExitOverride(c);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks).toString('utf8');
}
