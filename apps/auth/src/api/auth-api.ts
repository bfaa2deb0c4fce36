import { randomBytes, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { sql } from 'kysely';
import { GRPC_MAX_MESSAGE_BYTES } from '@keyway/client';
import { AccessDeniedError, BadParameterError, NotFoundError } from '@keyway/errors';
import { KEYWAY_VERSION, type Logger } from '@keyway/log';
import { fingerprint, spkiPin, subjectPublicKey, type Identity, type SystemRole } from '@keyway/pki';
import { certTtl, checkAccess, identityKubeGrants, userTraits, visibleKubeClusters } from '@keyway/rbac';
import { RESOURCE_LIMITS, parseResource, parseResourceDocuments, redactSecrets, type LockResource, type Resource, type RoleResource, type UserResource } from '@keyway/resources';
import { MAX_AUDIT_EVENT_BYTES, STORED_KINDS, appendAuditEvents, auditEventProblem, type Db, type Store, type StoredKind, type StoredResource } from '@keyway/store';
import type { CertAuthorities } from '../authorities.js';
import { SsoLogins, listSsoConnectors, type ConnectorKind } from '../sso/logins.js';
import { ScimService, scimTokenName } from '../sso/scim.js';
import { RECHECK_INTERVAL_MS, SsoRenewals } from '../sso/renewal.js';
import { newSecretKey, type SsoDriver } from '@keyway/sso';
import { DEFAULT_USER_TOKEN_TTL_MS, LOGIN_FAILED, LoginFailure, checkUserTokenTtl, type IssuedUserToken, type LocalUsers } from '../users/local-users.js';
import { readRule, redactForRead, type ReadMethod, type ReadableKind } from './authorization.js';
import { AuthRateLimits, DEFAULT_RATE_LIMITS, type AuthRateLimitOptions } from './rate-limit.js';
import { describeCaller, requireAuthenticated, type Caller } from './caller.js';
import { authorizeCreateBeforeParse, checkHeartbeat } from './input-bounds.js';
import { KUBE_SERVER, kubeServerResources, type ReadResource } from './kube-servers.js';
import type { Change, ChangeFeed } from './change-feed.js';
import { AUTH_PREFERENCE_KIND, authPreferenceChange, type LockingMode } from './auth-preference.js';
import { EVENTS, auditEvent, type AuditLog, type EventKind } from '@keyway/audit';
import {
  findSessionRecording,
  getSessionChunks,
  listSessionRecordings,
  putSessionChunk,
  searchAuditEvents,
  verifyAuditChain,
  type AuditEventRecord,
  type SessionRecordingRecord,
} from '@keyway/store';

export const SERVER_VERSION = KEYWAY_VERSION;
/** Host certificates last long enough to survive a long weekend offline; agents renew them. */
export const HOST_CERT_TTL_MS = 7 * 24 * 60 * 60_000;
const DEFAULT_JOIN_TOKEN_TTL_MS = 30 * 60_000;
const MAX_JOIN_TOKEN_TTL_MS = 30 * 24 * 60 * 60_000;
/** SCIM tokens are pasted into an IdP's settings; they last a year unless asked for less. */
const MAX_SCIM_TOKEN_TTL_MS = 365 * 24 * 60 * 60_000;
const MAX_LOCK_TTL_MS = 10 * 365 * 24 * 60 * 60_000;
const JOINABLE_ROLES = new Set<SystemRole>(['Kube', 'Proxy']);
/** ListResources pages: the default and largest count, and a size that leaves half of a gRPC message spare. */
export const LIST_PAGE_DEFAULT = 500;
export const LIST_PAGE_MAX = 1000;
export const LIST_PAGE_MAX_BYTES = GRPC_MAX_MESSAGE_BYTES / 2;
/** A session recording chunk (JSON lines); proxies send 64 KiB ones. */
export const MAX_SESSION_CHUNK_BYTES = 1024 * 1024;

/** Why a chunk of recorded events is not stored, or undefined: bounded, and one JSON object per line. */
export function sessionChunkProblem(events: string): string | undefined {
  const bytes = Buffer.byteLength(events);
  if (bytes > MAX_SESSION_CHUNK_BYTES) return `it is ${bytes} bytes, over the ${MAX_SESSION_CHUNK_BYTES} a chunk may hold`;
  const lines = events.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return `line ${i + 1} is not JSON`;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return `line ${i + 1} is not a JSON object`;
  }
  return undefined;
}

export interface AuthApiOptions {
  clusterName: string;
  store: Store;
  cas: CertAuthorities;
  users: LocalUsers;
  secondFactor: 'otp' | 'off';
  /** auth_service.authentication.locking_mode, served to proxies as cluster_auth_preference. */
  lockingMode?: LockingMode;
  logger: Logger;
  /** Where committed changes are published for watchers. */
  feed: ChangeFeed;
  audit: AuditLog;
  now?: () => Date;
  /** Rate limits of login, user tokens and join (defaults: DEFAULT_RATE_LIMITS). */
  rateLimits?: AuthRateLimitOptions;
  /** auth_service.authentication.type and connector_name, for ping. */
  authType?: 'local' | 'github' | 'oidc' | 'saml';
  connectorName?: string;
  /** The SSO connector drivers this auth server runs (see @keyway/sso). */
  ssoDrivers?: Partial<Record<ConnectorKind, SsoDriver>>;
  /**
   * Seals SSO renewal secrets at rest (renewalKeyOf the CA key secret). Every replica needs the
   * same one; without it a random key is used, and renewals after a restart ask for a new login.
   */
  ssoRenewalKey?: string;
  /** How often an SSO user's provider is asked again at renewal (default RECHECK_INTERVAL_MS). */
  ssoRecheckIntervalMs?: number;
}

export interface CertificatesResult {
  certPem: string;
  userCaPems: string[];
  hostCaPems: string[];
  expires: Date;
  clusterName: string;
  username: string;
}

export interface ResourceInput {
  kind: string;
  json: string;
  /** With force: the revision that was read (kwctl edit, users update); the write fails if it changed since. */
  revision?: string;
}

/**
 * The auth service's operations, independent of the transport: every method takes the
 * caller and enforces authorization itself, so a new transport cannot skip a check.
 */
export class AuthApi {
  private readonly o: Required<Omit<AuthApiOptions, 'rateLimits' | 'authType' | 'connectorName' | 'ssoDrivers' | 'ssoRenewalKey' | 'ssoRecheckIntervalMs'>> & Pick<AuthApiOptions, 'authType' | 'connectorName' | 'ssoDrivers' | 'ssoRenewalKey' | 'ssoRecheckIntervalMs'>;
  private readonly limits: AuthRateLimits;

