import { BadParameterError } from '@keyway/errors';

/** The resource kinds Keyway stores, spelled as Teleport spells them in `kind:`. */
export const KIND_NAMES = ['user', 'role', 'token', 'github', 'oidc', 'saml', 'kube_cluster', 'lock'] as const;
export type ResourceKind = (typeof KIND_NAMES)[number];

/** Versions accepted per kind; the first is the one Keyway writes for new resources. */
export const SUPPORTED_VERSIONS: Readonly<Record<ResourceKind, readonly string[]>> = {
  user: ['v2'],
  role: ['v7', 'v8', 'v6', 'v5', 'v4', 'v3'],
  token: ['v2'],
  github: ['v3'],
  oidc: ['v3'],
  saml: ['v2'],
  kube_cluster: ['v3'],
  lock: ['v2'],
};

/** Versions Teleport has (had) that Keyway does not read. */
export const TELEPORT_ONLY_VERSIONS: Readonly<Partial<Record<ResourceKind, readonly string[]>>> = {
  oidc: ['v2'],
};

const ALIASES: Record<string, ResourceKind> = {
  user: 'user',
  users: 'user',
  role: 'role',
  roles: 'role',
  token: 'token',
  tokens: 'token',
  provision_token: 'token',
  provision_tokens: 'token',
  github: 'github',
  githubs: 'github',
  github_connector: 'github',
  github_connectors: 'github',
  oidc: 'oidc',
  oidcs: 'oidc',
  oidc_connector: 'oidc',
  oidc_connectors: 'oidc',
  saml: 'saml',
  samls: 'saml',
  saml_connector: 'saml',
  saml_connectors: 'saml',
  kube_cluster: 'kube_cluster',
  kube_clusters: 'kube_cluster',
  kubernetes_cluster: 'kube_cluster',
  kubernetes_clusters: 'kube_cluster',
  kube: 'kube_cluster',
  lock: 'lock',
  locks: 'lock',
};

/** Like resolveKind, but returns undefined instead of throwing. */
export function lookupKind(s: string): ResourceKind | undefined {
  const key = s.trim().toLowerCase().replace(/[-\s]/g, '_');
  return Object.hasOwn(ALIASES, key) ? ALIASES[key] : undefined;
}

/**
 * Resolves what a person typed (`kwctl get users`, `kind: Role`, `kube-clusters`) to a kind.
 * Case-insensitive; singular, plural and tctl's long forms are accepted.
 */
export function resolveKind(s: string): ResourceKind {
  const kind = lookupKind(s);
  if (!kind) {
    throw new BadParameterError(`unknown resource kind ${JSON.stringify(s)}; expected one of: ${KIND_NAMES.join(', ')}`, {
      kind: s,
      kinds: [...KIND_NAMES],
    });
  }
  return kind;
}

export const MAX_NAME_LENGTH = 253;
const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._@+=:,~-]*$/;

/**
 * Why a resource name is not acceptable, or undefined when it is. Names are non-empty, at most
 * 253 characters, start with a letter, digit or underscore and otherwise use letters, digits
 * and `. _ @ + = : , ~ -` (e-mail addresses and UUIDs fit; `/`, spaces and control characters
 * do not, because names appear in paths, certificates and audit events).
 */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'must not be empty';
  if (name.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters (has ${name.length})`;
  if (name.includes('/')) return `must not contain "/" (got ${JSON.stringify(name)})`;
  if (!NAME_PATTERN.test(name)) {
    return `${JSON.stringify(name)} is not a valid name: use letters, digits and . _ @ + = : , ~ - (starting with a letter, digit or _)`;
  }
  return undefined;
}

/**
 * Role names with this prefix are reserved for roles built into Keyway (such as the system
 * admin role of the local admin identity); documents cannot define them.
 */
export const RESERVED_ROLE_PREFIX = 'keyway:';

export function isValidName(name: string): boolean {
  return nameProblem(name) === undefined;
}
