import { hkdfSync } from 'node:crypto';
import { AccessDeniedError, ConnectionProblemError } from '@keyway/errors';
import type { UserResource } from '@keyway/resources';
import { SsoLoginError, openSealed, seal, type ConnectorResource, type SsoIdentity } from '@keyway/sso';
import { deleteSsoSession, getSsoSession, putSsoSession, type SsoSession } from '@keyway/store';
import { EVENTS, auditEvent } from '@keyway/audit';
import { CONNECTOR_KINDS, ssoUser, type ConnectorKind, type SsoCommonDeps } from './logins.js';

/**
 * kw asks for a certificate again for every Kubernetes cluster it routes to. Asking the
 * provider each time would put it on kubectl's path; once a minute per user is enough for
 * "their access ends when the provider says so" (SCIM is the instant path).
 */
export const RECHECK_INTERVAL_MS = 60_000;

export interface SsoRenewalsDeps extends SsoCommonDeps {
  /** 64 hex characters; seals the renewal secrets at rest (see renewalKeyOf). */
  key: string;
  recheckIntervalMs: number;
  /** Deletes the SSO user and tells every proxy, which ends its open sessions. */
  deleteUser(name: string, connector: string): Promise<void>;
}

interface Sealed {
  username: string;
  renewal: Record<string, string>;
}

/**
 * The renewal key, derived from the CA key-encryption secret so that every auth replica has
 * the same one and a copy of the database alone does not reveal providers' tokens.
 */
export function renewalKeyOf(caKey: string, clusterName: string): string {
  return Buffer.from(hkdfSync('sha256', caKey, clusterName, 'keyway sso renewal v1', 32)).toString('hex');
}

/**
 * The IdP's word at certificate renewal: an SSO login that left a renewal secret (OIDC refresh
 * token, GitHub token) is checked with the provider again before a renewal is signed, and the
 * user's roles follow the provider's current answer. When the provider no longer vouches for
 * the person, or the mapping grants no role, the SSO user is deleted, which ends their access
 * everywhere, as SCIM deprovisioning does. SAML has no back channel: its logins rely on SCIM.
 */
export class SsoRenewals {
  constructor(private readonly d: SsoRenewalsDeps) {}

  /** Keeps (or forgets) what this login left for renewals. */
  async remember(user: UserResource, kind: ConnectorKind, connector: string, who: SsoIdentity): Promise<void> {
    const name = user.metadata.name;
    if (!who.renewal) return deleteSsoSession(this.d.store, name);
    const sealed = seal(this.d.key, JSON.stringify({ username: name, renewal: who.renewal } satisfies Sealed));
    const expires = user.metadata.expires ? new Date(user.metadata.expires) : new Date(this.d.now().getTime() + 12 * 3600_000);
    await putSsoSession(this.d.store, { username: name, kind, connector, subject: who.subject, sealed, checkedAt: this.d.now(), expires });
  }

  /** The user as the provider sees them now (possibly with new roles), or an error that refuses the renewal. */
  async recheck(user: UserResource): Promise<UserResource> {
    const name = user.metadata.name;
    if (!user.spec.created_by?.connector) return user;
    const session = await getSsoSession(this.d.store, name, this.d.now());
    if (!session) return user;
    if (this.d.now().getTime() - session.checkedAt.getTime() < this.d.recheckIntervalMs) return user;
    const kind = session.kind as ConnectorKind;
    const driver = (CONNECTOR_KINDS as readonly string[]).includes(kind) ? this.d.drivers[kind] : undefined;
    if (!driver?.recheck) return user;
    const renewal = this.unseal(session);
    const stored = await this.d.store.findResource(kind, session.connector);
    if (!stored) return this.revoke(user, session, 'connector gone', `${kind} connector "${session.connector}" no longer exists`);
    const connector = stored.resource as unknown as ConnectorResource;
    let who: SsoIdentity;
    try {
      who = await driver.recheck({ connector, subject: session.subject, renewal });
    } catch (err) {
      if (!(err instanceof SsoLoginError)) {
        this.d.logger.error({ err, connector: session.connector }, 'SSO recheck failed');
        throw new ConnectionProblemError(`cannot check your login with ${kind} connector "${session.connector}" again: ${(err as Error).message}`);
      }
      if (err.reason === 'provider unreachable') {
        throw new ConnectionProblemError(`cannot check your login with ${kind} connector "${session.connector}" again: ${err.message}; try again shortly`, { reason: err.reason });
      }
      return this.revoke(user, session, err.reason, err.message);
    }
    if (who.username !== name) return this.revoke(user, session, 'username changed', `the provider now names the person ${who.username.slice(0, 64)}`);
    const refreshed = ssoUser(who, kind, session.connector, user.metadata.expires ? new Date(user.metadata.expires) : session.expires, this.d.now());
    refreshed.spec.created_by = user.spec.created_by;
    if (JSON.stringify([refreshed.spec.roles, refreshed.spec.traits]) !== JSON.stringify([user.spec.roles, user.spec.traits])) {
      await this.d.saveUser(refreshed);
      this.d.logger.info({ user: name, connector: session.connector, roles: who.roles }, 'SSO user updated from the provider at renewal');
    }
    await this.remember(refreshed, kind, session.connector, who.renewal ? who : { ...who, renewal });
    return refreshed;
  }

  private unseal(session: SsoSession): Record<string, string> {
    try {
      const sealed = JSON.parse(openSealed(this.d.key, session.sealed)) as Sealed;
      if (sealed.username === session.username) return sealed.renewal;
    } catch {
      // Below: a key that changed, or bytes that were changed.
    }
    this.d.logger.warn({ user: session.username }, 'the SSO renewal secret cannot be opened');
    throw new AccessDeniedError(`your ${session.kind} login cannot be checked again (its renewal secret cannot be read); run kw login again`, { reason: 'renewal_unreadable' });
  }

  private async revoke(user: UserResource, session: SsoSession, reason: string, message: string): Promise<never> {
    const name = user.metadata.name;
    const full = `${session.kind} connector "${session.connector}" no longer grants ${name} access: ${message}`;
    await deleteSsoSession(this.d.store, name);
    await this.d.deleteUser(name, session.connector);
    this.d.audit.emit(
      auditEvent(
        EVENTS.userSsoLoginFailure,
        { user: name, method: session.kind, connector: session.connector, cluster_name: this.d.clusterName, success: false, error: full, reason, renewal: true },
        this.d.now(),
      ),
    );
    this.d.logger.warn({ user: name, connector: session.connector, reason }, 'SSO user removed: the provider no longer grants access');
    throw new AccessDeniedError(full, { reason: 'sso_revoked', sso_reason: reason });
  }
}
