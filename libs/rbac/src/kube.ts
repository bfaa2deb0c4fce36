/**
 * Per-request authorization of Kubernetes API requests, with Teleport's role semantics
 * (`kubernetes_labels`, `kubernetes_resources`, `kubernetes_groups`, `kubernetes_users`).
 *
 * The principle where Teleport is ambiguous, or where it filters responses and Keyway cannot:
 * Keyway never allows a request that Teleport would deny; it may deny (and then says why) a
 * request Teleport would have answered partially. Details in README.md ("Kubernetes access").
 */
import { compileGoRegexp, isPodOnlyVersion, type GoRegexp, type KubernetesResource, type LabelSelector, type RoleResource, type RoleVersion } from '@keyway/resources';
import { kindDisplayName, kindOf, type RequestInfo } from '@keyway/kube';
import { expandTemplate, type Traits } from './templates.js';

/** Added to the groups of every forwarded request, as Kubernetes itself does for any user. */
export const KUBE_SYSTEM_AUTHENTICATED = 'system:authenticated';

export interface KubeClusterInfo {
  name: string;
  labels: Record<string, string>;
}

export interface KubeAccessInput {
  /** The Keyway username (certificate CN). */
  username: string;
  /** The user's roles, resolved. */
  roles: readonly RoleResource[];
  traits: Traits;
  cluster: KubeClusterInfo;
  /** From parseRequestInfo (@keyway/kube). */
  request: RequestInfo;
  /** The client's own `Impersonate-User` (kubectl --as). */
  impersonateUser?: string;
  /** The client's own `Impersonate-Group` values (kubectl --as-group). */
  impersonateGroups?: string[];
}

export type KubeAccessResult =
  | {
      allowed: true;
      kubernetesUser: string;
      /** Sorted, deduplicated, always including system:authenticated. */
      kubernetesGroups: string[];
      impersonatedByClient: boolean;
      /** The roles that granted the request (and contributed users and groups). */
      roles: string[];
    }
  | {
      allowed: false;
      status: 403 | 404;
      /** For the Status message; kubectl prints it after `Error from server (Forbidden):`. */
      message: string;
      /** Which rule decided, e.g. `spec.deny.kubernetes_resources[0]`. */
      rule?: string;
      /** The role that rule belongs to. */
      role?: string;
    };

// ---------------------------------------------------------------------------------------------
// Matching values: `*` glob, `^…$` regular expression, otherwise exact (Teleport's MatchString).

const PATTERN_CACHE_LIMIT = 1024;
const patternCache = new Map<string, GoRegexp>();

/**
 * Every pattern runs on RE2 (re2js): linear in the value whatever the pattern, with Go's
 * syntax. A glob becomes `^part.*part$` with the parts quoted, as Teleport's MatchString does
 * (dot matching newlines, so `*` matches anything).
 */
function compilePattern(pattern: string): GoRegexp {
  let re = patternCache.get(pattern);
  if (re) return re;
  if (pattern.startsWith('^') && pattern.endsWith('$')) {
    re = compileGoRegexp(pattern);
  } else {
    // Quoted literals compile to a program linear in their length: no length bound needed.
    re = compileGoRegexp(`^${pattern.split('*').map(quoteMeta).join('.*')}$`, { dotAll: true, maxLength: Infinity });
  }
  if (patternCache.size >= PATTERN_CACHE_LIMIT) patternCache.clear();
  patternCache.set(pattern, re);
  return re;
}

/** Go's regexp.QuoteMeta. */
function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/**
 * True when `value` matches `pattern` as Teleport matches label values and resource names:
 * `'*'` matches anything, `*` inside a value is a glob (`dev-*`), `^…$` is a (Go-syntax)
 * regular expression that must match the whole value, anything else must be equal.
 * An invalid regular expression throws.
 */
export function matchKubePattern(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*') && !(pattern.startsWith('^') && pattern.endsWith('$'))) return pattern === value;
  return compilePattern(pattern).test(value);
}

/** Patterns that match every value: only these grant a whole collection. */
function matchesEverything(pattern: string | undefined): boolean {
  return pattern === '*' || pattern === '^.*$' || (pattern !== undefined && /^\*+$/.test(pattern));
}

// ---------------------------------------------------------------------------------------------
// Cluster labels.

type Mode = 'allow' | 'deny';

