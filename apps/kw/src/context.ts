import type { Prompter } from './prompt.js';

export interface CommandContext {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Questions to the person, written to `output` (default: out). */
  prompter(output?: NodeJS.WritableStream): Prompter;
}
