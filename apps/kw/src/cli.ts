import { Command } from 'commander';
import { addVersionOption, runProgram } from '@keyway/cli';
import { COMMANDS } from './commands/index.js';
import type { CommandContext } from './context.js';
import { Prompter } from './prompt.js';

export interface RunOptions {
  argv: string[];
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  stdin?: NodeJS.ReadableStream;
}

/** The groups `kw --help` lists commands in, as tsh's help does; signup is Keyway's own. */
const HELP_GROUPS: Record<string, string> = {
  login: 'Core Commands:',
  logout: 'Core Commands:',
  status: 'Core Commands:',
  version: 'Core Commands:',
  kube: 'Kubernetes Commands:',
  recordings: 'Session Commands:',
  play: 'Session Commands:',
  signup: 'Keyway Commands:',
};

/** Runs kw with the given arguments; returns the exit code instead of exiting. */
export function runKw(o: RunOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  const program = new Command('kw')
    .description("Keyway's user CLI (like Teleport's tsh)");
  addVersionOption(program, out);
  const stdin = o.stdin ?? process.stdin;
  const ctx: CommandContext = { out, err, stdin, prompter: (output = out) => new Prompter(stdin, output) };
  for (const register of COMMANDS) register(program, ctx);
  for (const c of program.commands) c.helpGroup(HELP_GROUPS[c.name()] ?? 'Other Commands:');
  return runProgram(program, o.argv, out, err);
}
