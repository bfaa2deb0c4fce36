import { spawn, type IPty } from 'node-pty';

/** A command running on a real pseudo-terminal: what it printed, typing into it, its exit. */
export interface Terminal {
  /** Everything printed so far, with terminal control sequences removed. */
  text(): string;
  /** Resolves with the first match of `re` in what is printed after `from` (default: everything). */
  waitFor(re: RegExp, timeoutMs?: number, from?: number): Promise<RegExpExecArray>;
  /** Types `s` (use '\r' for Enter, as a terminal sends it). */
  type(s: string): void;
  exited: Promise<number>;
  kill(): void;
}

// CSI and OSC sequences, and the carriage returns a terminal adds before each newline.
const CONTROL = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\r/g;

export function startTerminal(file: string, args: string[], env: NodeJS.ProcessEnv): Terminal {
  const pty: IPty = spawn(file, args, { name: 'xterm', cols: 120, rows: 40, env: env as Record<string, string> });
  let raw = '';
  const waiters = new Set<() => void>();
  pty.onData((d) => {
    raw += d;
    for (const w of waiters) w();
  });
  const exited = new Promise<number>((resolve) => pty.onExit(({ exitCode }) => resolve(exitCode)));
  const text = () => raw.replace(CONTROL, '');
  return {
    text,
    waitFor(re, timeoutMs = 30_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(text().slice(from));
          if (!m) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(m);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${re} in:\n${text()}`));
        }, timeoutMs);
        waiters.add(check);
        void exited.then(() => setTimeout(check, 50));
        check();
      });
    },
    type: (s) => pty.write(s),
    exited,
    kill: () => pty.kill(),
  };
}
