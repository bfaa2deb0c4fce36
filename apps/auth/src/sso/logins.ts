import { randomBytes } from 'node:crypto';
import { AccessDeniedError, BadParameterError, ConnectionProblemError, NotFoundError } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import { parseResourceDocuments, type Resource, type UserResource } from '@keyway/resources';
import { SsoLoginError, parseClientRedirect, seal, type ConnectorResource, type SsoDriver, type SsoIdentity, type SsoLoginResponse } from '@keyway/sso';
import { putSsoRequest, takeSsoRequest, type Store } from '@keyway/store';
import { EVENTS, auditEvent, type AuditLog } from '@keyway/audit';
import type { CertificatesResult } from '../api/auth-api.js';
import type { Caller } from '../api/caller.js';

export type ConnectorKind = ConnectorResource['kind'];
export const CONNECTOR_KINDS: readonly ConnectorKind[] = ['github', 'oidc', 'saml'];

/** A login request lives this long: the time a person has at the provider's login page. */
export const SSO_REQUEST_TTL_MS = 10 * 60_000;
/** Bounds on what the proxy passes from the browser, checked before anything is parsed. */
const MAX_CALLBACK_PARAMS = 16;
const MAX_CALLBACK_PARAM_BYTES = 512 * 1024;

/** What SSO logins and renewals both need from the auth service. */
export interface SsoCommonDeps {
  store: Store;
  drivers: Partial<Record<ConnectorKind, SsoDriver>>;
  clusterName: string;
  logger: Logger;
  audit: AuditLog;
  now: () => Date;
  /** Creates or replaces the SSO user and tells every proxy. */
  saveUser(user: UserResource): Promise<void>;
}

export interface SsoLoginsDeps extends SsoCommonDeps {
  /** Signs the user's certificate, as a local login does (roles' TTL, kube routing). */
  issue(user: UserResource, publicKeyPem: string, opts: { ttlMs?: number; kubernetesCluster?: string; loginIp?: string }): Promise<CertificatesResult>;
  /** Why this user may not log in (a lock on it or its roles), or undefined. */
  lockOf(user: string, roles: string[]): Promise<string | undefined>;
  /** Throws LimitExceededError when the address has tried too often. */
  limit(remoteIp: string | undefined): void;
  /** Throws BadParameterError for a public key certificates cannot be signed for. */
  checkPublicKey(pem: string): void;
  /** Keeps what the login left for checking it again at renewal (see renewal.ts). */
  remember(user: UserResource, kind: ConnectorKind, connector: string, who: SsoIdentity): Promise<void>;
}

interface StoredRequest {
  connector: string;
  testConnector?: ConnectorResource;
  keep: Record<string, string>;
  publicKeyPem: string;
  clientRedirect: string;
  secretKey: string;
  ttlMs: number;
  kubernetesCluster: string;
  callbackUrl: string;
  remoteIp: string;
}

/**
 * SSO console logins in the auth service: starts a request (driver `begin`, stored once),
 * completes it from the provider's callback (driver `complete`), creates or updates the SSO
 * user, signs certificates and seals them for kw. Only a proxy, which carries the browser's
 * requests, may call these; the local admin too, for `kwctl sso test`.
 */
export class SsoLogins {
  constructor(private readonly d: SsoLoginsDeps) {}

  async createRequest(
    caller: Caller,
    input: { kind: string; connectorName: string; publicKeyPem: string; clientRedirectUrl: string; ttlMs: number; kubernetesCluster: string; testConnectorJson: string; remoteIp: string },
  ): Promise<{ requestId: string; redirectUrl: string }> {
    const test = input.testConnectorJson !== '';
    requireRelay(caller, test);
    this.d.limit(input.remoteIp || undefined);
    const kind = connectorKind(input.kind);
    const driver = this.driver(kind);
    if (!test) this.d.checkPublicKey(input.publicKeyPem);
    const connector = test ? testConnector(input.testConnectorJson, kind) : await this.connector(kind, input.connectorName);
    let redirect: { base: URL; secretKey: string };
    try {
      redirect = parseClientRedirect(input.clientRedirectUrl);
    } catch (err) {
      throw new BadParameterError((err as Error).message, { field: 'redirect_url' });
    }
    const callbackUrl = callbackOf(connector);
    const requestId = randomBytes(32).toString('base64url');
    let begun: Awaited<ReturnType<SsoDriver['begin']>>;
    try {
      begun = await this.run(connector, () => driver.begin({ connector, requestId, callbackUrl }));
    } catch (err) {
      if (!(err instanceof SsoLoginError)) throw err;
      // Said to kw in one sentence: which connector, and whether its provider is down.
      const message = `${kind} connector "${connector.metadata.name}": ${err.message}`;
      throw /unreachable/.test(err.reason) ? new ConnectionProblemError(message, { reason: err.reason }) : new BadParameterError(message, { reason: err.reason });
    }
    const stored: StoredRequest = {
      connector: connector.metadata.name,
      ...(test ? { testConnector: connector } : {}),
      keep: begun.keep,
      publicKeyPem: input.publicKeyPem,
      clientRedirect: redirect.base.toString(),
      secretKey: redirect.secretKey,
      ttlMs: input.ttlMs,
      kubernetesCluster: input.kubernetesCluster,
      callbackUrl,
      remoteIp: input.remoteIp,
    };
    await putSsoRequest(this.d.store, requestId, kind, stored as unknown as Record<string, unknown>, new Date(this.d.now().getTime() + SSO_REQUEST_TTL_MS));
    this.d.logger.info({ kind, connector: connector.metadata.name, test }, 'SSO login started');
    return { requestId, redirectUrl: begun.url };
  }

