import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BadParameterError } from '@keyway/errors';

/** How to reach and authenticate to one API server. */
export interface ClusterCredentials {
  /** Name Keyway serves it under. */
  name: string;
  server: URL;
  caPem?: string;
  tlsServerName?: string;
  insecureSkipTlsVerify: boolean;
  clientCertPem?: string;
  clientKeyPem?: string;
  /** Returns the current bearer token (service account tokens rotate, so it is re-read). */
  token?: () => string;
}

const kubeconfigSchema = z.object({
  clusters: z
    .array(
      z.object({
        name: z.string(),
        cluster: z
          .object({
            server: z.string().url(),
            'certificate-authority': z.string().optional(),
            'certificate-authority-data': z.string().optional(),
            'tls-server-name': z.string().optional(),
            'insecure-skip-tls-verify': z.boolean().optional(),
          })
          .passthrough(),
      }),
    )
    .default([]),
  users: z
    .array(
      z.object({
        name: z.string(),
        user: z
          .object({
            'client-certificate': z.string().optional(),
            'client-certificate-data': z.string().optional(),
            'client-key': z.string().optional(),
            'client-key-data': z.string().optional(),
            token: z.string().optional(),
            tokenFile: z.string().optional(),
            exec: z.unknown().optional(),
          })
          .passthrough(),
      }),
    )
    .default([]),
  contexts: z.array(z.object({ name: z.string(), context: z.object({ cluster: z.string(), user: z.string() }).passthrough() })).default([]),
  'current-context': z.string().optional(),
});

/**
 * Reads a kubeconfig: one cluster per context, named after the context, or only the
 * context named `only` (served under that name or `rename`).
 */
export function loadKubeconfig(path: string, opts: { only?: string; rename?: string } = {}): ClusterCredentials[] {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new BadParameterError(`cannot read kubeconfig ${path}: ${(err as Error).message}`, { path });
  }
  const parsed = kubeconfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadParameterError(`kubeconfig ${path} is not valid: ${issue?.path.join('.')}: ${issue?.message}`, { path });
  }
  const kc = parsed.data;
  const base = dirname(resolve(path));
  const file = (p: string) => readFileSync(resolve(base, p), 'utf8');
  const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
  const contexts = opts.only ? kc.contexts.filter((c) => c.name === opts.only) : kc.contexts;
  if (opts.only && contexts.length === 0) {
    throw new BadParameterError(`kubeconfig ${path} has no context "${opts.only}" (it has ${kc.contexts.map((c) => c.name).join(', ') || 'none'})`);
  }
  if (contexts.length === 0) throw new BadParameterError(`kubeconfig ${path} has no contexts`);
  return contexts.map((ctx) => {
    const cluster = kc.clusters.find((c) => c.name === ctx.context.cluster)?.cluster;
    const user = kc.users.find((u) => u.name === ctx.context.user)?.user;
    if (!cluster) throw new BadParameterError(`kubeconfig ${path}: context "${ctx.name}" names unknown cluster "${ctx.context.cluster}"`);
    if (!user) throw new BadParameterError(`kubeconfig ${path}: context "${ctx.name}" names unknown user "${ctx.context.user}"`);
    if (user.exec) throw new BadParameterError(`kubeconfig ${path}: user "${ctx.context.user}" uses an exec plugin; give the agent a certificate or token`);
    const caPem = cluster['certificate-authority-data'] ? b64(cluster['certificate-authority-data']) : cluster['certificate-authority'] ? file(cluster['certificate-authority']) : undefined;
    const clientCertPem = user['client-certificate-data'] ? b64(user['client-certificate-data']) : user['client-certificate'] ? file(user['client-certificate']) : undefined;
    const clientKeyPem = user['client-key-data'] ? b64(user['client-key-data']) : user['client-key'] ? file(user['client-key']) : undefined;
    const tokenFile = user.tokenFile;
    const token = user.token ? () => user.token as string : tokenFile ? rereading(resolve(base, tokenFile)) : undefined;
    return {
      name: opts.only && opts.rename ? opts.rename : ctx.name,
      server: new URL(cluster.server),
      insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] ?? false,
      ...(caPem ? { caPem } : {}),
      ...(cluster['tls-server-name'] ? { tlsServerName: cluster['tls-server-name'] } : {}),
      ...(clientCertPem ? { clientCertPem } : {}),
      ...(clientKeyPem ? { clientKeyPem } : {}),
      ...(token ? { token } : {}),
    };
  });
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Where the pod's service account is mounted: Kubernetes' default, or KEYWAY_SERVICE_ACCOUNT_DIR
 * for a pod that mounts a projected token elsewhere (automountServiceAccountToken: false).
 */
export function serviceAccountDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['KEYWAY_SERVICE_ACCOUNT_DIR'] || SA_DIR;
}

/**
 * The cluster this pod runs in, through its service account (as client-go's in-cluster
 * config). `saDir` is where Kubernetes mounts the account's token and CA.
 */
export function inClusterCredentials(name: string, env: NodeJS.ProcessEnv = process.env, saDir = serviceAccountDir(env)): ClusterCredentials {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port) {
    throw new BadParameterError('not running inside Kubernetes (KUBERNETES_SERVICE_HOST is unset): set kubeconfig_file');
  }
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return {
    name,
    server: new URL(`https://${hostPart}:${port}`),
    caPem: readFileSync(`${saDir}/ca.crt`, 'utf8'),
    insecureSkipTlsVerify: false,
    token: rereading(`${saDir}/token`),
  };
}

/** The namespace this pod runs in, from its service account; undefined outside Kubernetes. */
export function inClusterNamespace(saDir = serviceAccountDir()): string | undefined {
  try {
    return readFileSync(`${saDir}/namespace`, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Bound service account tokens are rotated by the kubelet: re-read the file each minute. */
function rereading(path: string): () => string {
  let value = '';
  let readAt = 0;
  return () => {
    if (Date.now() - readAt > 60_000) {
      value = readFileSync(path, 'utf8').trim();
      readAt = Date.now();
    }
    return value;
  };
}