function asList(v: string | string[]): string[] {
  return Array.isArray(v) ? v : [v];
}

function selectorMatches(selector: LabelSelector | undefined, labels: Record<string, string>, traits: Traits, mode: Mode): boolean {
  const entries = Object.entries(selector ?? {});
  if (entries.length === 0) return false;
  const star = selector?.['*'];
  if (star !== undefined && asList(star).length === 1 && asList(star)[0] === '*') return true;
  try {
    for (const [rawKey, rawValue] of entries) {
      const keys = expandTemplate(rawKey, traits);
      // A key template must name exactly one label; otherwise the selector cannot be evaluated:
      // an allow selector then grants nothing, a deny selector denies (fail closed).
      if (keys.length !== 1) return mode === 'deny';
      const key = keys[0]!;
      if (!Object.hasOwn(labels, key)) return false;
      const values = asList(rawValue).flatMap((v) => expandTemplate(v, traits));
      if (values.includes('*')) continue;
      const actual = labels[key]!;
      if (!values.some((v) => matchKubePattern(v, actual))) return false;
    }
    return true;
  } catch {
    // Broken template or regular expression (role validation normally prevents both).
    return mode === 'deny';
  }
}

/**
 * Teleport's label matching for `kubernetes_labels`: every key of the selector must be a label
 * of the cluster, with a value matching one of the selector's values (`'*'`, glob, `^re$`,
 * traits templates expanded); `{'*': '*'}` matches every cluster; an empty selector matches none.
 */
export function kubeLabelsMatch(selector: LabelSelector | undefined, labels: Record<string, string>, traits: Traits): boolean {
  return selectorMatches(selector, labels, traits, 'allow');
}

function deniedByLabels(roles: readonly RoleResource[], cluster: KubeClusterInfo, traits: Traits): RoleResource | undefined {
  return roles.find((r) => selectorMatches(r.spec.deny.kubernetes_labels, cluster.labels, traits, 'deny'));
}

function rolesForCluster(roles: readonly RoleResource[], cluster: KubeClusterInfo, traits: Traits): RoleResource[] {
  return roles.filter((r) => selectorMatches(r.spec.allow.kubernetes_labels, cluster.labels, traits, 'allow'));
}

/**
 * The names of the clusters the roles give access to (kept in input order): some role's allow
 * `kubernetes_labels` match the cluster's labels and no role's deny `kubernetes_labels` do.
 * The proxy answers 404 for a cluster not in this list, so users cannot probe for clusters.
 */
export function visibleKubeClusters(roles: readonly RoleResource[], traits: Traits, clusters: readonly KubeClusterInfo[]): string[] {
  return clusters
    .filter((c) => !deniedByLabels(roles, c, traits) && rolesForCluster(roles, c, traits).length > 0)
    .map((c) => c.name);
}

// ---------------------------------------------------------------------------------------------
// kubernetes_resources.

/** Where the request's objects live. */
type Scope = 'cluster' | 'namespace' | 'all';

interface Target {
  verb: string;
  kind: string;
  builtin: boolean;
  resource: string;
  apiGroup: string;
  scope: Scope;
  /** Set when scope is 'namespace'. */
  namespace: string;
  /** `''` for a collection (list, watch, deletecollection, create). */
  name: string;
  subresource: string;
}

function targetOf(info: RequestInfo): Target {
  const k = kindOf(info.resource, info.apiGroup);
  let scope: Scope;
  if (k.clusterScoped) scope = 'cluster';
  else if (info.namespace !== '') scope = 'namespace';
  // A namespaced object is always addressed under /namespaces/{ns}; a named object without one
  // is cluster-scoped. A collection without one is a list across all namespaces, or a
  // collection of a cluster-scoped resource Keyway does not know: treated as the former.
  else if (info.name !== '') scope = 'cluster';
  else scope = 'all';
  return {
    verb: info.accessVerb,
    kind: k.kind,
    builtin: k.builtin,
    resource: info.resource,
    apiGroup: info.apiGroup,
    scope,
    namespace: scope === 'namespace' ? info.namespace : '',
    name: info.name,
    subresource: info.subresource,
  };
}

interface Entry {
  kind: string;
  apiGroup: string | undefined;
  namespace: string | undefined;
  name: string;
  verbs: string[];
  /** Position in the role's list, for messages. */
  index: number;
  source: KubernetesResource;
}

