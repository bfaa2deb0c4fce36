/**
 * Authentication (client certificates, bearer tokens), impersonation and a small RBAC table,
 * with kube-apiserver's semantics and wording.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { decodeName, OID, parseCertificate } from '@keyway/pki';
import { forbidden, internalError, unauthorized, type StatusError } from './status.js';

export interface UserInfo {
  username: string;
  groups: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}

/**
 * What impersonated users and groups may do (the identities you would bind with RBAC).
 * Subjects: any listed user or any listed group; verbs/resources/apiGroups/namespaces/
 * resourceNames may use '*'. resources name subresources as 'pods/log', 'pods/exec',
 * 'pods/portforward', or 'pods/*'. Without namespaces the rule is cluster-wide (like a
 * ClusterRoleBinding); with them it never matches cluster-scoped requests.
 */
export interface TestRbacRule {
  users?: string[];
  groups?: string[];
  verbs: string[];
  resources: string[];
  /** Default: any group. */
  apiGroups?: string[];
  namespaces?: string[];
  resourceNames?: string[];
}

export interface Attributes {
  user: UserInfo;
  verb: string;
  resourceRequest: boolean;
  path: string;
  apiGroup?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export const SYSTEM_MASTERS = 'system:masters';
export const AUTHENTICATED = 'system:authenticated';
const UNAUTHENTICATED = 'system:unauthenticated';

const identities = new WeakMap<object, UserInfo | null>();

/** The user a client certificate names: CN is the user, each O a group (kube's x509 authenticator). */
export function certificateUser(socket: TLSSocket): UserInfo | null {
  if (identities.has(socket)) return identities.get(socket) ?? null;
  let user: UserInfo | null = null;
  if (socket.authorized) {
    const peer = socket.getPeerCertificate(false);
    if (peer && peer.raw) {
      const attrs = decodeName(parseCertificate(peer.raw).subject);
      const cn = attrs.find((a) => a.oid === OID.commonName)?.value;
      if (cn) user = { username: cn, groups: [...attrs.filter((a) => a.oid === OID.organization).map((a) => a.value), AUTHENTICATED] };
    }
  }
  identities.set(socket, user);
  return user;
}

export function authenticate(req: IncomingMessage, tokens: ReadonlyMap<string, UserInfo>): UserInfo {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) {
    const user = tokens.get(auth.slice('Bearer '.length).trim());
    if (!user) throw unauthorized();
    return { ...user, groups: user.groups.includes(AUTHENTICATED) ? user.groups : [...user.groups, AUTHENTICATED] };
  }
  const user = certificateUser(req.socket as TLSSocket);
  if (!user) throw unauthorized();
  return user;
}

const matches = (list: readonly string[] | undefined, value: string) => list === undefined || list.includes('*') || list.includes(value);

function ruleMatches(rule: TestRbacRule, a: Attributes): boolean {
  const subject = (rule.users ?? []).some((u) => u === '*' || u === a.user.username) || (rule.groups ?? []).some((g) => a.user.groups.includes(g));
  if (!subject) return false;
  if (!a.resourceRequest || a.resource === undefined) return false;
  if (!rule.verbs.includes('*') && !rule.verbs.includes(a.verb)) return false;
  if (!matches(rule.apiGroups, a.apiGroup ?? '')) return false;
  const full = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const resourceOk = rule.resources.some((r) => r === '*' || r === full || (a.subresource !== undefined && r === `${a.resource}/*`) || (a.subresource !== undefined && r === `*/${a.subresource}`));
  if (!resourceOk) return false;
  if (rule.namespaces !== undefined) {
    // Namespace-bound rules (RoleBindings) never grant cluster-scoped access.
    if (!a.namespace || !matches(rule.namespaces, a.namespace)) return false;
  }
  if (rule.resourceNames !== undefined && !(a.name !== undefined && matches(rule.resourceNames, a.name))) return false;
  return true;
}

export class Authorizer {
  /** Rules set by the test (setRbac). */
  rules: TestRbacRule[] = [];

  constructor(private readonly builtin: readonly TestRbacRule[]) {}

  allows(a: Attributes): boolean {
    if (a.user.groups.includes(SYSTEM_MASTERS)) return true;
    // Discovery, version, health and OpenAPI are readable by every authenticated identity
    // (kube binds system:discovery and system:public-info-viewer to system:authenticated).
    if (!a.resourceRequest) return a.user.groups.includes(AUTHENTICATED);
    // Asking about yourself is open to everyone (kube's system:basic-user).
    if (a.verb === 'create' && (a.resource === 'selfsubjectreviews' || a.resource === 'selfsubjectaccessreviews')) return a.user.groups.includes(AUTHENTICATED);
    return [...this.builtin, ...this.rules].some((r) => ruleMatches(r, a));
  }