  constructor(options: AuthApiOptions) {
    const { rateLimits, ...rest } = options;
    this.o = { now: () => new Date(), lockingMode: 'best_effort', ...rest };
    // The service's clock, as for lockouts and expiry.
    this.limits = new AuthRateLimits({ ...(rateLimits ?? DEFAULT_RATE_LIMITS), now: () => this.o.now().getTime() });
    const ssoCommon = {
      store: this.o.store,
      drivers: this.o.ssoDrivers ?? {},
      clusterName: this.o.clusterName,
      logger: this.o.logger,
      audit: this.o.audit,
      now: () => this.o.now(),
      saveUser: (user: UserResource) => this.saveSsoUser(user),
    };
    this.sso = new SsoLogins({
      ...ssoCommon,
      issue: (user, publicKeyPem, opts) => this.issueUserCertificate(user, parsePublicKey(publicKeyPem), { ...opts, mfaVerified: false }),
      lockOf: async (user, roles) => {
        const lock = await this.findLock(user, roles);
        return lock ? `user "${user}" is locked${lock.spec.message ? `: ${lock.spec.message}` : ''}` : undefined;
      },
      limit: (ip) => this.limits.check('sso_login', ip),
      checkPublicKey: (pem) => void parsePublicKey(pem),
      remember: (user, kind, connector, who) => this.renewals.remember(user, kind, connector, who),
    });
    this.renewals = new SsoRenewals({
      ...ssoCommon,
      key: this.o.ssoRenewalKey ?? newSecretKey(),
      recheckIntervalMs: this.o.ssoRecheckIntervalMs ?? RECHECK_INTERVAL_MS,
      deleteUser: (name, connector) => this.deleteSsoUser(name, connector),
    });
    const { store, feed, audit, logger, clusterName } = this.o;
    this.scim = new ScimService({ store, publish: (c) => feed.publish(c), audit, logger, clusterName, now: () => this.o.now(), limit: (ip) => this.limits.check('scim', ip) });
  }

  /** SSO console logins (see ../sso/logins.ts). */
  readonly sso: SsoLogins;
  /** The provider's word again at certificate renewal (see ../sso/renewal.ts). */
  private readonly renewals: SsoRenewals;
  /** SCIM 2.0 deprovisioning, relayed by the proxies (see ../sso/scim.ts). */
  readonly scim: ScimService;

  async ping() {
    return {
      clusterName: this.o.clusterName,
      serverVersion: SERVER_VERSION,
      secondFactor: this.o.secondFactor,
      authType: this.o.authType ?? 'local',
      connectorName: this.o.connectorName ?? '',
      connectors: await listSsoConnectors(this.o.store),
      certAuthorities: (['user', 'host'] as const).map((type) => {
        const ca = this.o.cas[type];
        return { type, certPem: ca.certPem, fingerprint: fingerprint(ca.cert), spkiPin: spkiPin(ca.cert) };
      }),
    };
  }

  // ---- resources ------------------------------------------------------------------------

  async createResources(caller: Caller, inputs: ResourceInput[], force: boolean) {
    if (inputs.length === 0) throw new BadParameterError('no resources to create');
    // Who may write comes before reading what they sent: nothing of an unauthorized caller's
    // payload is parsed. The kinds kwctl declares are checked first; each parsed kind again below.
    await authorizeCreateBeforeParse(inputs, force, (kind, verb) => this.authorize(caller, kind, verb));
    const resources = inputs.map((input, i) => {
      const r = parseOne(input.json, `resource ${i + 1}`, RESOURCE_LIMITS.maxResourceBytes);
      if (input.kind && input.kind !== r.kind) throw new BadParameterError(`resource ${i + 1} is declared as ${JSON.stringify(input.kind)} but is a ${r.kind}`, { declared: input.kind, kind: r.kind });
      return r;
    });
    for (const r of resources) {
      await this.authorize(caller, r.kind, 'create');
      if (force) await this.authorize(caller, r.kind, 'update');
    }
    if (!force && inputs.some((i) => i.revision)) throw new BadParameterError('a revision guards an overwrite: it needs force');
    const changes = await this.o.store.transaction(async (trx) => {
      const out = [];
      for (const [i, r] of resources.entries()) {
        const kind = storedKind(r.kind);
        // Force overwrites whatever is stored, as tctl create -f: a document's metadata.revision
        // (from kwctl get, a Teleport export, a backup) guards nothing. Only a revision the
        // request names (kwctl edit, kwctl users update: what they read) makes it conditional.
        const expected = inputs[i]?.revision || undefined;
        const put = await this.o.store.putResource(
          kind,
          r.metadata.name,
          r as unknown as Record<string, unknown>,
          { createOnly: !force, ...(expected ? { expectedRevision: expected } : {}), expires: expiresOf(r) },
          trx,
        );
        out.push({ kind, name: r.metadata.name, created: put.created, revision: put.revision });
      }
      // Checked after all writes, so a batch may create a role and the user that has it.
      for (const r of resources) {
        if (r.kind === 'user') await this.loadRoles((r as UserResource).spec.roles, trx, r.metadata.name);
      }
      return out;
    });
    this.o.logger.info({ caller: describeCaller(caller), changes }, 'resources written');
    for (const c of changes) {
      await this.publishPut(c.kind, c.name);
      this.auditResource(caller, c.kind, c.name, c.created ? 'create' : 'update');
    }
    return changes;
  }

  /** Secrets (connector client secrets, signing keys) only with the read verb and when asked, as tctl get --with-secrets. */
  async getResource(caller: Caller, kind: string, name: string, withSecrets = false): Promise<ReadResource> {
    if (kind === KUBE_SERVER) {
      await this.authorizeRead(caller, KUBE_SERVER, 'get', false);
      const found = kubeServerResources(await this.o.store.listPresence(KUBE_SERVER, this.o.now())).find((r) => r.name === name);
      if (!found) throw new NotFoundError(`kube_server "${name}" not found: no agent with that host ID is heartbeating`, { kind, name });
      return found;
    }
    const k = storedKind(kind);
    await this.authorizeRead(caller, k, 'get', withSecrets);
    if (k === 'kube_cluster') {
      // As in lists: a cluster only agents serve is found too, and a stored one shows its agents.
      const stored = await this.o.store.findResource(k, name);
      const found = (await this.withServedClusters(stored ? [stored] : [])).find((r) => r.name === name);
      if (!found) throw new NotFoundError(`kube_cluster "${name}" not found`, { kind, name });
      return withSecrets ? found : redacted(found);
    }
    const r = await this.o.store.getResource(k, name);
    return withSecrets ? r : redacted(r);
  }

