import { CommanderError, Option, type Command } from 'commander';
import { versionLine } from '@keyway/log';

/**
 * `-v, --version` that works out the line only when asked: commander's own .version() wants
 * the text up front, and the line asks git for the commit, which kw's exec plugin path (run
 * by every kubectl) must not pay for.
 */
export function addVersionOption(program: Command, out: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env, flags = '-v, --version'): void {
  program.addOption(new Option(flags, 'print the version'));
  program.on('option:version', () => {
    const line = versionLine(env);
    out.write(`${line}\n`);
    throw new CommanderError(0, 'commander.version', line);
  });
}