  /** Throws kube's 403 Status when not allowed. */
  check(a: Attributes): void {
    if (this.allows(a)) return;
    throw forbidden({
      user: a.user.username,
      verb: a.verb,
      path: a.path,
      ...(a.resourceRequest && a.resource !== undefined
        ? { resource: a.resource, group: a.apiGroup ?? '', ...(a.subresource ? { subresource: a.subresource } : {}), ...(a.namespace ? { namespace: a.namespace } : {}), ...(a.name ? { name: a.name } : {}) }
        : {}),
    });
  }
}

/** The built-in rule that lets an identity impersonate anyone (the seed's impersonation ClusterRole). */
export function impersonatorRule(subjects: { users?: string[]; groups?: string[] }): TestRbacRule {
  return { ...subjects, verbs: ['impersonate'], resources: ['users', 'groups', 'serviceaccounts', 'uids', 'userextras/*'], apiGroups: ['', 'authentication.k8s.io'] };
}

function headerValues(req: IncomingMessage, name: string): string[] {
  const v = req.headersDistinct[name];
  return v ? v.map((x) => x.trim()).filter((x) => x !== '') : [];
}

/**
 * Applies Impersonate-User / -Group / -Uid / -Extra-* the way kube's impersonation filter
 * does: every impersonated attribute is authorized for the requester (verb impersonate on
 * users, groups, uids, userextras/<key>, or serviceaccounts), and the result is the new user.
 * Returns undefined when the request impersonates nothing.
 */
export function impersonate(req: IncomingMessage, requester: UserInfo, authz: Authorizer): UserInfo | undefined {
  const users = headerValues(req, 'impersonate-user');
  const groups = headerValues(req, 'impersonate-group');
  const uids = headerValues(req, 'impersonate-uid');
  const extra: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (!name.startsWith('impersonate-extra-') || !values) continue;
    const key = decodeURIComponent(name.slice('impersonate-extra-'.length)).toLowerCase();
    extra[key] = [...(extra[key] ?? []), ...values];
  }
  const hasExtra = Object.keys(extra).length > 0;
  if (users.length === 0 && groups.length === 0 && uids.length === 0 && !hasExtra) return undefined;
  if (users.length === 0) {
    const what = [...groups.map((g) => `{Group ${g}}`), ...uids.map((u) => `{UID ${u}}`), ...Object.keys(extra).map((k) => `{Extra ${k}}`)];
    throw internalError(`requested [${what.join(' ')}] without impersonating a user`);
  }
  if (users.length > 1 || uids.length > 1) throw internalError('only one user and one uid may be impersonated');
  const username = users[0] as string;
  const check = (attrs: Omit<Attributes, 'user' | 'resourceRequest' | 'path'>): void => {
    const a: Attributes = { user: requester, resourceRequest: true, path: req.url ?? '/', ...attrs };
    if (authz.allows(a)) return;
    throw forbidden({ user: requester.username, verb: 'impersonate', resource: a.resource as string, group: a.apiGroup ?? '', ...(a.namespace ? { namespace: a.namespace } : {}), ...(a.name ? { name: a.name } : {}) });
  };
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  if (sa) check({ verb: 'impersonate', apiGroup: '', resource: 'serviceaccounts', namespace: sa[1] as string, name: sa[2] as string });
  else check({ verb: 'impersonate', apiGroup: '', resource: 'users', name: username });
  for (const g of groups) check({ verb: 'impersonate', apiGroup: '', resource: 'groups', name: g });
  for (const u of uids) check({ verb: 'impersonate', apiGroup: 'authentication.k8s.io', resource: 'uids', name: u });
  for (const [k, vs] of Object.entries(extra)) {
    for (const v of vs) check({ verb: 'impersonate', apiGroup: 'authentication.k8s.io', resource: 'userextras', subresource: k, name: v });
  }
  const resultGroups = [...groups];
  if (sa) resultGroups.push('system:serviceaccounts', `system:serviceaccounts:${sa[1] as string}`);
  if (username !== 'system:anonymous' && !resultGroups.includes(AUTHENTICATED) && !resultGroups.includes(UNAUTHENTICATED)) resultGroups.push(AUTHENTICATED);
  const user: UserInfo = { username, groups: resultGroups };
  if (uids[0] !== undefined) user.uid = uids[0];
  if (hasExtra) user.extra = extra;
  return user;
}

export type { StatusError };