const WILDCARD_ENTRY = { kind: '*', apiGroup: '*', namespace: '*', name: '*', verbs: ['*'] };

/**
 * A role's entries with traits templates expanded (namespace and name give one entry per value,
 * verbs are flattened). An entry whose templates cannot be expanded grants nothing in allow and
 * denies everything in deny.
 */
function entriesOf(role: RoleResource, mode: Mode, traits: Traits): Entry[] {
  const out: Entry[] = [];
  (role.spec[mode].kubernetes_resources ?? []).forEach((source, index) => {
    try {
      const namespaces = source.namespace === undefined ? [undefined] : expandTemplate(source.namespace, traits);
      const names = expandTemplate(source.name, traits);
      let verbs = source.verbs.flatMap((v) => expandTemplate(v, traits));
      // A deny entry without verbs denies every verb (Teleport would ignore it; Keyway fails closed).
      if (mode === 'deny' && source.verbs.length === 0) verbs = ['*'];
      for (const namespace of namespaces) {
        for (const name of names) out.push({ kind: source.kind, apiGroup: source.api_group, namespace, name, verbs, index, source });
      }
    } catch {
      if (mode === 'deny') out.push({ ...WILDCARD_ENTRY, index, source });
    }
  });
  return out;
}

function verbAllowed(verbs: readonly string[], verb: string): boolean {
  return verb !== '' && (verbs.includes('*') || verbs.includes(verb));
}

function kindMatches(e: Entry, t: Target, version: RoleVersion): boolean {
  if (version === 'v8') {
    // Role v8 names resources by their plural and API group (absent = core group).
    return matchKubePattern(e.kind, t.resource) && matchKubePattern(e.apiGroup ?? '', t.apiGroup);
  }
  // v3-v7 kinds name built-in resources only; anything else is reached through '*'.
  return e.kind === '*' || (t.builtin && e.kind === t.kind);
}

const READ_VERBS = new Set(['get', 'list', 'watch']);

interface Relax {
  /** Accept any namespace for a request across all namespaces (for hints only). */
  namespace?: boolean;
  /** Accept any name pattern for a collection (for hints only). */
  name?: boolean;
}

/** Does allow entry `e` grant the whole request `t`? */
function allowEntryMatches(e: Entry, t: Target, version: RoleVersion, relax: Relax = {}): boolean {
  if (!verbAllowed(e.verbs, t.verb)) return false;
  const v7 = version !== 'v8';
  // v7: `kind: namespace` grants everything inside the namespaces its name matches.
  if (v7 && e.kind === 'namespace' && t.scope !== 'cluster') {
    if (t.scope === 'all') return relax.namespace === true || matchesEverything(e.name);
    return matchKubePattern(e.name, t.namespace);
  }
  // v7: access to objects inside a namespace lets one read that namespace object.
  if (
    v7 &&
    t.builtin &&
    t.kind === 'namespace' &&
    t.name !== '' &&
    READ_VERBS.has(t.verb) &&
    e.kind !== 'namespace' &&
    e.namespace !== undefined &&
    matchKubePattern(e.namespace, t.name)
  ) {
    return true;
  }
  if (!kindMatches(e, t, version)) return false;
  // A collection is granted only by an entry for every name: Keyway does not filter responses.
  const nameOk = t.name === '' ? relax.name === true || matchesEverything(e.name) : matchKubePattern(e.name, t.name);
  if (!nameOk) return false;
  switch (t.scope) {
    case 'cluster':
      // Only kind and name matter for a built-in cluster-scoped kind named explicitly; a '*'
      // kind (or an unknown cluster-scoped resource) also needs a namespace matching "".
      if (t.builtin && e.kind !== '*') return true;
      return e.namespace === undefined || matchKubePattern(e.namespace, '');
    case 'namespace':
      return e.namespace !== undefined && matchKubePattern(e.namespace, t.namespace);
    case 'all':
      return e.namespace !== undefined && (relax.namespace === true || matchesEverything(e.namespace));
  }
}

