import { z } from 'zod';
import { parseDuration } from '@keyway/resources';

const duration = z.string().transform((s, ctx) => {
  try {
    return parseDuration(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:3025 or :3080');

const authentication = z
  .object({
    type: z.enum(['local', 'github', 'oidc', 'saml']).default('local'),
    second_factor: z.enum(['otp', 'off']).default('otp'),
    connector_name: z.string().optional(),
    // Failed logins before the user is locked, and for how long.
    max_login_attempts: z.number().int().positive().default(5),
    lockout_duration: duration.default(20 * 60_000),
    // Teleport's: strict refuses requests when a proxy's view of locks is stale; roles can ask for strict too.
    locking_mode: z.enum(['best_effort', 'strict']).default('best_effort'),
  })
  .strict();

const storage = z
  .object({
    type: z.enum(['postgres', 'embedded']).optional(),
    conn_string: z.string().optional(),
    data_dir: z.string().optional(),
  })
  .strict();

const authService = z
  .object({
    enabled: z.boolean().default(true),
    listen_addr: hostPort.default('127.0.0.1:3025'),
    public_addr: z.array(z.string()).default([]),
    storage: storage.prefault({}),
    redis_url: z.string().optional(),
    ca_key_file: z.string().optional(),
    authentication: authentication.prefault({}),
  })
  .strict();

const proxyKubernetes = z
  .object({
    enabled: z.boolean().default(true),
    listen_addr: hostPort.optional(),
    public_addr: z.array(z.string()).default([]),
    kubeconfig_file: z.string().optional(),
  })
  .strict();

const kubeObjectName = z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'a Kubernetes object name: lower-case letters, digits, "-" and "."');

const proxyService = z
  .object({
    enabled: z.boolean().default(true),
    listen_addr: hostPort.default('0.0.0.0:3080'),
    public_addr: z.array(z.string()).default([]),
    redis_url: z.string().optional(),
    kubernetes: proxyKubernetes.prefault({}),
    /**
     * Keep the proxy's credentials in this Secret of the cluster its pod runs in (through its
     * service account), not in data_dir: a rescheduled pod keeps its identity without a new token.
     */
    identity_secret: kubeObjectName.optional(),
    /** The Secret's namespace; by default the pod's own. */
    identity_secret_namespace: z.string().optional(),
  })
  .strict();

const kubernetesService = z
  .object({
    enabled: z.boolean().default(false),
    proxy_addr: z.string().optional(),
    join_params: z.object({ token_name: z.string(), method: z.literal('token').default('token') }).strict().optional(),
    kubeconfig_file: z.string().optional(),
    kube_cluster_name: z.string().optional(),
    labels: z.record(z.string(), z.string()).default({}),
    /**
     * Keep the agent's credentials in this Secret of the cluster it runs in, not in data_dir:
     * a rescheduled pod keeps its identity without a new join token.
     */
    identity_secret: kubeObjectName.optional(),
    /** The Secret's namespace; by default the pod's own (from its service account). */
    identity_secret_namespace: z.string().optional(),
  })
  .strict();

export const configSchema = z
  .object({
    version: z.literal('v1').default('v1'),
    cluster_name: z
      .string()
      .regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/, 'letters, digits, ".", "_" and "-", at most 63 characters')
      .default('keyway'),
    data_dir: z.string().optional(),
    /** Where a separate proxy reaches the auth service (host:port). */
    auth_server: hostPort.optional(),
    /** How a separate proxy or agent joins: a token from `kwctl tokens add`. */
    join_params: z.object({ token_name: z.string(), method: z.literal('token').default('token') }).strict().optional(),
    /** sha256:<hex> of the host CA's public key (kwctl status prints it); without it the first contact is trusted. */
    ca_pin: z.array(z.string()).default([]),
    audit: z
      .object({
        mode: z.enum(['best-effort', 'strict']).default('best-effort'),
        spool_max_bytes: z.number().int().positive().default(256 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    log: z.object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info') }).strict().prefault({}),
    auth_service: authService.prefault({}),
    proxy_service: proxyService.prefault({}),
    kubernetes_service: kubernetesService.prefault({}),
  })
  .strict();

export type KeywayConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
