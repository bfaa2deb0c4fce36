export { formatTable, sessionDuration } from './table.js';
import type { Command } from 'commander';
import { KeywayError } from '@keyway/errors';

/**
 * Parses argv with a commander program and returns an exit code instead of exiting, so the
 * CLIs run the same in a terminal and in-process in tests. Errors print as `ERROR: ...`
 * (Teleport's CLIs do the same), with the message of typed errors and nothing more.
 */
export async function runProgram(
  program: Command,
  argv: string[],
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  applyOverrides(program, out, err);
  quietOnClosedPipe(out);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      return code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : ((e as { exitCode?: number }).exitCode ?? 1);
    }
    // One line, whatever the message carries (a server's multi-line text, a stray newline).
    err.write(`ERROR: ${(e instanceof Error ? e.message : String(e)).replace(/\s*[\r\n]+\s*/g, ' ').trim()}\n`);
    if (!(e instanceof KeywayError) && process.env['KEYWAY_DEBUG'] && e instanceof Error) err.write(`${e.stack ?? ''}\n`);
    return 1;
  }
}

/**
 * On every command, not only the program: commander copies output settings into a subcommand
 * when it is created, so a subcommand's own errors (a missing required option) would otherwise
 * go to the process's stderr instead of `err`.
 */
function applyOverrides(cmd: Command, out: NodeJS.WritableStream, err: NodeJS.WritableStream): void {
  cmd.configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err.write(s) }).showHelpAfterError().exitOverride();
  for (const c of cmd.commands) applyOverrides(c, out, err);
}
export { addVersionOption } from './version-option.js';

/**
 * `kwctl get roles | head` closes the pipe before everything is written: the reader has what
 * it wanted, so the program ends quietly, as Go's CLIs do on SIGPIPE, instead of crashing.
 */
function quietOnClosedPipe(out: NodeJS.WritableStream): void {
  if (out !== process.stdout || out.listenerCount('error') > 0) return;
  out.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}
