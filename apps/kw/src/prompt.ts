import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { BadParameterError } from '@keyway/errors';

/**
 * Reads answers line by line. On a terminal, secret answers are not echoed; from a pipe
 * (scripts, tests) the lines are read as they come.
 */
export class Prompter {
  private readonly lines: AsyncIterator<string>;
  private readonly rl;
  private readonly echo: MutableOutput | undefined;
  private muted = false;
  private interrupted = false;

  constructor(
    private readonly input: NodeJS.ReadableStream,
    private readonly output: NodeJS.WritableStream,
  ) {
    const tty = (input as { isTTY?: boolean }).isTTY === true;
    // readline echoes what is typed to its output, and also listens on it (resize) and stops
    // listening when closed: it needs a real stream, so the muting sits in one.
    this.echo = tty ? new MutableOutput(output, () => this.muted) : undefined;
    this.rl = createInterface({ input, ...(this.echo ? { output: this.echo } : {}), terminal: tty, prompt: '' });
    // Ctrl-C at a prompt (the terminal is raw, so no signal comes): end the wait instead of hanging.
    this.rl.on('SIGINT', () => {
      this.interrupted = true;
      this.rl.close();
    });
    this.lines = this.rl[Symbol.asyncIterator]();
  }

  async ask(question: string, opts: { secret?: boolean } = {}): Promise<string> {
    this.output.write(question);
    this.muted = opts.secret === true;
    const next = await this.lines.next();
    this.muted = false;
    if (opts.secret) this.output.write('\n');
    if (this.interrupted) throw new BadParameterError('interrupted');
    if (next.done) throw new BadParameterError('the input ended before an answer was given');
    return next.value;
  }

  close(): void {
    this.rl.close();
    this.echo?.detach();
  }
}

/** The terminal as readline sees it, swallowing its echo while a secret is typed. */
class MutableOutput extends Writable {
  private readonly onResize = () => this.emit('resize');

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly isMuted: () => boolean,
  ) {
    super({ decodeStrings: false });
    out.on('resize', this.onResize);
  }

  get isTTY(): boolean {
    return true;
  }

  get columns(): number {
    return (this.out as { columns?: number }).columns ?? 80;
  }

  get rows(): number {
    return (this.out as { rows?: number }).rows ?? 24;
  }

  override _write(chunk: string | Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.isMuted()) this.out.write(chunk);
    cb();
  }

  detach(): void {
    this.out.removeListener('resize', this.onResize);
  }
}
