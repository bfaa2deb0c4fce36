import type { Prompter } from './prompt.js';

export interface CommandContext {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  prompter(): Prompter;
}