  /**
   * Completes a login from the provider's callback. Never throws for what the provider or the
   * person did: the answer says where to send the browser (kw's callback with the sealed
   * certificates or with the reason) and what the page shows.
   */
  async validateCallback(
    caller: Caller,
    input: { kind: string; params: Record<string, string>; remoteIp: string },
  ): Promise<{ redirectUrl: string; username: string; message: string; success: boolean; testReportJson: string }> {
    requireRelay(caller, false);
    const kind = connectorKind(input.kind);
    checkParams(input.params);
    const requestId = (kind === 'saml' ? input.params['RelayState'] : input.params['state']) ?? '';
    const raw = requestId ? await takeSsoRequest(this.d.store, requestId, kind, this.d.now()) : undefined;
    if (!raw) {
      this.d.logger.warn({ kind, ip: input.remoteIp }, 'SSO callback for no pending login request');
      return { redirectUrl: '', username: '', message: 'This login request is unknown, expired or already used. Run kw login again.', success: false, testReportJson: '' };
    }
    const req = raw as unknown as StoredRequest;
    const fail = (reason: string, message: string, connector: string) => {
      this.d.audit.emit(auditEvent(EVENTS.userSsoLoginFailure, { user: '', method: kind, connector, 'addr.remote': input.remoteIp, cluster_name: this.d.clusterName, success: false, error: message, reason }, this.d.now()));
      this.d.logger.warn({ kind, connector, reason, ip: input.remoteIp }, 'SSO login failed');
      const target = new URL(req.clientRedirect);
      target.searchParams.set('error', message);
      return { redirectUrl: target.toString(), username: '', message: `Login failed: ${message}`, success: false, testReportJson: '' };
    };
    let connector: ConnectorResource;
    try {
      connector = req.testConnector ?? (await this.connector(kind, req.connector));
    } catch (err) {
      return fail('connector gone', (err as Error).message, req.connector);
    }
    let who: SsoIdentity;
    try {
      who = await this.run(connector, () => this.driver(kind).complete({ connector, requestId, callbackUrl: req.callbackUrl, keep: req.keep, params: input.params }));
    } catch (err) {
      if (err instanceof SsoLoginError) return fail(err.reason, `${kind} connector "${connector.metadata.name}": ${err.message}`, connector.metadata.name);
      throw err;
    }
    if (req.testConnector) return this.testReport(req, connector, who);
    if (who.roles.length === 0) return fail('no role matched', `${kind} connector "${connector.metadata.name}" maps ${who.username} to no role`, connector.metadata.name);
    const lock = await this.d.lockOf(who.username, who.roles);
    if (lock) return fail('locked', lock, connector.metadata.name);
    const user = ssoUser(who, kind, connector.metadata.name, new Date(this.d.now().getTime() + (req.ttlMs || 12 * 3600_000)), this.d.now());
    let certs: CertificatesResult;
    try {
      await this.d.saveUser(user);
      await this.d.remember(user, kind, connector.metadata.name, who);
      certs = await this.d.issue(user, req.publicKeyPem, { ttlMs: req.ttlMs, kubernetesCluster: req.kubernetesCluster, ...(input.remoteIp ? { loginIp: input.remoteIp } : {}) });
    } catch (err) {
      if (err instanceof BadParameterError || err instanceof NotFoundError || err instanceof AccessDeniedError) return fail(String(err.data['reason'] ?? 'refused'), err.message, connector.metadata.name);
      throw err;
    }
    this.d.audit.emit(
      auditEvent(
        EVENTS.userSsoLogin,
        { user: who.username, method: kind, connector: connector.metadata.name, 'addr.remote': input.remoteIp, cluster_name: this.d.clusterName, success: true, roles: who.roles, ...(who.warnings.length ? { warnings: who.warnings } : {}) },
        this.d.now(),
      ),
    );
    for (const warning of who.warnings) this.d.logger.warn({ connector: connector.metadata.name }, warning);
    const response: SsoLoginResponse = { username: who.username, certPem: certs.certPem, userCaPems: certs.userCaPems, hostCaPems: certs.hostCaPems, expires: certs.expires.toISOString(), clusterName: certs.clusterName };
    const target = new URL(req.clientRedirect);
    target.searchParams.set('response', seal(req.secretKey, JSON.stringify(response)));
    this.d.logger.info({ user: who.username, kind, connector: connector.metadata.name, roles: who.roles }, 'SSO login succeeded');
    return { redirectUrl: target.toString(), username: who.username, message: `Logged in as ${who.username}. You can close this window and return to the terminal.`, success: true, testReportJson: '' };
  }

