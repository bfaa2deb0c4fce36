import { fileURLToPath } from 'node:url';

/** The kw executable kubeconfig exec plugins run (the same file from source and from the bundle). */
export function kwExecutable(env: NodeJS.ProcessEnv = process.env): string {
  return env['KW_EXECUTABLE'] ?? fileURLToPath(new URL('../bin/kw.mjs', import.meta.url));
}
