import { Command } from 'commander';
import { runProgram } from '@keyway/cli';
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
export function runKw(o: RunOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  const program = new Command('kw').description("Keyway's user CLI (like Teleport's tsh)");
  const stdin = o.stdin ?? process.stdin;
  const ctx: CommandContext = { out, err, stdin, prompter: (output = out) => new Prompter(stdin, output) };
  for (const register of COMMANDS) register(program, ctx);
  return runProgram(program, o.argv, out, err);
}
