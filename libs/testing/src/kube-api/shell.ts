/**
 * The fake container behind exec and attach: a tiny shell with a few commands, enough for
 * tests to check bytes, exit codes and stdin handling end to end.
 *
 *   echo [-n] ARGS...        ARGS joined by spaces (">&2" sends it to stderr)
 *   printf FORMAT ARGS...    %s/%d and \n, \t escapes
 *   cat                      stdin to stdout until EOF
 *   wc -c | wc -l            counts stdin bytes / lines
 *   head -c N /dev/zero      N zero bytes (or /dev/urandom: N deterministic pseudo-random bytes)
 *   sleep N, true, false, exit N, hostname, env, pwd, whoami
 *   sh -c 'SCRIPT'           ';', '&&', '||' lists of the above; `exit N` ends with code N
 * An unknown command at the top level is a failed start (like runc's "executable file not
 * found"); inside sh -c it is exit code 127.
 */
import type { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { UserInfo } from './auth.js';
import { drained } from './util.js';

export interface TerminalSize {
  width: number;
  height: number;
}

export interface ExecIo {
  /** null when the client sent no stdin. Ends when the client closes its stdin. */
  stdin: Readable | null;
  stdout: Writable;
  /** The same stream as stdout when tty. */
  stderr: Writable;
  tty: boolean;
  /** Emits 'resize' with a TerminalSize. */
  resize: EventEmitter;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export interface ExecContext {
  namespace: string;
  pod: string;
  container: string;
  /** The command for exec; empty for attach. */
  command: string[];
  kind: 'exec' | 'attach';
  user: UserInfo;
}

/** A command of the fake shell: returns the exit code. */
export type FakeCommand = (args: string[], io: ExecIo, ctx: ExecContext) => Promise<number> | number;

/** Thrown for a command that cannot start (becomes a Failure status, not an exit code). */
export class ExecStartError extends Error {}

export async function writeAll(w: Writable, chunk: Buffer | string, signal?: AbortSignal): Promise<void> {
  if (w.destroyed || w.writableEnded) return;
  if (!w.write(chunk)) await drained(w, signal);
}

/** Deterministic bytes: zeros, or an xorshift stream for /dev/urandom. */
export async function writeGenerated(w: Writable, total: number, kind: 'zero' | 'random', signal?: AbortSignal): Promise<void> {
  const size = 64 * 1024;
  let seed = 0x2545f491;
  let left = total;
  const zero = Buffer.alloc(size);
  while (left > 0 && !signal?.aborted && !w.destroyed) {
    const n = Math.min(size, left);
    let chunk: Buffer;
    if (kind === 'zero') chunk = zero.subarray(0, n);
    else {
      chunk = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        chunk[i] = seed & 0xff;
      }
    }
    await writeAll(w, chunk, signal);
    left -= n;
  }
}

/** Splits a shell script into words and operators, honouring quotes and backslashes. */
export function tokenize(script: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < script.length; i++) {
    const c = script[i] as string;
    if (c === "'") {
      const end = script.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated quote');
      cur += script.slice(i + 1, end);
      has = true;
      i = end;
    } else if (c === '"') {
      i++;
      while (i < script.length && script[i] !== '"') {
        if (script[i] === '\\' && i + 1 < script.length && '"\\$`'.includes(script[i + 1] as string)) i++;
        cur += script[i];
        i++;
      }
      if (i >= script.length) throw new Error('unterminated quote');
      has = true;
    } else if (c === '\\' && i + 1 < script.length) {
      cur += script[++i];
      has = true;
    } else if (c === ' ' || c === '\t' || c === '\n') {
      if (has) out.push(cur);
      cur = '';
      has = false;
      if (c === '\n') out.push(';');
    } else if (c === ';' || ((c === '&' || c === '|') && script[i + 1] === c)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
      out.push(c === ';' ? ';' : c + c);
      if (c !== ';') i++;
    } else {
      cur += c;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

class ExitSignal {
  constructor(readonly code: number) {}
}

function unescape(s: string): string {
  return s.replace(/\\n/g, '\n').replace(/\\t/g, '\t').replace(/\\\\/g, '\\');
}

export class FakeShell {
  constructor(private readonly extra: ReadonlyMap<string, FakeCommand> = new Map()) {}

  /** Runs argv as the container process would; resolves with its exit code. */
  async run(argv: string[], io: ExecIo, ctx: ExecContext): Promise<number> {
    try {
      return await this.command(argv, io, ctx, true);
    } catch (e) {
      if (e instanceof ExitSignal) return e.code;
      throw e;
    }
  }

  private async script(script: string, io: ExecIo, ctx: ExecContext): Promise<number> {
    const tokens = tokenize(script);
    let status = 0;
    let skip = false;
    let words: string[] = [];
    const flush = async () => {
      if (words.length > 0 && !skip) status = await this.command(words, io, ctx, false);
      words = [];
    };
    for (const t of tokens) {
      if (t === ';' || t === '&&' || t === '||') {
        await flush();
        skip = t === '&&' ? status !== 0 : t === '||' ? status === 0 : false;
      } else words.push(t);
    }
    await flush();
    return status;
  }

  private async command(argv: string[], io0: ExecIo, ctx: ExecContext, top: boolean): Promise<number> {
    let io = io0;
    const args: string[] = [];
    for (const a of argv) {
      if (a === '>&2' || a === '1>&2') io = { ...io, stdout: io0.stderr };
      else if (a === '2>&1') io = { ...io, stderr: io.stdout };
      else args.push(a);
    }
    const [name0, ...rest] = args;
    if (name0 === undefined) return 0;
    const name = name0.replace(/^\/(usr\/)?bin\//, '');
    const out = (s: string) => writeAll(io.stdout, io.tty ? s.replace(/\r?\n/g, '\r\n') : s, io.signal);
    const custom = this.extra.get(name) ?? this.extra.get(name0);
    if (custom) return custom(rest, io, ctx);
    switch (name) {
      case 'echo': {
        const noNewline = rest[0] === '-n';
        const words = noNewline ? rest.slice(1) : rest;
        await out(words.join(' ') + (noNewline ? '' : '\n'));
        return 0;
      }
      case 'printf': {
        const [fmt = '', ...vals] = rest;
        let i = 0;
        await out(unescape(fmt).replace(/%[sd%]/g, (m) => (m === '%%' ? '%' : (vals[i++] ?? ''))));
        return 0;
      }
      case 'cat': {
        if (rest.some((f) => f !== '-')) {
          await writeAll(io.stderr, `cat: ${rest[0] as string}: No such file or directory\n`);
          return 1;
        }
        if (!io.stdin) return 0;
        for await (const chunk of io.stdin.iterator({ destroyOnReturn: false })) {
          if (io.signal.aborted) break;
          await writeAll(io.stdout, chunk as Buffer, io.signal);
        }
        return 0;
      }
      case 'wc': {
        let bytes = 0;
        let lines = 0;
        if (io.stdin) {
          for await (const chunk of io.stdin.iterator({ destroyOnReturn: false })) {
            const b = chunk as Buffer;
            bytes += b.length;
            for (const x of b) if (x === 10) lines++;
          }
        }
        await out(`${rest.includes('-l') ? lines : bytes}\n`);
        return 0;
      }
      case 'head': {
        const n = Number(rest[rest.indexOf('-c') + 1]);
        const file = rest[rest.length - 1];
        if (!rest.includes('-c') || !Number.isFinite(n) || (file !== '/dev/zero' && file !== '/dev/urandom')) {
          await writeAll(io.stderr, 'head: only "head -c N /dev/zero|/dev/urandom" is supported here\n');
          return 1;
        }
        await writeGenerated(io.stdout, n, file === '/dev/zero' ? 'zero' : 'random', io.signal);
        return 0;
      }
      case 'sleep': {
        const ms = Number(rest[0] ?? 0) * 1000;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, ms);
          io.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
        });
        return 0;
      }
      case 'true':
        return 0;
      case 'false':
        return 1;
      case 'exit':
        throw new ExitSignal(Number(rest[0] ?? 0) & 0xff);
      case 'hostname':
        await out(`${ctx.pod}\n`);
        return 0;
      case 'pwd':
        await out('/\n');
        return 0;
      case 'whoami':
        await out('root\n');
        return 0;
      case 'env':
        await out(`PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME=${ctx.pod}\nKEYWAY_TEST_CONTAINER=${ctx.container}\n`);
        return 0;
      case 'sh':
      case 'bash':
      case 'ash': {
        if (rest[0] !== '-c' || rest[1] === undefined) {
          // An interactive shell: run stdin line by line.
          if (!io.stdin) return 0;
          let buf = '';
          for await (const chunk of io.stdin.iterator({ destroyOnReturn: false })) {
            buf += (chunk as Buffer).toString('utf8');
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).replace(/\r$/, '');
              buf = buf.slice(nl + 1);
              await this.script(line, io, ctx);
            }
          }
          return buf.trim() ? this.script(buf, io, ctx) : 0;
        }
        return this.script(rest[1], io, ctx);
      }
      default:
        if (top) {
          throw new ExecStartError(
            `failed to exec in container: failed to start exec: OCI runtime exec failed: exec failed: unable to start container process: exec: "${name0}": executable file not found in $PATH: unknown`,
          );
        }
        await writeAll(io.stderr, `sh: ${name0}: not found\n`);
        return 127;
    }
  }
}
