import { z } from 'zod';
import { STORED_CONDITION_NAMES, STORED_OPTION_NAMES } from './teleport-fields.js';
import type { KubernetesResource, LabelSelector, RoleVersion } from './types.js';

/*
 * Teleport's per-version role defaults, as its CheckAndSetDefaults applies them.
 *
 * Keyway applies them when a role is parsed (on create), so the stored role is what Teleport
 * would store and `kwctl get` shows what the user wrote plus what Teleport would show
 * (`tctl get` prints the defaulted fields too). Evaluation (libs/rbac) then reads the stored
 * role as it is; the only per-version rule applied there is semantic, not a default: roles up
 * to v6 restrict pods only (see isPodOnlyVersion). Parsing a stored role again changes nothing.
 *
 * - v3: allow.kubernetes_labels, app_labels and db_labels, when absent, are `{'*': '*'}`;
 *   allow.node_labels, when absent, is `{'*': '*'}` if the role has logins and empty otherwise.
 *   (Teleport has no default for kubernetes_groups or logins: they are what was written.)
 * - v3, v4, v5: an allow block that selects clusters but lists no kubernetes_resources gets
 *   every pod: `{kind: pod, namespace: '*', name: '*', verbs: ['*']}`.
 * - v3 to v6: a kubernetes_resources entry without verbs gets `['*']` (the only verbs allowed).
 *   v6 gets no default entry: a v6 role without kubernetes_resources reaches no pod.
 * - v7: the default entry is `{kind: '*', namespace: '*', name: '*', verbs: ['*']}`;
 * - v8: the same with `api_group: '*'`.
 */

export const ROLE_VERSIONS = ['v3', 'v4', 'v5', 'v6', 'v7', 'v8'] as const satisfies readonly RoleVersion[];

/** Roles up to v6 restrict pods only: their kubernetes_resources list pods, every other kind is reachable. */
export function isPodOnlyVersion(version: RoleVersion): boolean {
  return version === 'v3' || version === 'v4' || version === 'v5' || version === 'v6';
}

const WILDCARD_SELECTOR: LabelSelector = { '*': '*' };

/** The allow.kubernetes_resources a version gives a role that selects clusters but lists none, if any. */
export function defaultAllowKubeResources(version: RoleVersion): KubernetesResource[] | undefined {
  switch (version) {
    case 'v3':
    case 'v4':
    case 'v5':
      return [{ kind: 'pod', namespace: '*', name: '*', verbs: ['*'] }];
    case 'v6':
      return undefined;
    case 'v7':
      return [{ kind: '*', namespace: '*', name: '*', verbs: ['*'] }];
    case 'v8':
      return [{ kind: '*', namespace: '*', name: '*', verbs: ['*'], api_group: '*' }];
  }
}

/** Verbs of an entry written without them: `['*']` up to v6; v7 and v8 keep what was written (none). */
export function defaultVerbs(version: RoleVersion): string[] {
  return isPodOnlyVersion(version) ? ['*'] : [];
}

/**
 * Role v3's label defaults for an allow block, in place: each absent selector becomes the
 * wildcard; node_labels only when the role has logins ("no logins implies no node access").
 * A selector written empty (`{}`) stays empty, as in Teleport.
 */
export function applyV3LabelDefaults(allow: Record<string, unknown>): void {
  for (const field of ['kubernetes_labels', 'app_labels', 'db_labels']) {
    if (allow[field] === undefined) allow[field] = { ...WILDCARD_SELECTOR };
  }
  if (allow['node_labels'] === undefined && Array.isArray(allow['logins']) && allow['logins'].length > 0) {
    allow['node_labels'] = { ...WILDCARD_SELECTOR };
  }
}

// ---- shapes of the stored Teleport fields (see STORED_TELEPORT_FIELDS) ----

const strings = z.array(z.string());
const selector = z.record(z.string().min(1, 'must not be empty'), z.union([z.string(), z.array(z.string())], { error: 'must be a string or a list of strings' }));
const mapping = z.record(z.string(), z.unknown());
const mappings = z.array(mapping);

/** Teleport's type for each stored condition field; anything else is stored as a mapping or list of mappings. */
const CONDITION_TYPES: Record<string, z.ZodType> = {
  logins: strings,
  host_groups: strings,
  host_sudoers: strings,
  windows_desktop_logins: strings,
  desktop_groups: strings,
  db_names: strings,
  db_users: strings,
  db_roles: strings,
  aws_role_arns: strings,
  azure_identities: strings,
  gcp_service_accounts: strings,
  db_permissions: mappings,
  account_assignments: mappings,
  spiffe: mappings,
  github_permissions: mappings,
  request: mapping,
  review_requests: mapping,
  mcp: mapping,
};

function conditionType(name: string): z.ZodType {
  if (Object.hasOwn(CONDITION_TYPES, name)) return CONDITION_TYPES[name]!;
  if (name.endsWith('_expression')) return z.string();
  if (name.endsWith('_labels')) return selector;
  throw new Error(`no schema for stored role field ${name}`);
}

const OPTION_TYPES: Record<string, z.ZodType> = {
  cert_format: z.string(),
  create_host_user_mode: z.union([z.string(), z.number()]),
  create_host_user_default_shell: z.string(),
  create_db_user_mode: z.union([z.string(), z.number()]),
  max_sessions: z.number().int().min(0),
  request_access: z.string(),
  request_prompt: z.string(),
  enhanced_recording: strings,
  cert_extensions: mappings,
  ssh_port_forwarding: mapping,
  idp: mapping,
};
// Teleport's BoolOption takes true/false and their spellings ("yes", "off").
const boolOption = z.union([z.boolean(), z.string()], { error: 'must be true or false' });

export const STORED_CONDITION_SHAPE: Record<string, z.ZodOptional<z.ZodType>> = Object.fromEntries(
  STORED_CONDITION_NAMES.map((n) => [n, conditionType(n).optional()]),
);
export const STORED_OPTION_SHAPE: Record<string, z.ZodOptional<z.ZodType>> = Object.fromEntries(
  STORED_OPTION_NAMES.map((n) => [n, (Object.hasOwn(OPTION_TYPES, n) ? OPTION_TYPES[n]! : boolOption).optional()]),
);

/** Copies the stored fields that are present from `from` to `to`. */
export function copyStored(from: Record<string, unknown>, to: Record<string, unknown>, names: readonly string[]): void {
  for (const n of names) if (from[n] !== undefined) to[n] = from[n];
}
