import { join } from 'node:path';
import { Readable } from 'node:stream';
import { KubeAgent } from '@keyway/agent';
import { fileIdentityStore } from '@keyway/client';
import type { Stack } from '@keyway/auth';
import { loadKubeconfig } from '@keyway/forwarder';
import { runKwctl } from '@keyway/kwctl';
import { silentLogger, type Logger } from '@keyway/log';
import { captureStream } from '@keyway/testing';

export interface KwctlResult {
  code: number;
  out: string;
  err: string;
}

/** kwctl in-process against the admin identity in a data dir (resolved at call time). */
export function kwctlIn(dataDir: () => string): (args: string[], stdin?: string) => Promise<KwctlResult> {
  return async (args, stdin) => {
    const out = captureStream();
    const err = captureStream();
    const code = await runKwctl({ argv: ['--data-dir', dataDir(), ...args], out, err, env: {}, ...(stdin !== undefined ? { stdin: Readable.from([stdin]) } : {}) });
    return { code, out: out.text(), err: err.text() };
  };
}

/**
 * Joins a kube agent to the stack with a fresh token, serving the first context of
 * `kubeconfig` as `cluster`, and waits until the proxy can route to it.
 */
export async function startTestAgent(
  stack: Stack,
  o: { kubeconfig: string; cluster: string; labels: Record<string, string>; dir: string; kwctl: (args: string[]) => Promise<KwctlResult>; logger?: Logger },
): Promise<KubeAgent> {
  const token = /The invite token: (\w+)/.exec((await o.kwctl(['tokens', 'add', '--type=kube'])).out)?.[1];
  if (!token) throw new Error('kwctl tokens add printed no token');
  const [creds] = loadKubeconfig(o.kubeconfig);
  if (!creds) throw new Error(`${o.kubeconfig} has no context`);
  const agent = await KubeAgent.create({
    proxyAddr: stack.proxyAddress as string,
    token,
    identityStore: fileIdentityStore(join(o.dir, `agent-${o.cluster}.pem`)),
    caPins: [],
    clusters: [{ creds: { ...creds, name: o.cluster }, labels: o.labels }],
    logger: o.logger ?? silentLogger(),
  });
  agent.serve();
  await waitUntil(() => stack.proxy?.registry.pick(o.cluster) !== undefined, `a route to cluster ${o.cluster}`);
  return agent;
}

export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
