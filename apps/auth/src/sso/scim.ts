import { randomUUID, timingSafeEqual } from 'node:crypto';
import { AccessDeniedError, LimitExceededError } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import { parseResource, type LockResource, type UserResource } from '@keyway/resources';
import type { Store, StoredKind } from '@keyway/store';
import { EVENTS, auditEvent, type AuditLog, type EventKind } from '@keyway/audit';
import type { Caller } from '../api/caller.js';
import { describeCaller, requireAuthenticated } from '../api/caller.js';
import type { Change } from '../api/change-feed.js';
import { SCIM_SCHEMAS, ScimError, parseCreate, parseFilter, parsePaging, parsePatch, parseReplace, parseRoute, parseScimJson, scimTokenName, type ScimChange } from './scim-parse.js';

export { ScimError, scimTokenName } from './scim-parse.js';

/**
 * SCIM 2.0 provisioning as the auth service answers it (the proxy only carries the request).
 * Keyway keeps no profile: SSO users are created at login. What SCIM does is deprovision:
 * deactivating or deleting a user locks it ("deprovisioned by SCIM", no expiry, labelled so
 * SCIM can lift it again) and deletes its SSO user, which every proxy enforces within a second.
 *
 * SCIM acts only on SSO users and on names that have no user yet (lock only, so that a later
 * SSO login is refused). A local user is never touched: every call naming one answers 409.
 */

export const SCIM_LOCK_MESSAGE = 'deprovisioned by SCIM';
/** The label of the locks SCIM made: "deactivated" (GET shows active false) or "deleted" (GET is 404). */
export const SCIM_LOCK_LABEL = 'keyway/scim';
type LockState = 'deactivated' | 'deleted';

export interface ScimDeps {
  store: Store;
  publish(change: Change): void;
  audit: AuditLog;
  logger: Logger;
  clusterName: string;
  now(): Date;
  /** Throws LimitExceededError when the address has called too often. */
  limit(remoteIp: string | undefined): void;
}

export interface ScimRequest {
  token: string;
  method: string;
  path: string;
  query: string;
  body: string;
  remoteIp: string;
}

export interface ScimAnswer {
  status: number;
  body: string;
}

type Subject = { kind: 'sso'; user: UserResource } | { kind: 'local' } | { kind: 'none' };

export class ScimService {
  constructor(private readonly d: ScimDeps) {}

  /** Answers one SCIM request. Throws only when the caller is not a proxy (that is no SCIM answer). */
  async handle(caller: Caller, req: ScimRequest): Promise<ScimAnswer> {
    const c = requireAuthenticated(caller);
    if (c.kind !== 'host' || !c.identity.systemRoles.includes('Proxy')) throw new AccessDeniedError(`${describeCaller(c)} may not relay SCIM requests`);
    try {
      this.d.limit(req.remoteIp || undefined);
      await this.checkToken(req.token, req.remoteIp);
      return await this.route(req);
    } catch (err) {
      if (err instanceof ScimError) return answer(err.status, err.document());
      if (err instanceof LimitExceededError) return answer(429, new ScimError(429, err.message).document());
      throw err;
    }
  }

  /** A `Scim` token: looked up by its hash, compared in constant time, expiry enforced by the store. */
  private async checkToken(token: string, remoteIp: string): Promise<void> {
    if (!token) throw new ScimError(401, 'a bearer token is required (kwctl tokens add --type=scim)');
    const name = scimTokenName(token);
    const stored = await this.d.store.findResource('token', name);
    const roles = (stored?.resource['spec'] as { roles?: string[] } | undefined)?.roles ?? [];
    const same = stored !== undefined && stored.name.length === name.length && timingSafeEqual(Buffer.from(stored.name), Buffer.from(name));
    if (!same || roles.length === 0 || !roles.every((r) => r === 'Scim')) {
      this.d.logger.warn({ ip: remoteIp }, 'SCIM request refused: unknown, expired or non-SCIM token');
      throw new ScimError(401, 'the bearer token is not a valid SCIM token (unknown or expired)');
    }
  }

  private async route(req: ScimRequest): Promise<ScimAnswer> {
    const route = parseRoute(req.path);
    const method = req.method.toUpperCase();
    const only = (...allowed: string[]) => {
      if (!allowed.includes(method)) throw new ScimError(405, `${method.slice(0, 10)} is not allowed here (${allowed.join(', ')})`);
    };
    const q = new URLSearchParams(req.query);
    switch (route.kind) {
      case 'spc':
        only('GET');
        return answer(200, serviceProviderConfig());
      case 'resourceTypes':
        only('GET');
        return route.id === undefined ? answer(200, listOf([userResourceType()], 1)) : route.id === 'User' ? answer(200, userResourceType()) : notFound(`no resource type "${route.id}"`);
      case 'schemas':
        only('GET');
        return route.id === undefined ? answer(200, listOf([userSchema()], 1)) : route.id === SCIM_SCHEMAS.user ? answer(200, userSchema()) : notFound(`no schema "${route.id}"`);
      case 'users':
        only('GET', 'POST');
        return method === 'GET' ? this.list(q) : this.create(parseCreate(parseScimJson(req.body)), req.remoteIp);
      case 'user':
        only('GET', 'PUT', 'PATCH', 'DELETE');
        if (method === 'GET') return this.get(route.id);
        if (method === 'DELETE') {
          await this.deprovision(route.id, 'deleted', req.remoteIp);
          return { status: 204, body: '' };
        }
        return this.change(route.id, method === 'PATCH' ? parsePatch(parseScimJson(req.body)) : parseReplace(parseScimJson(req.body), route.id), req.remoteIp);
    }
  }

