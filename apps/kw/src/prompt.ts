import { createInterface } from 'node:readline';

/**
 * Reads answers line by line. On a terminal, secret answers are not echoed; from a pipe
 * (scripts, tests) the lines are read as they come.
 */
export class Prompter {
  private readonly lines: AsyncIterator<string>;
  private readonly rl;
  private muted = false;

  constructor(
    private readonly input: NodeJS.ReadableStream,
    private readonly output: NodeJS.WritableStream,
  ) {
    const tty = (input as { isTTY?: boolean }).isTTY === true;
    this.rl = createInterface({
      input,
      output: tty ? (new MutableOutput(output, () => this.muted) as unknown as NodeJS.WritableStream) : undefined,
      terminal: tty,
    });
    this.lines = this.rl[Symbol.asyncIterator]();
  }

  async ask(question: string, opts: { secret?: boolean } = {}): Promise<string> {
    this.output.write(question);
    this.muted = opts.secret === true;
    const next = await this.lines.next();
    this.muted = false;
    if (opts.secret) this.output.write('\n');
    if (next.done) throw new Error('input ended before the answer');
    return next.value;
  }

  close(): void {
    this.rl.close();
  }
}

/** Swallows readline's echo while a secret is typed. */
class MutableOutput {
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly isMuted: () => boolean,
  ) {}
  write(chunk: string | Uint8Array, ...rest: unknown[]): boolean {
    if (this.isMuted()) return true;
    return (this.out.write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }
  on(): this {
    return this;
  }
  get columns(): number {
    return (this.out as { columns?: number }).columns ?? 80;
  }
}