  /**
   * One page of a kind, by name (see ListResourcesRequest). A page ends early when its
   * resources would pass LIST_PAGE_MAX_BYTES, so that it always fits in one gRPC message.
   */
  async listResources(caller: Caller, kind: string, withSecrets = false, page: { limit?: number; startKey?: string } = {}): Promise<{ resources: ReadResource[]; nextKey: string }> {
    if (kind === KUBE_SERVER) {
      // Agents' heartbeats: a few per cluster, always one page.
      await this.authorizeRead(caller, KUBE_SERVER, 'list', false);
      const all = kubeServerResources(await this.o.store.listPresence(KUBE_SERVER, this.o.now()));
      return { resources: all.filter((r) => r.name >= (page.startKey ?? '')), nextKey: '' };
    }
    const k = storedKind(kind);
    await this.authorizeRead(caller, k, 'list', withSecrets);
    const limit = Math.min(Math.max(page.limit || LIST_PAGE_DEFAULT, 1), LIST_PAGE_MAX);
    const startKey = page.startKey ?? '';
    const stored = await this.o.store.listResourcesPage(k, { startKey, limit });
    let nextKey = stored.nextKey ?? '';
    let all = stored.resources;
    if (k === 'kube_cluster') {
      // Clusters only agents know of are placed by name into the page whose range holds them.
      all = (await this.withServedClusters(all)).filter((r) => r.name >= startKey && (nextKey === '' || r.name < nextKey));
    }
    const out: StoredResource[] = [];
    let bytes = 0;
    for (const r of all) {
      const shown = withSecrets ? r : redacted(r);
      bytes += Buffer.byteLength(JSON.stringify(shown.resource)) + Buffer.byteLength(r.name) + 64;
      if (out.length > 0 && bytes > LIST_PAGE_MAX_BYTES) {
        nextKey = r.name;
        break;
      }
      out.push(shown);
    }
    return { resources: out, nextKey };
  }