  private async get(name: string): Promise<ScimAnswer> {
    const subject = await this.subject(name);
    if (subject.kind === 'local') throw localUser(name);
    const state = lockState(await this.scimLocks(name));
    if (subject.kind === 'sso') return answer(200, scimUser(name, state === undefined, subject.user));
    if (state === 'deactivated') return answer(200, scimUser(name, false));
    return notFound(`no SCIM-managed user "${name}"`);
  }

  private async list(q: URLSearchParams): Promise<ScimAnswer> {
    const only = parseFilter(q.get('filter'));
    const { startIndex, count } = parsePaging(q);
    const locks = new Map<string, LockState>();
    for (const { resource } of await this.d.store.listResources('lock')) {
      const lock = resource as unknown as LockResource;
      const state = lock.metadata.labels?.[SCIM_LOCK_LABEL];
      if (lock.spec.target.user && (state === 'deactivated' || state === 'deleted') && locks.get(lock.spec.target.user) !== 'deactivated') locks.set(lock.spec.target.user, state);
    }
    const users = new Map<string, Record<string, unknown>>();
    for (const { name, resource } of await this.d.store.listResources('user')) {
      if (only !== undefined && name !== only) continue;
      const user = resource as unknown as UserResource;
      if (user.spec.created_by?.connector) users.set(name, scimUser(name, !locks.has(name), user));
    }
    for (const [name, state] of locks) {
      if (state === 'deactivated' && !users.has(name) && (only === undefined || name === only) && (await this.subject(name)).kind === 'none') users.set(name, scimUser(name, false));
    }
    const all = [...users.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, u]) => u);
    return answer(200, { ...listOf(all.slice(startIndex - 1, startIndex - 1 + count), startIndex), totalResults: all.length });
  }

  /**
   * Okta creates users before their first login. Keyway stores nothing for them (the SSO login
   * creates the user, with the roles the connector maps): the answer is the resource, and a
   * user created inactive is locked at once. Creating also lifts an earlier SCIM lock on the name.
   */
  private async create(input: { userName: string; active: boolean }, remoteIp: string): Promise<ScimAnswer> {
    const subject = await this.subject(input.userName);
    if (subject.kind === 'local') throw localUser(input.userName);
    if (subject.kind === 'sso') throw new ScimError(409, `user "${input.userName}" already exists`, 'uniqueness');
    if (input.active) await this.reactivate(input.userName, remoteIp);
    else await this.deprovision(input.userName, 'deactivated', remoteIp);
    return answer(201, scimUser(input.userName, input.active));
  }

  private async change(name: string, change: ScimChange, remoteIp: string): Promise<ScimAnswer> {
    const subject = await this.subject(name);
    if (subject.kind === 'local') throw localUser(name);
    if (change.active === false) {
      await this.deprovision(name, 'deactivated', remoteIp);
      return answer(200, scimUser(name, false));
    }
    if (change.active === true) await this.reactivate(name, remoteIp);
    const state = lockState(await this.scimLocks(name));
    return answer(200, scimUser(name, state === undefined, subject.kind === 'sso' ? subject.user : undefined));
  }

  /** Lock first (a login racing with this is refused by the lock), then delete the SSO user. */
  private async deprovision(name: string, state: LockState, remoteIp: string): Promise<void> {
    const subject = await this.subject(name);
    if (subject.kind === 'local') throw localUser(name);
    const existing = await this.scimLocks(name);
    if (existing.length === 0) {
      const lock = parseResource({
        kind: 'lock',
        version: 'v2',
        metadata: { name: randomUUID(), labels: { [SCIM_LOCK_LABEL]: state } },
        spec: { target: { user: name }, message: SCIM_LOCK_MESSAGE, created_at: this.d.now().toISOString(), created_by: 'scim' },
      }) as LockResource;
      await this.put('lock', lock.metadata.name, lock);
      this.emit(EVENTS.lockCreate, { name: lock.metadata.name, kind: 'lock', operation: 'create', target: { user: name }, message: SCIM_LOCK_MESSAGE }, remoteIp);
    } else if (state === 'deleted') {
      for (const lock of existing) if (lock.metadata.labels?.[SCIM_LOCK_LABEL] !== 'deleted') await this.put('lock', lock.metadata.name, { ...lock, metadata: { ...lock.metadata, labels: { ...lock.metadata.labels, [SCIM_LOCK_LABEL]: 'deleted' } } });
    }
    if (subject.kind === 'sso') {
      await this.d.store.deleteResource('user', name);
      this.d.publish({ type: 'delete', kind: 'user', name });
      this.emit(EVENTS.userDelete, { user: name, name, kind: 'user', operation: 'delete', connector: subject.user.spec.created_by?.connector?.id ?? '' }, remoteIp);
    }
    this.d.logger.info({ user: name, state, ssoUserDeleted: subject.kind === 'sso' }, 'user deprovisioned by SCIM');
  }

  /** Lifts the locks SCIM made on the name; locks an administrator made stay. */
  private async reactivate(name: string, remoteIp: string): Promise<void> {
    for (const lock of await this.scimLocks(name)) {
      await this.d.store.deleteResource('lock', lock.metadata.name);
      this.d.publish({ type: 'delete', kind: 'lock', name: lock.metadata.name });
      this.emit(EVENTS.lockDelete, { name: lock.metadata.name, kind: 'lock', operation: 'delete', target: { user: name } }, remoteIp);
      this.d.logger.info({ user: name, lock: lock.metadata.name }, 'user reactivated by SCIM');
    }
  }

  private async subject(name: string): Promise<Subject> {
    const stored = await this.d.store.findResource('user', name);
    if (!stored) return { kind: 'none' };
    const user = stored.resource as unknown as UserResource;
    return user.spec.created_by?.connector ? { kind: 'sso', user } : { kind: 'local' };
  }

  private async scimLocks(name: string): Promise<LockResource[]> {
    return (await this.d.store.listResources('lock'))
      .map((r) => r.resource as unknown as LockResource)
      .filter((l) => l.spec.target.user === name && l.metadata.labels?.[SCIM_LOCK_LABEL] !== undefined);
  }

  private async put(kind: StoredKind, name: string, resource: LockResource): Promise<void> {
    await this.d.store.putResource(kind, name, resource as unknown as Record<string, unknown>, { expires: null });
    const stored = await this.d.store.findResource(kind, name);
    if (stored) this.d.publish({ type: 'put', kind, name, resource: stored.resource, revision: stored.revision });
  }

  private emit(event: EventKind, fields: Record<string, unknown>, remoteIp: string): void {
    this.d.audit.emit(auditEvent(event, { user: 'scim', ...fields, scim: true, 'addr.remote': remoteIp, cluster_name: this.d.clusterName }, this.d.now()));
  }
}

