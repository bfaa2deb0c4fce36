import { z } from 'zod';
import { parseDuration } from '@keyway/resources';
import { yamlBoolean } from './go-yaml.js';

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

/** Upstream bounds per cluster (the forwarder's defaults apply to what is left out). */
const upstreamLimits = z
  .object({
    /** Short requests in flight for everybody (default 256). */
    max_requests: z.number().int().positive().optional(),
    /** Short requests in flight per Kubernetes user; more wait their turn (default 64). */
    max_requests_per_user: z.number().int().positive().optional(),
    /** Short requests of one user waiting for a slot; beyond, 429 (default 512). */
    queued_requests_per_user: z.number().int().nonnegative().optional(),
    /** Longest wait for a slot before 429 (default 30s). */
    queue_timeout: duration.optional(),
    /** Watches, logs, exec, attach, port-forward open for everybody (default 4096). */
    max_streams: z.number().int().positive().optional(),
    /** Of those, per Kubernetes user; the next is answered 429 (default 200). */
    max_streams_per_user: z.number().int().positive().optional(),
    /** No response head from the API server within this: 504 (default 90s). */
    response_timeout: duration.optional(),
    /** Connecting to the API server (default 10s). */
    connect_timeout: duration.optional(),
  })
  .strict();

/** Listener timeouts of the proxy (its defaults apply to what is left out). */
const proxyTimeouts = z
  .object({
    /** TCP connection to a complete ClientHello (default 10s). */
    client_hello: duration.optional(),
    /** The TLS handshake (default 10s). */
    handshake: duration.optional(),
    /** Complete request headers on an authenticated kube connection (default 30s). */
    headers: duration.optional(),
    /** Life of a kube connection without a valid client certificate, and web API request headers (default 10s). */
    unauthenticated: duration.optional(),
    /** Keep-alive idle of an authenticated kube connection, HTTP/1.1 or HTTP/2 (default 90s). */
    idle: duration.optional(),
    /** A whole web API request (default 30s). */
    web_request: duration.optional(),
    /** Keep-alive idle of a web API connection (default 5s). */
    web_idle: duration.optional(),
    /** An agent's tunnel answering the proxy's first question (default 10s). */
    tunnel_hello: duration.optional(),
    /** The relay to auth: the client's first application data, i.e. its TLS handshake done (default 10s). */
    relay_first_byte: duration.optional(),
    /** How old the proxy's view of locks may be before locking_mode strict refuses requests (default 3s). */
    lock_staleness: duration.optional(),
    /** The relay to auth: no bytes either way (default 10m; auth's keepalive pings keep live connections busy). */
    relay_idle: duration.optional(),
  })
  .strict();

/** The auth gRPC port's connection management (the auth service's defaults apply to what is left out). */
const grpcTimeouts = z
  .object({
    /** Ping each client this often (default 1m). */
    keepalive_interval: duration.optional(),
    /** A client that does not answer a ping within this is dropped (default 20s). */
    keepalive_timeout: duration.optional(),
    /** A connection with no call for this long is closed (default 1m). */
    max_connection_idle: duration.optional(),
  })
  .strict();

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

function rateBucket(burst: number, periodMs: number) {
  return z.object({ burst: z.number().int().positive().default(burst), period: duration.default(periodMs) }).strict().prefault({});
}

const storage = z
  .object({
    type: z.enum(['postgres', 'embedded']).optional(),
    conn_string: z.string().optional(),
    data_dir: z.string().optional(),
  })
  .strict();

const authService = z
  .object({
    enabled: yamlBoolean.default(true),
    listen_addr: hostPort.default('127.0.0.1:3025'),
    public_addr: z.array(z.string()).default([]),
    storage: storage.prefault({}),
    redis_url: z.string().optional(),
    ca_key_file: z.string().optional(),
    authentication: authentication.prefault({}),
    // Token buckets per auth replica for login, signup/reset, user token look-ups and joins:
    // `burst` calls, then one more every `period`. Per client address (behind a proxy, the one
    // its signed relay header vouches for) and per user name or token.
    rate_limits: z
      .object({
        per_address: rateBucket(20, 1_000),
        per_user: rateBucket(10, 5_000),
      })
      .strict()
      .prefault({}),
    grpc: grpcTimeouts.prefault({}),
  })
  .strict();

const proxyKubernetes = z
  .object({
    enabled: yamlBoolean.default(true),
    listen_addr: hostPort.optional(),
    public_addr: z.array(z.string()).default([]),
    kubeconfig_file: z.string().optional(),
    /** Bounds on the clusters the proxy serves itself (kubeconfig_file). */
    upstream: upstreamLimits.prefault({}),
  })
  .strict();

const kubeObjectName = z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'a Kubernetes object name: lower-case letters, digits, "-" and "."');

const proxyService = z
  .object({
    enabled: yamlBoolean.default(true),
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
    timeouts: proxyTimeouts.prefault({}),
    /**
     * Teleport's: certificates a browser trusts for the web routes (SSO callbacks, SCIM), chosen
     * by the name the client asks for; kube, tunnel and auth routes keep the cluster's own.
     */
    https_keypairs: z.array(z.object({ cert_file: z.string().min(1), key_file: z.string().min(1) }).strict()).default([]),
    /** Teleport's: read the https_keypairs files again this often ("1h"); 0 (the default) never. */
    https_keypairs_reload_interval: duration.default(0),
  })
  .strict();

const kubernetesService = z
  .object({
    enabled: yamlBoolean.default(false),
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
    /** Bounds on what the agent asks of each API server it serves. */
    upstream: upstreamLimits.prefault({}),
  })
  .strict();

export const configSchema = z
  .object({
    // Keyway's own files are v1; Teleport's v1, v2 and v3 read the same here (teleport.ts maps their spellings).
    version: z.enum(['v1', 'v2', 'v3']).default('v1'),
    cluster_name: z
      .string()
      .regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/, 'letters, digits, ".", "_" and "-", at most 63 characters')
      .default('keyway'),
    data_dir: z.string().optional(),
    /** This host's name in heartbeats (kwctl get kube_clusters); by default the OS host name. Teleport's teleport.nodename. */
    nodename: z.string().min(1).max(253).optional(),
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