  /**
   * kube_cluster lists also show the clusters agents serve right now (from their
   * heartbeats), each with the agents serving it, as Teleport lists kube servers.
   */
  private async withServedClusters(stored: StoredResource[]): Promise<StoredResource[]> {
    const agents = new Map<string, { labels: Record<string, string>; agents: string[] }>();
    for (const server of await this.o.store.listPresence('kube_server', this.o.now())) {
      const data = server.data as { hostname?: string; kube_clusters?: { name: string; labels: Record<string, string> }[] };
      for (const c of data.kube_clusters ?? []) {
        const entry = agents.get(c.name) ?? { labels: c.labels, agents: [] };
        entry.agents.push(data.hostname ? `${server.hostId} (${data.hostname})` : server.hostId);
        agents.set(c.name, entry);
      }
    }
    const out = stored.map((r) => {
      const served = agents.get(r.name);
      if (!served) return r;
      agents.delete(r.name);
      return { ...r, resource: { ...r.resource, status: { agents: served.agents } } };
    });
    for (const [name, served] of agents) {
      out.push({
        kind: 'kube_cluster',
        name,
        revision: '',
        expires: null,
        resource: { kind: 'kube_cluster', version: 'v3', metadata: { name, labels: served.labels }, spec: {}, status: { agents: served.agents } },
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async deleteResource(caller: Caller, kind: string, name: string): Promise<void> {
    const k = storedKind(kind);
    await this.authorize(caller, k, 'delete');
    await this.o.store.transaction(async (trx) => {
      if (k === 'role') {
        const users = await trx
          .selectFrom('users')
          .select('name')
          .where(sql<boolean>`resource->'spec'->'roles' @> jsonb_build_array(${name}::text)`)
          .execute();
        if (users.length > 0) {
          throw new BadParameterError(
            `role "${name}" is still assigned to user(s) ${users.map((u) => u.name).join(', ')}; remove it from them first`,
            { role: name, users: users.map((u) => u.name) },
          );
        }
      }
      await this.o.store.deleteResource(k, name, trx);
    });
    this.o.logger.info({ caller: describeCaller(caller), kind: k, name }, 'resource deleted');
    this.o.feed.publish({ type: 'delete', kind: k, name });
    this.auditResource(caller, k, name, 'delete');
  }

  // ---- users ----------------------------------------------------------------------------

  async createUser(
    caller: Caller,
    input: { name: string; roles: string[]; traits: Record<string, string[]>; tokenTtlMs?: number },
  ): Promise<IssuedUserToken> {
    await this.authorize(caller, 'user', 'create');
    // Checked before the user exists, so a bad TTL does not leave a user without a token.
    checkUserTokenTtl(input.tokenTtlMs || DEFAULT_USER_TOKEN_TTL_MS);
    const user = parseOne(
      JSON.stringify({ kind: 'user', version: 'v2', metadata: { name: input.name }, spec: { roles: input.roles, traits: input.traits } }),
      `user ${input.name}`,
    );
    await this.o.store.transaction(async (trx) => {
      await this.loadRoles(input.roles, trx, input.name);
      await this.o.store.putResource('user', input.name, user as unknown as Record<string, unknown>, { createOnly: true }, trx);
    });
    await this.publishPut('user', input.name);
    this.auditResource(caller, 'user', input.name, 'create');
    return this.o.users.issueToken(input.name, 'signup', input.tokenTtlMs || DEFAULT_USER_TOKEN_TTL_MS);
  }

  describeUserToken(token: string, remoteIp?: string) {
    this.limits.check('get_user_token', remoteIp, token);
    return this.o.users.describeToken(token);
  }

  completeUserToken(token: string, password: string, totpCode: string, remoteIp?: string): Promise<string> {
    this.limits.check('complete_user_token', remoteIp, token);
    return this.o.users.completeToken(token, password, totpCode);
  }

  async resetUser(caller: Caller, name: string, tokenTtlMs?: number): Promise<IssuedUserToken> {
    await this.authorize(caller, 'user', 'update');
    return this.o.users.issueToken(name, 'reset', tokenTtlMs || DEFAULT_USER_TOKEN_TTL_MS);
  }

  // ---- certificates ---------------------------------------------------------------------

  async login(input: {
    user: string;
    password: string;
    totpCode: string;
    publicKeyPem: string;
    ttlMs?: number;
    kubernetesCluster?: string;
    remoteIp?: string;
  }): Promise<CertificatesResult> {
    this.limits.check('login', input.remoteIp, input.user);
    const publicKey = parsePublicKey(input.publicKeyPem);
    const attempt = { user: input.user, method: 'local', 'addr.remote': input.remoteIp ?? '', cluster_name: this.o.clusterName };
    let failure = await this.o.users.authenticate(input.user, input.password, input.totpCode);
    let user: UserResource | undefined;
    if (!failure) {
      try {
        user = await this.activeUser(input.user);
      } catch (err) {
        if (!(err instanceof AccessDeniedError)) throw err;
        failure = new LoginFailure(err.data['reason'] === 'locked' ? 'locked' : 'user_gone', err.message);
      }
    }
    if (failure || !user) {
      // One answer for every reason, so a failed login tells nothing about the user or the
      // password; the reason (never the password or the code) goes to the log and the audit.
      const reason = failure ?? new LoginFailure('user_gone', `user "${input.user}" does not exist`);
      this.o.logger.warn({ user: input.user, ip: input.remoteIp, reason: reason.reason, detail: reason.detail }, 'login failed');
      this.o.audit.emit(auditEvent(EVENTS.userLoginFailure, { ...attempt, success: false, error: reason.detail, reason: reason.reason }, this.o.now()));
      throw new AccessDeniedError(LOGIN_FAILED);
    }
    this.o.audit.emit(auditEvent(EVENTS.userLogin, { ...attempt, success: true, mfa_device: this.o.secondFactor === 'otp' ? 'totp' : '' }, this.o.now()));
    const result = await this.issueUserCertificate(user, publicKey, {
      ttlMs: input.ttlMs,
      kubernetesCluster: input.kubernetesCluster,
      loginIp: input.remoteIp,
      mfaVerified: this.o.secondFactor === 'otp',
    });
    this.o.logger.info({ user: input.user, expires: result.expires, ip: input.remoteIp }, 'user logged in');
    return result;
  }

  /** Renews or re-routes the caller's own certificate; never past the current one's expiry. */
  async generateUserCerts(
    caller: Caller,
    input: { publicKeyPem: string; ttlMs?: number; kubernetesCluster?: string },
  ): Promise<CertificatesResult> {
    const c = requireAuthenticated(caller);
    if (c.kind !== 'user') throw new AccessDeniedError('only users can renew user certificates');
    const publicKey = parsePublicKey(input.publicKeyPem);
    let user = await this.activeUser(c.identity.username);
    // An SSO user's provider is asked again; new roles must pass the lock check too.
    if ((await this.renewals.recheck(user)) !== user) user = await this.activeUser(c.identity.username);
    return this.issueUserCertificate(user, publicKey, {
      ttlMs: input.ttlMs,
      kubernetesCluster: input.kubernetesCluster,
      loginIp: c.identity.loginIp,
      mfaVerified: c.identity.mfaVerified,
      notAfterCap: c.identity.expires,
    });
  }

  /** The clusters agents serve now that the calling user's roles let them see. */
  async listKubeClustersForUser(caller: Caller): Promise<{ name: string; labels: Record<string, string> }[]> {
    const c = requireAuthenticated(caller);
    if (c.kind !== 'user') throw new AccessDeniedError('only users list their Kubernetes clusters');
    const user = await this.activeUser(c.identity.username);
    const roles = await this.loadRoles(user.spec.roles, this.o.store.db, user.metadata.name);
    const served = new Map<string, Record<string, string>>();
    for (const server of await this.o.store.listPresence('kube_server', this.o.now())) {
      for (const k of (server.data as { kube_clusters?: { name: string; labels: Record<string, string> }[] }).kube_clusters ?? []) {
        served.set(k.name, k.labels);
      }
    }
    const clusters = [...served].map(([name, labels]) => ({ name, labels })).sort((a, b) => a.name.localeCompare(b.name));
    const visible = new Set(visibleKubeClusters(roles, userTraits(user.spec.traits ?? {}), clusters));
    return clusters.filter((c) => visible.has(c.name));
  }

  /** `kwctl auth sign`: certificates for another user, e.g. a bot. */
  async signUserCerts(
    caller: Caller,
    input: { user: string; publicKeyPem: string; ttlMs?: number; kubernetesCluster?: string },
  ): Promise<CertificatesResult> {
    await this.authorize(caller, 'cert', 'create');
    const publicKey = parsePublicKey(input.publicKeyPem);
    const user = await this.activeUser(input.user);
    const result = await this.issueUserCertificate(user, publicKey, {
      ttlMs: input.ttlMs,
      kubernetesCluster: input.kubernetesCluster,
      mfaVerified: false,
    });
    this.o.logger.info({ caller: describeCaller(caller), user: input.user, expires: result.expires }, 'user certificate signed');
    return result;
  }

  async join(input: {
    token: string;
    publicKeyPem: string;
    role: string;
    hostId?: string;
    nodeName?: string;
    dnsNames: string[];
    ipAddresses: string[];
    remoteIp?: string;
    /** Who made the call: a host re-joining with its previous certificate keeps its id. */
    caller?: Caller;
  }) {
    const role = input.role as SystemRole;
    if (!JOINABLE_ROLES.has(role)) {
      throw new BadParameterError(`cannot join as "${input.role}": expected one of ${[...JOINABLE_ROLES].join(', ')}`);
    }
    this.limits.check('join', input.remoteIp, input.token);
    const publicKey = parsePublicKey(input.publicKeyPem);
    const token = input.token ? await this.o.store.findResource('token', input.token) : undefined;
    if (!token) {
      this.o.logger.warn({ role, ip: input.remoteIp }, 'join refused: unknown or expired token');
      throw new AccessDeniedError('join token is not valid (unknown or expired)', { reason: 'bad_token' });
    }
    const allowed = ((token.resource['spec'] as { roles?: string[] }).roles ?? []).map((r) => r.toLowerCase());
    if (!allowed.includes(role.toLowerCase())) {
      throw new AccessDeniedError(`join token does not allow role ${role} (it allows ${allowed.join(', ') || 'none'})`);
    }
    const hostId = joinHostId(role, input.caller);
    if (input.hostId && input.hostId !== hostId) {
      this.o.logger.warn({ asked: input.hostId, hostId, role, ip: input.remoteIp }, 'join asked for a host id it did not prove to hold: a new id is assigned');
    }
    checkHostNames(role, input.dnsNames, input.ipAddresses);
    const notAfter = new Date(this.o.now().getTime() + HOST_CERT_TTL_MS);
    const identity: Omit<Identity, 'expires'> = {
      username: hostId,
      roles: [role],
      traits: input.nodeName ? { node_name: [input.nodeName] } : {},
      kubernetesUsers: [],
      kubernetesGroups: [],
      clusterName: this.o.clusterName,
      mfaVerified: false,
      systemRoles: [role],
      ...(input.remoteIp ? { loginIp: input.remoteIp } : {}),
    };
    const cert = this.o.cas.host.signer.signHostCertificate({
      publicKey,
      identity,
      dnsNames: input.dnsNames,
      ipAddresses: input.ipAddresses,
      notAfter,
    });
    this.o.logger.info({ hostId, role, ip: input.remoteIp }, 'host joined');
    this.o.audit.emit(auditEvent(EVENTS.join, { host_id: hostId, role, node_name: input.nodeName ?? '', 'addr.remote': input.remoteIp ?? '', cluster_name: this.o.clusterName, success: true }, this.o.now()));
    return {
      certPem: cert.certPem,
      hostCaPems: [this.o.cas.host.certPem],
      userCaPems: [this.o.cas.user.certPem],
      hostId,
      expires: notAfter,
    };
  }

  // ---- tokens and locks -----------------------------------------------------------------

  async createToken(caller: Caller, input: { roles: string[]; ttlMs?: number; name?: string; labels?: Record<string, string> }) {
    await this.authorize(caller, 'token', 'create');
    if (input.roles.some((r) => r.toLowerCase() === 'scim')) return this.createScimToken(caller, input);
    const ttl = input.ttlMs || DEFAULT_JOIN_TOKEN_TTL_MS;
    if (ttl < 1000 || ttl > MAX_JOIN_TOKEN_TTL_MS) throw new BadParameterError('join token TTL must be between 1s and 720h', { ttl });
    const name = input.name || randomBytes(16).toString('hex');
    const roles = input.roles.map(normalizeSystemRole);
    const expires = new Date(this.o.now().getTime() + ttl);
    await this.putToken(caller, name, roles, expires, input.labels);
    return this.o.store.getResource('token', name);
  }

  /** Validates, stores (create only) and audits a token resource; its name is shown cut short. */
  private async putToken(caller: Caller, name: string, roles: string[], expires: Date, labels?: Record<string, string>): Promise<void> {
    const token = parseOne(
      JSON.stringify({
        kind: 'token',
        version: 'v2',
        metadata: { name, expires: expires.toISOString(), ...(labels && Object.keys(labels).length ? { labels } : {}) },
        spec: { roles, join_method: 'token' },
      }),
      'token',
    );
    await this.o.store.putResource('token', name, token as unknown as Record<string, unknown>, { createOnly: true, expires });
    this.auditResource(caller, 'token', name.slice(0, 6) + '…', 'create', { roles });
  }

  /**
   * A SCIM bearer token (Keyway's own token role): stored under the SHA-256 of its value, which
   * is answered this once (in `status.token`) and never stored; it cannot be combined with a join role.
   */
  private async createScimToken(caller: Caller, input: { roles: string[]; ttlMs?: number; name?: string; labels?: Record<string, string> }) {
    if (!input.roles.every((r) => r.toLowerCase() === 'scim')) throw new BadParameterError('a scim token joins nothing: it cannot also be a kube or proxy token');
    const ttl = input.ttlMs || MAX_SCIM_TOKEN_TTL_MS;
    if (ttl < 1000 || ttl > MAX_SCIM_TOKEN_TTL_MS) throw new BadParameterError('SCIM token TTL must be between 1s and 8760h', { ttl });
    if (input.name && input.name.length < 32) throw new BadParameterError('a SCIM token value must be at least 32 characters long');
    const secret = input.name || randomBytes(32).toString('base64url');
    const name = scimTokenName(secret);
    const expires = new Date(this.o.now().getTime() + ttl);
    await this.putToken(caller, name, ['Scim'], expires, input.labels);
    const stored = await this.o.store.getResource('token', name);
    return { ...stored, resource: { ...stored.resource, status: { token: secret } } };
  }

  async createLock(caller: Caller, input: { user?: string; role?: string; message?: string; ttlMs?: number }) {
    await this.authorize(caller, 'lock', 'create');
    if (!input.user && !input.role) throw new BadParameterError('a lock needs a target: --user or --role');
    if (input.ttlMs !== undefined && input.ttlMs !== 0 && (input.ttlMs < 1000 || input.ttlMs > MAX_LOCK_TTL_MS)) {
      throw new BadParameterError('lock TTL must be between 1s and 87600h (10 years); omit it for a lock until unlocked', { ttl: input.ttlMs });
    }
    const name = randomUUID();
    const expires = input.ttlMs ? new Date(this.o.now().getTime() + input.ttlMs) : undefined;
    const lock = parseOne(
      JSON.stringify({
        kind: 'lock',
        version: 'v2',
        metadata: { name },
        spec: {
          target: { ...(input.user ? { user: input.user } : {}), ...(input.role ? { role: input.role } : {}) },
          ...(input.message ? { message: input.message } : {}),
          ...(expires ? { expires: expires.toISOString() } : {}),
        },
      }),
      'lock',
    );
    await this.o.store.putResource('lock', name, lock as unknown as Record<string, unknown>, { createOnly: true, expires: expires ?? null });
    this.o.logger.info({ caller: describeCaller(caller), target: input }, 'lock created');
    await this.publishPut('lock', name);
    this.auditResource(caller, 'lock', name, 'create', { target: input.user ? { user: input.user } : { role: input.role }, message: input.message });
    return this.o.store.getResource('lock', name);
  }

  // ---- hosts ----------------------------------------------------------------------------

  /** A proxy or agent renews its own certificate before it expires; same identity, new key. */
  async renewHostCert(caller: Caller, input: { publicKeyPem: string; dnsNames: string[]; ipAddresses: string[] }) {
    const c = requireAuthenticated(caller);
    const role = c.identity.systemRoles.find((r) => JOINABLE_ROLES.has(r));
    if (c.kind !== 'host' || !role) throw new AccessDeniedError('only proxies and kube agents renew host certificates');
    const publicKey = parsePublicKey(input.publicKeyPem);
    checkHostNames(role, input.dnsNames, input.ipAddresses);
    const notAfter = new Date(this.o.now().getTime() + HOST_CERT_TTL_MS);
    const { expires: _e, issuedAt: _i, serialNumber: _s, ...identity } = c.identity;
    const cert = this.o.cas.host.signer.signHostCertificate({
      publicKey,
      identity,
      dnsNames: input.dnsNames,
      ipAddresses: input.ipAddresses,
      notAfter,
    });
    this.o.logger.info({ hostId: identity.username, role }, 'host certificate renewed');
    return {
      certPem: cert.certPem,
      hostCaPems: [this.o.cas.host.certPem],
      userCaPems: [this.o.cas.user.certPem],
      hostId: identity.username,
      expires: notAfter,
    };
  }

  /** Records that a proxy or kube agent is alive; watchers hear of new and changed hosts. */
  async heartbeat(
    caller: Caller,
    input: { kind: string; hostId: string; hostname: string; addr: string; version: string; ttlMs: number; kubeClusters: { name: string; labels: Record<string, string> }[] },
  ): Promise<void> {
    const c = requireAuthenticated(caller);
    const kind = input.kind === 'proxy' ? 'proxy' : input.kind === 'kube_server' ? 'kube_server' : undefined;
    if (!kind) throw new BadParameterError(`unknown heartbeat kind "${input.kind}" (expected proxy or kube_server)`);
    // A proxy serving clusters itself (proxy_service.kubernetes.kubeconfig_file) announces them
    // as a kube_server under its own host id, as an agent does.
    const allowed: SystemRole[] = kind === 'proxy' ? ['Proxy'] : ['Kube', 'Proxy'];
    const admin = c.identity.systemRoles.includes('Admin');
    if (c.kind !== 'host' || (!admin && (!allowed.some((r) => c.identity.systemRoles.includes(r)) || c.identity.username !== input.hostId))) {
      throw new AccessDeniedError(`${describeCaller(c)} may not heartbeat as ${kind} "${input.hostId}"`);
    }
    checkHeartbeat(input);
    const ttl = Math.min(Math.max(input.ttlMs || 10_000, 1_000), 10 * 60_000);
    const data = {
      host_id: input.hostId,
      hostname: input.hostname,
      addr: input.addr,
      version: input.version,
      ...(kind === 'kube_server' ? { kube_clusters: input.kubeClusters } : {}),
    };
    const changed = await this.o.store.putPresence(kind, input.hostId, data, new Date(this.o.now().getTime() + ttl));
    if (changed) this.o.feed.publish({ type: 'put', kind, name: input.hostId, resource: data });
  }

  async liveProxyIds(): Promise<string[]> {
    return (await this.o.store.listPresence('proxy', this.o.now())).map((p) => p.hostId);
  }

  /** Deletes heartbeats that were not renewed and tells watchers the hosts are gone. */
  async expireHosts(): Promise<void> {
    for (const gone of await this.o.store.expirePresence(this.o.now())) {
      this.o.feed.publish({ type: 'delete', kind: gone.kind, name: gone.hostId });
    }
  }

  /**
   * Subscribes to changes of the given kinds and returns the current state first. The
   * subscription starts before the snapshot is read, so nothing between the two is lost.
   */
  async watch(caller: Caller, kinds: string[], onChange: (change: Change) => void): Promise<{ snapshot: Change[]; cancel: () => void }> {
    const c = requireAuthenticated(caller);
    const preference = kinds.includes(AUTH_PREFERENCE_KIND);
    const wanted = new Set(kinds.filter((k) => k !== AUTH_PREFERENCE_KIND).map((k) => watchKind(k)));
    // The same rule as get and list, kind by kind; a watch never carries secrets.
    for (const kind of wanted) readRule(c, describeCaller(c), kind, 'watch', false);
    // The cluster's auth preference (locking mode) is for the proxies that enforce it.
    if (preference && !(c.kind === 'host' && (c.identity.systemRoles.includes('Proxy') || c.identity.systemRoles.includes('Admin')))) {
      throw new AccessDeniedError(`${describeCaller(c)} may not watch ${AUTH_PREFERENCE_KIND}`);
    }
    const cancel = this.o.feed.subscribe((change) => {
      if ((wanted as ReadonlySet<string>).has(change.kind)) onChange(change.resource === undefined ? change : { ...change, resource: redactForRead(change.resource, false) });
    });
    try {
      const snapshot: Change[] = preference ? [authPreferenceChange(this.o.lockingMode)] : [];
      for (const kind of wanted) {
        if (kind === 'proxy' || kind === 'kube_server') {
          for (const p of await this.o.store.listPresence(kind, this.o.now())) {
            snapshot.push({ type: 'put', kind, name: p.hostId, resource: redactForRead(p.data, false) });
          }
        } else {
          for (const r of await this.o.store.listResources(kind)) {
            snapshot.push({ type: 'put', kind, name: r.name, resource: redactForRead(r.resource, false), revision: r.revision });
          }
        }
      }
      return { snapshot, cancel };
    } catch (err) {
      cancel();
      throw err;
    }
  }

  /** Proxies without a queue send their events here. */
  async emitAuditEvents(caller: Caller, events: string[]): Promise<void> {
    const c = requireAuthenticated(caller);
    if (c.kind !== 'host' || !(c.identity.systemRoles.includes('Proxy') || c.identity.systemRoles.includes('Admin'))) {
      throw new AccessDeniedError(`${describeCaller(c)} may not emit audit events`);
    }
    const parsed: AuditEventRecord[] = [];
    for (const [i, json] of events.entries()) {
      // Bounded before it is parsed; checked whole before anything is stored.
      if (Buffer.byteLength(json) > MAX_AUDIT_EVENT_BYTES) throw new BadParameterError(`audit event ${i} is over ${MAX_AUDIT_EVENT_BYTES / 1024} KiB`);
      let e: unknown;
      try {
        e = JSON.parse(json);
      } catch {
        throw new BadParameterError(`audit event ${i} is not JSON`);
      }
      const problem = auditEventProblem(e);
      if (problem) throw new BadParameterError(`audit event ${i}: ${problem}`);
      parsed.push(e as AuditEventRecord);
    }
    // Stored before the answer: the proxy keeps the events in its spool until this call
    // succeeds (idempotent on uid, so its re-sends never duplicate).
    await appendAuditEvents(this.o.store, parsed);
  }

  async searchEvents(caller: Caller, q: Parameters<typeof searchAuditEvents>[1]) {
    await this.authorize(caller, 'event', 'list');
    await this.authorize(caller, 'event', 'read');
    await this.o.audit.flush();
    return searchAuditEvents(this.o.store, q);
  }

  async verifyAuditChain(caller: Caller, since?: Date) {
    await this.authorize(caller, 'event', 'read');
    await this.o.audit.flush();
    return verifyAuditChain(this.o.store, since);
  }

  // ---- session recordings ----------------------------------------------------------------

  /** Proxies upload recordings chunk by chunk; a retried chunk is stored once. */
  async uploadSessionChunk(caller: Caller, session: SessionRecordingRecord, seq: number, events: string): Promise<void> {
    const c = requireAuthenticated(caller);
    if (c.kind !== 'host' || !(c.identity.systemRoles.includes('Proxy') || c.identity.systemRoles.includes('Admin'))) {
      throw new AccessDeniedError(`${describeCaller(c)} may not upload session recordings`);
    }
    if (!UUID.test(session.id)) throw new BadParameterError('session id must be a UUID');
    if (!Number.isInteger(seq) || seq < 0) throw new BadParameterError('chunk sequence number must be a whole number ≥ 0');
    if (Number.isNaN(session.started.getTime()) || (session.ended && Number.isNaN(session.ended.getTime()))) {
      throw new BadParameterError('session start and end must be RFC 3339 times');
    }
    const problem = sessionChunkProblem(events);
    if (problem) throw new BadParameterError(`session chunk ${seq}: ${problem}`, { session: session.id, seq });
    await putSessionChunk(this.o.store, session, seq, events);
  }

  /**
   * Every session for callers whose roles allow `session` list and read (auditor, editor);
   * otherwise, as Teleport's access role allows, the sessions the user took part in.
   */
  async listSessions(caller: Caller, limit = 100): Promise<SessionRecordingRecord[]> {
    const only = await this.sessionScope(caller, ['list', 'read']);
    return listSessionRecordings(this.o.store, Math.min(Math.max(limit || 100, 1), 1000), only);
  }

  async getSessionEvents(caller: Caller, id: string, afterSeq: number, limit = 100) {
    const only = await this.sessionScope(caller, ['read']);
    const session = await findSessionRecording(this.o.store, id);
    // Someone else's session is "not found" to a user who may only see their own.
    if (!session || (only !== undefined && session.user !== only)) throw new NotFoundError(`session recording "${id}" is not found`, { session: id });
    const chunks = await getSessionChunks(this.o.store, id, afterSeq, Math.min(Math.max(limit || 100, 1), 1000));
    // A page ends early rather than outgrow a message; the reader asks again after its last seq.
    let bytes = 0;
    const page = chunks.filter((c) => (bytes += Buffer.byteLength(c.data)) <= LIST_PAGE_MAX_BYTES || c === chunks[0]);
    return { session, chunks: page };
  }

  private auditResource(caller: Caller, kind: string, name: string, op: 'create' | 'update' | 'delete', extra: Record<string, unknown> = {}): void {
    const by: Record<string, unknown> = { user: caller.kind === 'anonymous' ? '' : caller.identity.username, cluster_name: this.o.clusterName };
    let kindEvent: EventKind;
    if (kind === 'user') kindEvent = op === 'create' ? EVENTS.userCreate : op === 'update' ? EVENTS.userUpdate : EVENTS.userDelete;
    else if (kind === 'role') kindEvent = op === 'delete' ? EVENTS.roleDelete : EVENTS.roleCreate;
    else if (kind === 'lock') kindEvent = op === 'delete' ? EVENTS.lockDelete : EVENTS.lockCreate;
    else if (kind === 'token' && op !== 'delete') kindEvent = EVENTS.tokenCreate;
    else kindEvent = op === 'delete' ? EVENTS.resourceDelete : EVENTS.resourceCreate;
    this.o.audit.emit(auditEvent(kindEvent, { ...by, name, kind, operation: op, ...extra }, this.o.now()));
  }

  private async publishPut(kind: StoredKind, name: string): Promise<void> {
    const stored = await this.o.store.findResource(kind, name);
    if (stored) this.o.feed.publish({ type: 'put', kind, name, resource: stored.resource, revision: stored.revision });
  }

  // ---- internals ------------------------------------------------------------------------

  private async issueUserCertificate(
    user: UserResource,
    publicKey: string,
    opts: { ttlMs?: number; kubernetesCluster?: string; loginIp?: string; mfaVerified: boolean; notAfterCap?: Date },
  ): Promise<CertificatesResult> {
    const roles = await this.loadRoles(user.spec.roles, this.o.store.db, user.metadata.name);
    const traits = user.spec.traits ?? {};
    const grants = identityKubeGrants(roles, userTraits(traits));
    const now = this.o.now();
    let notAfter = new Date(now.getTime() + certTtl(roles, opts.ttlMs || undefined));
    if (opts.notAfterCap && opts.notAfterCap < notAfter) notAfter = opts.notAfterCap;
    const identity: Omit<Identity, 'expires'> = {
      username: user.metadata.name,
      roles: roles.map((r) => r.metadata.name),
      traits,
      kubernetesUsers: grants.kubernetesUsers,
      kubernetesGroups: grants.kubernetesGroups,
      clusterName: this.o.clusterName,
      mfaVerified: opts.mfaVerified,
      systemRoles: [],
      ...(opts.kubernetesCluster ? { kubernetesCluster: opts.kubernetesCluster } : {}),
      ...(opts.loginIp ? { loginIp: opts.loginIp } : {}),
    };
    const cert = this.o.cas.user.signer.signUserCertificate({ publicKey, identity, notAfter });
    this.o.audit.emit(
      auditEvent(
        EVENTS.certCreate,
        {
          cert_type: 'user',
          user: identity.username,
          user_roles: identity.roles,
          kubernetes_cluster: identity.kubernetesCluster ?? '',
          kubernetes_groups: identity.kubernetesGroups,
          expires: notAfter.toISOString(),
          cluster_name: this.o.clusterName,
        },
        this.o.now(),
      ),
    );
    return {
      certPem: cert.certPem,
      userCaPems: [this.o.cas.user.certPem],
      hostCaPems: [this.o.cas.host.certPem],
      expires: notAfter,
      clusterName: this.o.clusterName,
      username: user.metadata.name,
    };
  }

  /**
   * Creates or replaces an SSO user (validated like any user) and tells the proxies. A local
   * user of the same name is never taken over: an IdP account named "admin" gets nothing.
   */
  private async saveSsoUser(user: UserResource): Promise<void> {
    // Validated as any user; created_by is the auth service's own field, kept as it set it.
    const valid = { ...(parseResource(user) as UserResource) };
    valid.spec = { ...valid.spec, ...(user.spec.created_by ? { created_by: user.spec.created_by } : {}) };
    const name = valid.metadata.name;
    const existing = await this.o.store.findResource('user', name);
    const by = (existing?.resource as UserResource | undefined)?.spec.created_by?.connector;
    if (existing && !by) {
      throw new AccessDeniedError(`a local user "${name}" exists; an SSO login may not take it over (rename one of them)`, { reason: 'local_user_exists', user: name });
    }
    const expires = valid.metadata.expires ? new Date(valid.metadata.expires) : undefined;
    await this.o.store.putResource('user', name, valid as unknown as Record<string, unknown>, expires ? { expires } : {});
    await this.publishPut('user', name);
    this.o.audit.emit(
      auditEvent(existing ? EVENTS.userUpdate : EVENTS.userCreate, { user: name, name, kind: 'user', operation: existing ? 'update' : 'create', connector: valid.spec.created_by?.connector?.id ?? '', cluster_name: this.o.clusterName }, this.o.now()),
    );
  }

  /** Removes an SSO user the provider no longer vouches for; every proxy ends its sessions. */
  private async deleteSsoUser(name: string, connector: string): Promise<void> {
    await this.o.store.deleteResource('user', name);
    this.o.feed.publish({ type: 'delete', kind: 'user', name });
    this.o.audit.emit(auditEvent(EVENTS.userDelete, { user: name, name, kind: 'user', operation: 'delete', connector, cluster_name: this.o.clusterName }, this.o.now()));
  }

  /** The user, if it exists and no lock targets it or its roles. */
  private async activeUser(name: string): Promise<UserResource> {
    const stored = await this.o.store.findResource('user', name);
    if (!stored) throw new AccessDeniedError(`user "${name}" does not exist`, { reason: 'user_not_found', user: name });
    const user = stored.resource as unknown as UserResource;
    const lock = await this.findLock(name, user.spec.roles);
    if (lock) {
      const message = lock.spec.message ? `: ${lock.spec.message}` : '';
      throw new AccessDeniedError(`user "${name}" is locked${message}`, { reason: 'locked', user: name, lock: lock.metadata.name });
    }
    return user;
  }

  private async findLock(user: string, roles: string[]): Promise<LockResource | undefined> {
    const locks = await this.o.store.listResources('lock');
    const now = this.o.now();
    for (const { resource } of locks) {
      const lock = resource as unknown as LockResource;
      if (lock.spec.expires && new Date(lock.spec.expires) <= now) continue;
      const t = lock.spec.target;
      if ((t.user && t.user === user) || (t.role && roles.includes(t.role))) return lock;
    }
    return undefined;
  }

  private async loadRoles(names: string[], db: Db = this.o.store.db, forUser?: string): Promise<RoleResource[]> {
    const roles: RoleResource[] = [];
    for (const name of names) {
      const role = await this.o.store.findResource('role', name, db);
      if (!role) {
        throw new NotFoundError(`role "${name}"${forUser ? ` of user "${forUser}"` : ''} is not found`, { role: name, user: forUser });
      }
      roles.push(role.resource as unknown as RoleResource);
    }
    return roles;
  }

  /** undefined: every session; a username: only that user's own sessions. */
  private async sessionScope(caller: Caller, verbs: string[]): Promise<string | undefined> {
    try {
      for (const verb of verbs) await this.authorize(caller, 'session', verb);
      return undefined;
    } catch (err) {
      const c = requireAuthenticated(caller);
      if (err instanceof AccessDeniedError && c.kind === 'user') return c.identity.username;
      throw err;
    }
  }

  /** Reading a kind, by any method: see readRule. */
  private async authorizeRead(caller: Caller, kind: ReadableKind, method: ReadMethod, withSecrets: boolean): Promise<void> {
    const c = requireAuthenticated(caller);
    const decision = readRule(c, describeCaller(c), kind, method, withSecrets);
    if (decision.by === 'roles') for (const verb of decision.verbs) await this.authorize(c, kind, verb);
  }

  private async authorize(caller: Caller, resource: string, verb: string): Promise<void> {
    const c = requireAuthenticated(caller);
    if (c.kind === 'host') {
      if (c.identity.systemRoles.includes('Admin')) return;
      throw new AccessDeniedError(`${describeCaller(c)} may not ${verb} ${resource}`, { resource, verb });
    }
    const user = await this.activeUser(c.identity.username);
    const roles = await this.loadRoles(user.spec.roles, this.o.store.db, user.metadata.name);
    checkAccess(roles, resource, verb, user.metadata.name);
  }
}

function redacted(r: StoredResource): StoredResource {
  return { ...r, resource: redactSecrets(r.resource as unknown as Resource) as unknown as Record<string, unknown> };
}

function parseOne(json: string, source: string, maxBytes?: number): Resource {
  const { docs } = parseResourceDocuments(json, source, maxBytes === undefined ? {} : { maxBytes });
  const [doc] = docs;
  if (!doc || docs.length !== 1) throw new BadParameterError(`${source}: expected exactly one resource`);
  return doc;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CLUSTER_LOCAL = '.keyway.cluster.local';
/** Names under the cluster-local domain that each role may carry; auth's own is never handed out. */
const RESERVED_NAMES: Record<string, Set<string>> = {
  Proxy: new Set(['proxy.keyway.cluster.local', '*.keyway.cluster.local']),
  Kube: new Set(),
};

/**
 * A joining host names the DNS names and IPs its certificate carries. Names clients use
 * to find the auth server or the proxies are reserved to those roles, and only proxies get
 * a wildcard, so an agent's certificate can never pass for them.
 */
function checkHostNames(role: SystemRole, dnsNames: string[], ipAddresses: string[]): void {
  for (const name of dnsNames) {
    const lower = name.toLowerCase();
    const reserved = lower.endsWith(CLUSTER_LOCAL) || lower === CLUSTER_LOCAL.slice(1);
    if (reserved && !RESERVED_NAMES[role]?.has(lower)) {
      throw new BadParameterError(`a ${role} host may not carry the name "${name}"`, { name });
    }
    // A proxy answers kubectl at kube-teleport-proxy-alpn.<its public host>, hence its wildcard.
    if (lower.includes('*') && !RESERVED_NAMES[role]?.has(lower) && !(role === 'Proxy' && !reserved && lower.startsWith('*.'))) {
      throw new BadParameterError(`a ${role} host may not carry the wildcard name "${name}"`, { name });
    }
    if (!/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(lower)) {
      throw new BadParameterError(`"${name}" is not a valid DNS name`, { name });
    }
  }
  for (const ip of ipAddresses) {
    if (!isIP(ip)) throw new BadParameterError(`"${ip}" is not an IP address`, { ip });
  }
}

/**
 * Host ids are UUIDs chosen by the auth server. A host keeps its previous id only by proving it
 * holds that identity: it makes the join call with its previous certificate, for the same role
 * and from this cluster's host CA, as its TLS client certificate (the handshake proves the key;
 * the caller was verified, expiry included, before the call got here). An expired certificate
 * is not enough: every renewal replaces a host's key, so accepting expired certificates would
 * let any old key that leaked take over the id of a host that is still running. A host that was
 * away longer than its certificate's life (7 days) comes back under a new id; its heartbeat had
 * expired long before. Anything else (an id merely asked for, a user's certificate, another
 * role's) gets a new id.
 */
function joinHostId(role: SystemRole, caller: Caller | undefined): string {
  if (caller?.kind === 'host' && caller.identity.systemRoles.includes(role) && UUID.test(caller.identity.username)) return caller.identity.username;
  return randomUUID();
}

function watchKind(kind: string): ReadableKind {
  if (kind === 'proxy' || kind === 'kube_server') return kind;
  return storedKind(kind);
}

function storedKind(kind: string): StoredKind {
  if ((STORED_KINDS as readonly string[]).includes(kind)) return kind as StoredKind;
  throw new BadParameterError(`unknown resource kind "${kind}" (expected one of ${STORED_KINDS.join(', ')})`, { kind });
}

function expiresOf(r: Resource): Date | null {
  const fromSpec = r.kind === 'lock' ? (r as LockResource).spec.expires : undefined;
  const value = fromSpec ?? r.metadata.expires;
  return value ? new Date(value) : null;
}

function normalizeSystemRole(role: string): SystemRole {
  const found = [...JOINABLE_ROLES].find((r) => r.toLowerCase() === role.toLowerCase());
  if (!found) throw new BadParameterError(`unknown token type "${role}": expected kube or proxy`);
  return found;
}

/**
 * Checks the request's public key before anything else happens (so a bad key does not use
 * up a TOTP code). Keyway's own SPKI parser is several times faster than createPublicKey;
 * the signer applies the same policy again when it encodes the key.
 */
function parsePublicKey(pem: string): string {
  if (!pem) throw new BadParameterError('public key is required');
  try {
    subjectPublicKey(pem);
  } catch (err) {
    throw new BadParameterError(`public key is not a PEM ECDSA P-256/P-384, Ed25519 or RSA ≥ 2048 key (${(err as Error).message.replace(/error:[0-9A-F]+:/g, '').trim()})`);
  }
  return pem;
}
