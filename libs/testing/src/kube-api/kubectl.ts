/** Running the real kubectl against a test API server (or anything else) from tests. */
import { dirname, join } from 'node:path';
import { runCommand, startProcess, type LongRunning, type RunResult } from '../process.js';

/** The kubectl binary: $KEYWAY_KUBECTL, or kubectl on PATH. */
export const KUBECTL = process.env['KEYWAY_KUBECTL'] ?? 'kubectl';

export interface KubectlOptions {
  kubeconfig: string;
  /** Added to the environment, e.g. { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' } to force SPDY. */
  env?: Record<string, string | undefined>;
  /** Piped to stdin (runKubectl only). */
  input?: string;
  timeoutMs?: number;
  /** Discovery cache; default a kube-cache folder beside the kubeconfig, so tests never share ~/.kube. */
  cacheDir?: string;
}

function prepare(args: string[], opts: KubectlOptions): { argv: string[]; env: NodeJS.ProcessEnv } {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  delete env['KUBECONFIG'];
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v === undefined) delete env[k];
  return { argv: ['--kubeconfig', opts.kubeconfig, '--cache-dir', opts.cacheDir ?? join(dirname(opts.kubeconfig), 'kube-cache'), ...args], env };
}

/** Runs kubectl to completion (killed after timeoutMs, default 30 s). */
export function runKubectl(args: string[], opts: KubectlOptions): Promise<RunResult> {
  const { argv, env } = prepare(args, opts);
  return runCommand(KUBECTL, argv, { env, ...(opts.input !== undefined ? { input: opts.input } : {}), timeoutMs: opts.timeoutMs ?? 30_000 });
}

/** Starts a long-running kubectl (get -w, logs -f, port-forward); stop it with .stop(). */
export function startKubectl(args: string[], opts: KubectlOptions): LongRunning {
  const { argv, env } = prepare(args, opts);
  return startProcess(KUBECTL, argv, env);
}