function localUser(name: string): ScimError {
  return new ScimError(409, `"${name}" is a local Keyway user: SCIM manages only SSO users (use kwctl lock or kwctl users rm)`, 'uniqueness');
}

function notFound(detail: string): ScimAnswer {
  return answer(404, new ScimError(404, detail).document());
}

function lockState(locks: LockResource[]): LockState | undefined {
  const states = locks.map((l) => l.metadata.labels?.[SCIM_LOCK_LABEL]);
  return states.includes('deactivated') ? 'deactivated' : states.length > 0 ? 'deleted' : undefined;
}

function answer(status: number, body: unknown): ScimAnswer {
  return { status, body: JSON.stringify(body) };
}

function scimUser(name: string, active: boolean, user?: UserResource): Record<string, unknown> {
  return {
    schemas: [SCIM_SCHEMAS.user],
    id: name,
    userName: name,
    active,
    meta: { resourceType: 'User', location: `/scim/v2/Users/${encodeURIComponent(name)}`, ...(user?.spec.created_by?.time ? { created: user.spec.created_by.time } : {}) },
  };
}

function listOf(resources: unknown[], startIndex: number): Record<string, unknown> {
  return { schemas: [SCIM_SCHEMAS.list], totalResults: resources.length, startIndex, itemsPerPage: resources.length, Resources: resources };
}

function serviceProviderConfig(): Record<string, unknown> {
  return {
    schemas: [SCIM_SCHEMAS.spc],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: 200 },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [{ type: 'oauthbearertoken', name: 'OAuth Bearer Token', description: 'A token from kwctl tokens add --type=scim', primary: true }],
    meta: { resourceType: 'ServiceProviderConfig', location: '/scim/v2/ServiceProviderConfig' },
  };
}

function userResourceType(): Record<string, unknown> {
  return {
    schemas: [SCIM_SCHEMAS.resourceType],
    id: 'User',
    name: 'User',
    endpoint: '/Users',
    schema: SCIM_SCHEMAS.user,
    meta: { resourceType: 'ResourceType', location: '/scim/v2/ResourceTypes/User' },
  };
}

function userSchema(): Record<string, unknown> {
  const attribute = (name: string, type: string, extra: Record<string, unknown>) => ({ name, type, multiValued: false, required: false, caseExact: false, mutability: 'readWrite', returned: 'default', uniqueness: 'none', ...extra });
  return {
    schemas: [SCIM_SCHEMAS.schema],
    id: SCIM_SCHEMAS.user,
    name: 'User',
    description: 'A Keyway SSO user (id and userName are the Keyway user name)',
    attributes: [attribute('userName', 'string', { required: true, caseExact: true, mutability: 'immutable', uniqueness: 'server' }), attribute('active', 'boolean', {})],
    meta: { resourceType: 'Schema', location: `/scim/v2/Schemas/${SCIM_SCHEMAS.user}` },
  };
}