/** Could deny entry `e` apply to any object the request `t` touches? */
function denyEntryMatches(e: Entry, t: Target, version: RoleVersion): boolean {
  if (!verbAllowed(e.verbs, t.verb)) return false;
  if (version !== 'v8' && e.kind === 'namespace' && t.scope !== 'cluster') {
    return t.scope === 'all' || matchKubePattern(e.name, t.namespace);
  }
  if (!kindMatches(e, t, version)) return false;
  if (t.name !== '' && !matchKubePattern(e.name, t.name)) return false;
  switch (t.scope) {
    case 'cluster':
      // As Teleport: for built-in cluster-scoped kinds the entry's namespace does not matter.
      return t.builtin || e.namespace === undefined || matchKubePattern(e.namespace, '');
    case 'namespace':
      return e.namespace === undefined || matchKubePattern(e.namespace, t.namespace);
    case 'all':
      return true;
  }
}

function safely(mode: Mode, f: () => boolean): boolean {
  try {
    return f();
  } catch {
    return mode === 'deny';
  }
}

/**
 * Roles v3 to v6 restrict pods only: any other resource is granted by the role itself, as in
 * Teleport. Their default entries (all pods for v3-v5, none for v6) were applied when the role
 * was created (@keyway/resources role-versions.ts), so the stored role is evaluated as it is.
 */
function podOnlyUnrestricted(role: RoleResource, t: Target): boolean {
  return isPodOnlyVersion(role.version) && !(t.builtin && t.kind === 'pod');
}

function roleAllows(role: RoleResource, t: Target, traits: Traits, relax?: Relax): boolean {
  if (podOnlyUnrestricted(role, t)) return true;
  return entriesOf(role, 'allow', traits).some((e) => safely('allow', () => allowEntryMatches(e, t, role.version, relax)));
}

// ---------------------------------------------------------------------------------------------
// Messages.

function q(s: string): string {
  return JSON.stringify(s);
}

function roleList(roles: readonly RoleResource[]): string {
  return `[${roles.map((r) => r.metadata.name).join(', ')}]`;
}

function quotedList(values: readonly string[]): string {
  return `[${values.map(q).join(', ')}]`;
}

function yamlScalar(v: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v) ? v : `'${v.replace(/'/g, "''")}'`;
}

/** `{kind: secret, namespace: '*', name: '*', verbs: [get, list]}` as written in the role. */
function entryText(r: KubernetesResource): string {
  const fields = [`kind: ${yamlScalar(r.kind)}`];
  if (r.api_group !== undefined) fields.push(`api_group: ${yamlScalar(r.api_group)}`);
  if (r.namespace !== undefined) fields.push(`namespace: ${yamlScalar(r.namespace)}`);
  fields.push(`name: ${yamlScalar(r.name)}`, `verbs: [${r.verbs.map(yamlScalar).join(', ')}]`);
  return `{${fields.join(', ')}}`;
}

const VERB_PHRASE: Record<string, string> = { exec: 'exec into', portforward: 'port-forward to' };

/** `list secrets in namespace "kube-system"`, `exec into pod "web"`, `get log of pod "web"`. */
function describeTarget(t: Target): string {
  const verb = Object.hasOwn(VERB_PHRASE, t.verb) ? VERB_PHRASE[t.verb]! : t.verb;
  let what: string;
  if (t.name === '') {
    what = t.builtin || t.apiGroup === '' ? t.resource : `${t.resource}.${t.apiGroup}`;
  } else {
    const object = `${kindDisplayName(t.resource, t.apiGroup)} ${q(t.name)}`;
    const implied = t.verb === 'exec' || t.verb === 'portforward';
    what = t.subresource !== '' && !implied ? `${t.subresource} of ${object}` : object;
  }
  const where = t.scope === 'namespace' ? ` in namespace ${q(t.namespace)}` : t.scope === 'all' ? ' in all namespaces' : '';
  return `${verb} ${what}${where}`;
}

function deny(message: string, extra: { rule?: string; role?: string } = {}): KubeAccessResult {
  return { allowed: false, status: 403, message, ...extra };
}

// ---------------------------------------------------------------------------------------------
// Kubernetes users and groups.

function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

type PrincipalField = 'kubernetes_users' | 'kubernetes_groups';

class TemplateProblem {
  constructor(
    readonly message: string,
    readonly role: string,
  ) {}
}

