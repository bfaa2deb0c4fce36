import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { AUTH_SERVER_NAME, writeIdentityFile, writeSecretFile, type HostCredentials } from '@keyway/client';
import type { KeywayConfig } from '@keyway/config';
import { BadParameterError, isAlreadyExists } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import { decodeIdentity, generateKeyPair } from '@keyway/pki';
import { PRESET_ROLES } from '@keyway/rbac';
import { renewalKeyOf } from './sso/renewal.js';
import { checkpointAuditChain, markSsoSeen, sweepSso, type Store } from '@keyway/store';
import { createGithubDriver, createOidcDriver, createSamlDriver } from '@keyway/sso';
import { AuditWorker, QueueAuditLog, SpooledAuditLog, StoreSink, type AuditLog } from '@keyway/audit';
import { AuthApi, HOST_CERT_TTL_MS } from './api/auth-api.js';
import { ChangeFeed } from './api/change-feed.js';
import { rateLimitsOf } from './api/rate-limit.js';
import { serveGrpc, type ServedGrpc } from './api/grpc-server.js';
import { loadOrCreateAuditKeys, loadOrCreateAuthorities, type CertAuthorities } from './authorities.js';
import { generateCaKeySecret } from './ca/index.js';
import { LocalUsers } from './users/local-users.js';
import { openStoreWhenReachable } from './wait-for-store.js';

export const ADMIN_IDENTITY_FILE = 'admin-identity.pem';
/** The auth service's audit spool, in its data dir (a proxy's is its own). */
const AUTH_AUDIT_SPOOL = 'audit-spool-auth';
const DEV_CA_KEY_FILE = 'ca-key.secret';
const ADMIN_CERT_TTL_MS = 30 * 24 * 60 * 60_000;
const SERVER_CERT_TTL_MS = 30 * 24 * 60 * 60_000;
const SWEEP_INTERVAL_MS = 60_000;
const PRESENCE_SWEEP_INTERVAL_MS = 1_000;
/** How often the audit chain's head is signed: truncation of what it covers is detected. */
const AUDIT_CHECKPOINT_INTERVAL_MS = 2_000;

export interface AuthServiceDeps {
  config: KeywayConfig;
  logger: Logger;
  /** The time source for logins, TOTP and certificates; tests move it to step through TOTP windows. */
  clock?: () => Date;
  /**
   * Lets SSO drivers talk to identity providers over plain http: only for test providers on
   * loopback. Never set from configuration.
   */
  allowHttpSsoProviders?: boolean;
  /** How often an SSO user's provider is asked again at renewal (default RECHECK_INTERVAL_MS); tests set 0. */
  ssoRecheckIntervalMs?: number;
}

/**
 * The auth service: config → create → serve → close. `create` opens the store and loads
 * (or, on first start, creates) the certificate authorities; `serve` binds the gRPC API.
 */
export class AuthService {
  readonly api: AuthApi;
  readonly cas: CertAuthorities;
  readonly adminIdentityPath: string;
  /** Where this process's events go; the in-process proxy shares it. */
  readonly audit: AuditLog;
  private readonly auditWorker: AuditWorker | undefined;
  private server: ServedGrpc | undefined;
  private port = 0;
  private readonly timers: NodeJS.Timeout[] = [];

  private constructor(
    private readonly deps: AuthServiceDeps,
    readonly store: Store,
    cas: CertAuthorities,
    caKey: string,
  ) {
    const { config, logger } = deps;
    this.cas = cas;
    const authn = config.auth_service.authentication;
    const users = new LocalUsers({
      store,
      clusterName: config.cluster_name,
      secondFactor: authn.second_factor,
      maxLoginAttempts: authn.max_login_attempts,
      lockoutDurationMs: authn.lockout_duration,
      logger,
      ...(deps.clock ? { now: deps.clock } : {}),
    });
    const redisUrl = config.auth_service.redis_url;
    if (redisUrl) {
      // Events go through the queue; this server's worker writes them to the store.
      this.audit = new QueueAuditLog({
        redisUrl,
        spoolPath: join(config.dataDir, AUTH_AUDIT_SPOOL),
        spoolMaxBytes: config.audit.spool_max_bytes,
        mode: config.audit.mode,
        logger,
      });
      this.auditWorker = new AuditWorker({ redisUrl, store, logger });
    } else {
      // Straight into the store, through the same spool: durable before a response, never lost.
      this.audit = new SpooledAuditLog({
        spoolDir: join(config.dataDir, AUTH_AUDIT_SPOOL),
        maxBytes: config.audit.spool_max_bytes,
        mode: config.audit.mode,
        sink: new StoreSink(store),
        logger,
      });
    }
    this.api = new AuthApi({
      feed: new ChangeFeed(),
      audit: this.audit,
      clusterName: config.cluster_name,
      store,
      cas,
      users,
      secondFactor: authn.second_factor,
      lockingMode: authn.locking_mode,
      logger,
      ...(deps.clock ? { now: deps.clock } : {}),
      rateLimits: rateLimitsOf(config.auth_service.rate_limits),
      authType: authn.type,
      ...(authn.connector_name ? { connectorName: authn.connector_name } : {}),
      ssoDrivers: ssoDrivers(store, deps.allowHttpSsoProviders === true),
      ssoRenewalKey: renewalKeyOf(caKey, config.cluster_name),
      ...(deps.ssoRecheckIntervalMs !== undefined ? { ssoRecheckIntervalMs: deps.ssoRecheckIntervalMs } : {}),
    });
    this.adminIdentityPath = join(config.dataDir, ADMIN_IDENTITY_FILE);
  }