  private testReport(req: StoredRequest, connector: ConnectorResource, who: SsoIdentity) {
    const report = { connector: connector.metadata.name, kind: connector.kind, username: who.username, subject: who.subject, roles: who.roles, traits: who.traits, received: who.received, warnings: who.warnings };
    const target = new URL(req.clientRedirect);
    target.searchParams.set('response', seal(req.secretKey, JSON.stringify(report)));
    return { redirectUrl: target.toString(), username: who.username, message: 'The connector test is done. You can close this window and return to the terminal.', success: true, testReportJson: JSON.stringify(report) };
  }

  private driver(kind: ConnectorKind): SsoDriver {
    const driver = this.d.drivers[kind];
    if (!driver) throw new BadParameterError(`${kind} logins are not available on this auth server`, { kind });
    return driver;
  }

  private async connector(kind: ConnectorKind, name: string): Promise<ConnectorResource> {
    const stored = await this.d.store.findResource(kind, name);
    if (!stored) throw new NotFoundError(`${kind} connector "${name}" is not found`, { kind, name });
    return stored.resource as unknown as ConnectorResource;
  }

  /** Runs a driver step; an unexpected failure becomes a login error naming the connector. */
  private async run<T>(connector: ConnectorResource, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (err instanceof SsoLoginError) throw err;
      this.d.logger.error({ err, connector: connector.metadata.name }, 'SSO driver failed');
      throw new SsoLoginError('internal', `the ${connector.kind} connector failed: ${(err as Error).message}`);
    }
  }
}

function requireRelay(caller: Caller, test: boolean): void {
  const roles = caller.kind === 'host' ? caller.identity.systemRoles : [];
  if (roles.includes('Proxy') || (test && roles.includes('Admin'))) return;
  throw new AccessDeniedError('SSO logins go through a proxy’s web API (kw login --auth=…)', { reason: 'not_a_proxy' });
}

function connectorKind(kind: string): ConnectorKind {
  if ((CONNECTOR_KINDS as readonly string[]).includes(kind)) return kind as ConnectorKind;
  throw new BadParameterError(`unknown SSO connector kind "${kind.slice(0, 40)}" (expected github, oidc or saml)`, { kind: kind.slice(0, 40) });
}

function checkParams(params: Record<string, string>): void {
  const entries = Object.entries(params);
  if (entries.length > MAX_CALLBACK_PARAMS) throw new BadParameterError(`the callback has ${entries.length} parameters, more than ${MAX_CALLBACK_PARAMS}`);
  let bytes = 0;
  for (const [k, v] of entries) bytes += k.length + v.length;
  if (bytes > MAX_CALLBACK_PARAM_BYTES) throw new BadParameterError(`the callback is ${bytes} bytes, more than ${MAX_CALLBACK_PARAM_BYTES}`);
}

/** Where the provider sends the browser back: redirect_url (github, oidc: the first) or acs (saml). */
export function callbackOf(connector: ConnectorResource): string {
  const spec = connector.spec as { redirect_url?: string | string[]; acs?: string };
  const url = connector.kind === 'saml' ? spec.acs : Array.isArray(spec.redirect_url) ? spec.redirect_url[0] : spec.redirect_url;
  if (!url) throw new BadParameterError(`${connector.kind} connector "${connector.metadata.name}" has no ${connector.kind === 'saml' ? 'acs' : 'redirect_url'}`);
  return url;
}

function testConnector(json: string, kind: ConnectorKind): ConnectorResource {
  const { docs } = parseResourceDocuments(json, 'the connector under test');
  const [doc] = docs as Resource[];
  if (!doc || docs.length !== 1 || doc.kind !== kind) throw new BadParameterError(`expected exactly one ${kind} connector to test`);
  return doc as unknown as ConnectorResource;
}

/** The user an SSO login creates or refreshes, as Teleport makes them (created_by, expiring with the session). */
export function ssoUser(who: SsoIdentity, kind: ConnectorKind, connector: string, expires: Date, now: Date): UserResource {
  const identities = [{ connector_id: connector, username: who.username, ...(who.subject ? { user_id: who.subject } : {}) }];
  return {
    kind: 'user',
    version: 'v2',
    metadata: { name: who.username, expires: expires.toISOString() },
    spec: {
      roles: who.roles,
      traits: who.traits,
      [`${kind}_identities`]: identities,
      created_by: { connector: { type: kind, id: connector, identity: who.username }, time: now.toISOString() },
    },
  } as UserResource;
}

/** The connectors users can log in with, for ping (names, kinds and display names only). */
export async function listSsoConnectors(store: Store): Promise<{ kind: ConnectorKind; name: string; display: string }[]> {
  const out: { kind: ConnectorKind; name: string; display: string }[] = [];
  for (const kind of CONNECTOR_KINDS) {
    for (const r of await store.listResources(kind)) {
      const display = (r.resource as { spec?: { display?: unknown } }).spec?.display;
      out.push({ kind, name: r.name, display: typeof display === 'string' ? display.slice(0, 200) : '' });
    }
  }
  return out;
}