/** Expands one field of the roles: value → the first role that gave it. */
function expandField(roles: readonly RoleResource[], mode: Mode, field: PrincipalField, traits: Traits): Map<string, string> {
  const out = new Map<string, string>();
  for (const role of roles) {
    for (const raw of role.spec[mode][field] ?? []) {
      let expanded: string[];
      try {
        expanded = expandTemplate(raw, traits);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new TemplateProblem(`role ${q(role.metadata.name)} has an invalid ${mode} ${field} value ${q(raw)}: ${why}`, role.metadata.name);
      }
      for (const v of expanded) if (v !== '' && !out.has(v)) out.set(v, role.metadata.name);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/**
 * Decides one Kubernetes API request, as Teleport does for role v3 to v8:
 *
 * 1. A role whose deny `kubernetes_labels` match the cluster removes access to it. Roles whose
 *    allow `kubernetes_labels` match are the ones that apply; with none, the user "has no access
 *    to cluster" (403 here; the proxy answers 404 for clusters not in visibleKubeClusters).
 * 2. Non-resource requests (`/api`, `/apis`, `/version`, `/openapi/…`) are allowed to anyone with
 *    access to the cluster: kubectl needs discovery.
 * 3. A resource request is refused when any deny `kubernetes_resources` entry of any role could
 *    match what it touches; otherwise some applying role must have an allow entry granting all of
 *    it (kind, namespace, name, verb; see README for the exact rules, including `kind: namespace`
 *    and collections, which need `name: '*'`, and `namespace: '*'` across all namespaces).
 * 4. Kubernetes users and groups are the union of the allow `kubernetes_users`/`kubernetes_groups`
 *    of the roles that granted the request (templates expanded), minus any role's deny values;
 *    `system:authenticated` is always a group; without users the Keyway username is the user;
 *    with several, the client must choose one with Impersonate-User (kubectl --as).
 * 5. The client's own Impersonate-User / Impersonate-Group are honoured only inside those sets;
 *    the forwarded identity is then exactly what was asked for (plus system:authenticated).
 */
export function authorizeKubeRequest(input: KubeAccessInput): KubeAccessResult {
  const { username, roles, traits, cluster, request } = input;
  // Messages are built only for a refusal: this runs on every request.
  const who = () => `keyway: user ${q(username)} with roles ${roleList(roles)}`;
  const onCluster = () => `on cluster ${q(cluster.name)}`;

  const deniedBy = deniedByLabels(roles, cluster, traits);
  if (deniedBy) {
    return deny(`${who()} has no access to cluster ${q(cluster.name)}: the deny kubernetes_labels of role ${q(deniedBy.metadata.name)} match it`, {
      rule: 'spec.deny.kubernetes_labels',
      role: deniedBy.metadata.name,
    });
  }
  const applicable = rolesForCluster(roles, cluster, traits);
  if (applicable.length === 0) {
    const why = roles.length === 0 ? 'the user has no roles' : `no kubernetes_labels of roles ${roleList(roles)} match it`;
    return deny(`${who()} has no access to cluster ${q(cluster.name)}: ${why}`);
  }

  let granting = applicable;
  if (request.isResourceRequest) {
    const t = targetOf(request);
    if (t.verb === '') {
      return deny(`${who()} may not send ${request.resource} requests with this HTTP method ${onCluster()}: unsupported method`);
    }
    const action = () => `${who()} may not ${describeTarget(t)} ${onCluster()}`;

    for (const role of roles) {
      for (const e of entriesOf(role, 'deny', traits)) {
        if (!safely('deny', () => denyEntryMatches(e, t, role.version))) continue;
        const partial =
          t.name === '' && (!matchesEverything(e.name) || (t.scope === 'all' && e.kind !== 'namespace' && e.namespace !== undefined && !matchesEverything(e.namespace)));
        return deny(
          `${action()}: denied by the deny rule ${entryText(e.source)} of role ${q(role.metadata.name)}` +
            (partial ? ', which covers part of this collection (Keyway does not filter collections)' : ''),
          { rule: `spec.deny.kubernetes_resources[${e.index}]`, role: role.metadata.name },
        );
      }
    }

    granting = applicable.filter((role) => roleAllows(role, t, traits));
    if (granting.length === 0) {
      const rules = `kubernetes_resources rule of roles ${roleList(applicable)}`;
      const couldWith = (relax: Relax) => applicable.some((r) => roleAllows(r, t, traits, relax));
      let why = `no ${rules} allows it`;
      if (t.scope === 'all' && couldWith({ namespace: true })) {
        why = `no ${rules} allows it in all namespaces (that takes namespace: '*'); Keyway does not filter lists, so choose a namespace with -n`;
      } else if (t.name === '' && couldWith({ name: true, namespace: true })) {
        why =
          t.verb === 'create'
            ? `no ${rules} allows it for any name (creating takes name: '*', since the name is in the request body)`
            : `the ${rules} that match only allow some names, and a collection takes name: '*' (Keyway does not filter lists); ask for the objects by name`;
      }
      return deny(`${action()}: ${why}`);
    }
  }

  // ---- Kubernetes identity ----
  let allowUsers: Map<string, string>, allowGroups: Map<string, string>, denyUsers: Map<string, string>, denyGroups: Map<string, string>;
  try {
    allowUsers = expandField(granting, 'allow', 'kubernetes_users', traits);
    allowGroups = expandField(granting, 'allow', 'kubernetes_groups', traits);
    denyUsers = expandField(roles, 'deny', 'kubernetes_users', traits);
    denyGroups = expandField(roles, 'deny', 'kubernetes_groups', traits);
  } catch (err) {
    if (err instanceof TemplateProblem) return deny(`${who()} may not use cluster ${q(cluster.name)}: ${err.message}`, { role: err.role });
    throw err;
  }

  const users = sortedUnique([...allowUsers.keys()].filter((u) => !denyUsers.has(u)));
  const groups = sortedUnique([...allowGroups.keys()].filter((g) => !denyGroups.has(g)));
  const candidates = users.length > 0 ? users : [username];
  const allowedGroupsText = () => quotedList(sortedUnique([...groups, KUBE_SYSTEM_AUTHENTICATED]));

  let kubernetesUser: string;
  if (input.impersonateUser !== undefined) {
    if (!candidates.includes(input.impersonateUser)) {
      return deny(
        `${who()} may not impersonate kubernetes user ${q(input.impersonateUser)} ${onCluster()}: ` +
          `the kubernetes users allowed here are ${quotedList(candidates)}`,
        { rule: 'spec.allow.kubernetes_users' },
      );
    }
    kubernetesUser = input.impersonateUser;
  } else if (candidates.length > 1) {
    return deny(
      `${who()} has several kubernetes users ${onCluster()} (${quotedList(candidates)}) and may use only one per request; ` +
        'choose one with kubectl --as=<user>',
      { rule: 'spec.allow.kubernetes_users' },
    );
  } else {
    kubernetesUser = candidates[0]!;
  }
  const deniedUserRole = denyUsers.get(kubernetesUser);
  if (deniedUserRole !== undefined) {
    return deny(`${who()} may not act as kubernetes user ${q(kubernetesUser)} ${onCluster()}: denied by the deny kubernetes_users of role ${q(deniedUserRole)}`, {
      rule: 'spec.deny.kubernetes_users',
      role: deniedUserRole,
    });
  }

  const requestedGroups = input.impersonateGroups !== undefined && input.impersonateGroups.length > 0 ? sortedUnique(input.impersonateGroups) : undefined;
  let kubernetesGroups: string[];
  if (requestedGroups !== undefined) {
    const refused = requestedGroups.filter((g) => g !== KUBE_SYSTEM_AUTHENTICATED && !groups.includes(g));
    if (refused.length > 0) {
      return deny(
        `${who()} may not impersonate kubernetes group${refused.length > 1 ? 's' : ''} ${quotedList(refused)} ${onCluster()}: ` +
          `the kubernetes groups allowed here are ${allowedGroupsText()}`,
        { rule: 'spec.allow.kubernetes_groups' },
      );
    }
    kubernetesGroups = sortedUnique([...requestedGroups, KUBE_SYSTEM_AUTHENTICATED]);
  } else if (input.impersonateUser !== undefined) {
    // kubectl --as without --as-group: exactly the user asked for, as Kubernetes impersonation does.
    kubernetesGroups = [KUBE_SYSTEM_AUTHENTICATED];
  } else {
    kubernetesGroups = sortedUnique([...groups, KUBE_SYSTEM_AUTHENTICATED]);
  }

  return {
    allowed: true,
    kubernetesUser,
    kubernetesGroups,
    impersonatedByClient: input.impersonateUser !== undefined || requestedGroups !== undefined,
    roles: granting.map((r) => r.metadata.name),
  };
}
