import { Command } from 'commander';
import { KeywayError } from '@keyway/errors';
import { COMMANDS } from './commands/index.js';
import type { CommandContext } from './context.js';
import { Prompter } from './prompt.js';

export interface RunOptions {
  argv: string[];
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  stdin?: NodeJS.ReadableStream;
}

/** Runs kw with the given arguments; returns the exit code instead of exiting. */
export async function runKw(o: RunOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  const program = new Command('kw')
    .description("Keyway's user CLI (like Teleport's tsh)")
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err.write(s) })
    .showHelpAfterError();
  const ctx: CommandContext = { out, err, prompter: () => new Prompter(o.stdin ?? process.stdin, out) };
  for (const register of COMMANDS) register(program, ctx);
  try {
    await program.parseAsync(o.argv, { from: 'user' });
    return 0;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      return code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : ((e as { exitCode?: number }).exitCode ?? 1);
    }
    err.write(`ERROR: ${e instanceof KeywayError ? e.message : e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