  static async create(deps: AuthServiceDeps): Promise<AuthService> {
    const { config, logger } = deps;
    const caKey = resolveCaKey(config, logger);
    const store = await openStoreWhenReachable(config.storage, logger);
    try {
      const cas = await loadOrCreateAuthorities({ store, clusterName: config.cluster_name, caKey, logger, ...(deps.clock ? { clock: deps.clock } : {}) });
      await loadOrCreateAuditKeys({ store, caKey, logger });
      await createPresetRoles(store, logger);
      return new AuthService(deps, store, cas, caKey);
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  /** Binds the gRPC API and writes the local admin identity; returns the bound address. */
  async serve(): Promise<string> {
    const { config, logger } = this.deps;
    const listen = config.auth_service.listen_addr;
    const serverKey = generateKeyPair();
    const serverCert = this.signServerCert(serverKey.publicKeyPem, listen);
    const served = await serveGrpc(
      {
        api: this.api,
        cas: { userCa: this.cas.user.cert, hostCa: this.cas.host.cert, userCaPem: this.cas.user.certPem, hostCaPem: this.cas.host.certPem },
        certPem: serverCert,
        keyPem: serverKey.privateKeyPem,
        logger,
        timeouts: this.deps.config.auth_service.grpc,
      },
      listen,
    );
    const { setServerCertificate } = served;
    this.server = served;
    this.port = served.port;
    this.writeAdminIdentity();
    // Refresh the admin identity and the server's own certificate daily, so a long-running
    // auth server never presents, or leaves kwctl with, an expired one.
    this.timers.push(
      setInterval(() => {
        this.writeAdminIdentity();
        const key = generateKeyPair();
        setServerCertificate(this.signServerCert(key.publicKeyPem, listen), key.privateKeyPem);
      }, 24 * 60 * 60_000).unref(),
    );
    this.timers.push(
      setInterval(() => {
        this.store.deleteExpired().catch((err: unknown) => logger.warn({ err }, 'sweeping expired resources failed'));
        sweepSso(this.store).catch((err: unknown) => logger.warn({ err }, 'sweeping expired SSO requests failed'));
      }, SWEEP_INTERVAL_MS).unref(),
    );
    // Hosts that stop heartbeating drop out within a second of their TTL.
    this.timers.push(
      setInterval(() => {
        this.api.expireHosts().catch((err: unknown) => logger.warn({ err }, 'expiring host heartbeats failed'));
      }, PRESENCE_SWEEP_INTERVAL_MS).unref(),
    );
    this.timers.push(
      setInterval(() => {
        checkpointAuditChain(this.store).catch((err: unknown) => logger.warn({ err }, 'checkpointing the audit chain failed'));
      }, AUDIT_CHECKPOINT_INTERVAL_MS).unref(),
    );
    const address = `${hostOf(listen)}:${served.port}`;
    logger.info({ address, cluster: config.cluster_name }, 'auth service listening');
    return address;
  }

  get boundPort(): number {
    return this.port;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.server?.close(5_000);
    await this.audit.close();
    await this.auditWorker?.close();
    // The writer stops: sign where the chain ends, so deleting its last events is detected.
    const checkpoint = await checkpointAuditChain(this.store).catch((err: unknown) => this.deps.logger.warn({ err }, 'checkpointing the audit chain failed'));
    if (checkpoint) this.deps.logger.info({ seq: checkpoint.seq, hash: checkpoint.hash }, 'audit chain checkpointed');
    await this.store.close();
  }

  private signServerCert(publicKeyPem: string, listen: string): string {
    const host = hostOf(listen);
    const ips = new Set(['127.0.0.1', '::1']);
    const dns = new Set([AUTH_SERVER_NAME, 'localhost']);
    for (const addr of [host, ...this.deps.config.auth_service.public_addr.map((a) => hostOf(a))]) {
      if (!addr || addr === '0.0.0.0' || addr === '::') continue;
      if (isIP(addr)) ips.add(addr);
      else dns.add(addr);
    }
    return this.cas.host.signer.signHostCertificate({
      publicKey: publicKeyPem,
      identity: {
        username: `auth-${randomUUID()}`,
        roles: ['Auth'],
        traits: {},
        kubernetesUsers: [],
        kubernetesGroups: [],
        clusterName: this.deps.config.cluster_name,
        mfaVerified: false,
        systemRoles: ['Auth'],
      },
      dnsNames: [...dns],
      ipAddresses: [...ips],
      notAfter: new Date(Date.now() + SERVER_CERT_TTL_MS),
    }).certPem;
  }

  /**
   * Credentials for a proxy (or agent) running in this same process: signed directly, as
   * joining with a token would, minus the token.
   */
  issueHostCredentials(role: 'Proxy' | 'Kube', dnsNames: string[], ipAddresses: string[]): HostCredentials {
    const key = generateKeyPair();
    const hostId = randomUUID();
    const cert = this.cas.host.signer.signHostCertificate({
      publicKey: key.publicKeyPem,
      identity: {
        username: hostId,
        roles: [role],
        traits: {},
        kubernetesUsers: [],
        kubernetesGroups: [],
        clusterName: this.deps.config.cluster_name,
        mfaVerified: false,
        systemRoles: [role],
      },
      dnsNames,
      ipAddresses,
      notAfter: new Date(Date.now() + HOST_CERT_TTL_MS),
    });
    return {
      privateKeyPem: key.privateKeyPem,
      certPem: cert.certPem,
      hostCaPems: [this.cas.host.certPem],
      userCaPems: [this.cas.user.certPem],
      identity: decodeIdentity(cert.certPem),
    };
  }

  /** The identity kwctl uses on this host, as tctl does on a Teleport auth server. */
  private writeAdminIdentity(): void {
    const key = generateKeyPair();
    const cert = this.cas.host.signer.signHostCertificate({
      publicKey: key.publicKeyPem,
      identity: {
        username: 'admin',
        roles: ['Admin'],
        traits: {},
        kubernetesUsers: [],
        kubernetesGroups: [],
        clusterName: this.deps.config.cluster_name,
        mfaVerified: false,
        systemRoles: ['Admin'],
      },
      dnsNames: [],
      ipAddresses: [],
      notAfter: new Date(Date.now() + ADMIN_CERT_TTL_MS),
    });
    writeIdentityFile(this.adminIdentityPath, {
      privateKeyPem: key.privateKeyPem,
      certPem: cert.certPem,
      caPems: [this.cas.host.certPem, this.cas.user.certPem],
    });
    // kwctl finds the auth server next to the identity.
    writeSecretFile(join(this.deps.config.dataDir, 'auth-addr'), `${connectHost(this.deps.config.auth_service.listen_addr)}:${this.port}\n`);
  }
}

/**
 * The CA key-encryption secret: from KEYWAY_CA_KEY or auth_service.ca_key_file; for the
 * embedded (dev) store one is generated into the data dir with a warning.
 */
function resolveCaKey(config: KeywayConfig, logger: Logger): string {
  if (config.caKey) return config.caKey;
  const devKeyPath = join(config.dataDir, DEV_CA_KEY_FILE);
  if (config.storage.type !== 'embedded') {
    throw new BadParameterError(
      'no CA key: set KEYWAY_CA_KEY or auth_service.ca_key_file. The CA private keys are encrypted with it at rest; ' +
        'generate one with `openssl rand -base64 32` and keep it in your secret manager.',
    );
  }
  if (existsSync(devKeyPath)) return readFileSync(devKeyPath, 'utf8').trim();
  const secret = generateCaKeySecret();
  writeSecretFile(devKeyPath, `${secret}\n`);
  logger.warn({ path: devKeyPath }, 'no CA key configured: generated one into the data dir (fine for development; set KEYWAY_CA_KEY in production)');
  return secret;
}

async function createPresetRoles(store: Store, logger: Logger): Promise<void> {
  for (const role of PRESET_ROLES) {
    try {
      await store.putResource('role', role.metadata.name, role as unknown as Record<string, unknown>, { createOnly: true });
      logger.info({ role: role.metadata.name }, 'created preset role');
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }
}

export function hostOf(addr: string): string {
  const i = addr.lastIndexOf(':');
  const host = i >= 0 ? addr.slice(0, i) : addr;
  return host.replace(/^\[|\]$/g, '');
}

/** Where a local client reaches a listener bound to addr (a wildcard bind is reached on loopback). */
function connectHost(addr: string): string {
  const host = hostOf(addr);
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** One driver per connector kind, kept for the service's life (their discovery caches). */
function ssoDrivers(store: Store, allowHttp: boolean) {
  return {
    github: createGithubDriver({ allowHttpEndpoints: allowHttp }),
    oidc: createOidcDriver({ allowHttpIssuer: allowHttp }),
    saml: createSamlDriver({ assertionSeen: (id, notOnOrAfter) => markSsoSeen(store, `saml:${id}`, notOnOrAfter) }),
  };
}
