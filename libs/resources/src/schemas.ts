import { z } from 'zod';
import { DEFAULT_MAX_SESSION_TTL, formatDuration, parseDuration } from './duration.js';
import { RESERVED_ROLE_PREFIX, nameProblem, type ResourceKind } from './kinds.js';
import { compileGoRegexp, hasTemplate, parseTemplate } from './template.js';
import { STORED_CONDITION_NAMES, STORED_OPTION_NAMES } from './teleport-fields.js';
import {
  ROLE_VERSIONS,
  STORED_CONDITION_SHAPE,
  STORED_OPTION_SHAPE,
  applyV3LabelDefaults,
  copyStored,
  defaultAllowKubeResources,
  defaultVerbs,
  isPodOnlyVersion,
} from './role-versions.js';
import type {
  KubernetesResource,
  LabelSelector,
  Metadata,
  Resource,
  RoleConditions,
  RoleSpec,
  RoleVersion,
} from './types.js';

/*
 * Strict zod schemas: every object rejects keys it does not declare. They run after the
 * Teleport-field pass in ./validate.ts, which has already removed (or reported) the fields
 * Teleport has and Keyway does not, so an unrecognized key here is a field nobody knows.
 */

// ---- shared pieces ----

const nonEmpty = z.string().min(1, 'must not be empty');

const resourceName = z.string().superRefine((s, ctx) => {
  const problem = nameProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const LABEL_KEY = /^[A-Za-z0-9/._:-]+$/;
const labelKey = z.string().regex(LABEL_KEY, 'label keys use letters, digits and / . _ : -');

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const ZERO_TIME = /^0001-01-01T00:00:00(\.0+)?(Z|\+00:00)$/i;

/** RFC 3339 timestamp, normalised to `toISOString()`; Go's zero time means "unset". */
export const timestamp = z
  .string({ error: 'must be an RFC 3339 timestamp such as "2030-01-02T15:04:05Z"' })
  .transform((s, ctx) => {
    const t = Date.parse(s);
    if (!RFC3339.test(s) || Number.isNaN(t)) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)} is not an RFC 3339 timestamp such as "2030-01-02T15:04:05Z"` });
      return z.NEVER;
    }
    return ZERO_TIME.test(s) ? undefined : new Date(t).toISOString();
  });

const httpUrl = z.string().superRefine((s, ctx) => {
  let ok = false;
  try {
    const u = new URL(s);
    ok = u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    ok = false;
  }
  if (!ok) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)} is not an http(s) URL` });
});

const duration = z
  .string({ error: 'must be a duration string such as "8h", "30m" or "1h30m"' })
  .transform((s, ctx) => {
    try {
      // Rejects negative values and totals beyond Go's time.Duration range (about 292 years).
      return parseDuration(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

/** A string that may be a trait template; the template is checked when the role is created. */
const templated = z.string().superRefine((s, ctx) => {
  try {
    parseTemplate(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const metadata = z
  .strictObject({
    name: resourceName,
    description: z.string().optional(),
    labels: z.record(labelKey, z.string()).optional(),
    expires: timestamp.optional(),
    revision: z.string().optional(),
  })
  .transform((m): Metadata => {
    const out: Metadata = { name: m.name };
    if (m.description !== undefined) out.description = m.description;
    if (m.labels !== undefined) out.labels = m.labels;
    if (m.expires !== undefined) out.expires = m.expires;
    if (m.revision !== undefined) out.revision = m.revision;
    return out;
  });

const roleMetadata = metadata.superRefine((m, ctx) => {
  if (m.name.startsWith(RESERVED_ROLE_PREFIX)) {
    ctx.addIssue({ code: 'custom', path: ['name'], message: `role names starting with "${RESERVED_ROLE_PREFIX}" are reserved for built-in roles` });
  }
});

function envelope<K extends ResourceKind, V extends string, S extends z.ZodType>(kind: K, version: V, spec: S) {
  return z.strictObject({
    kind: z.literal(kind),
    version: z.literal(version),
    metadata: kind === 'role' ? roleMetadata : metadata,
    spec,
  });
}

/** Drops keys whose value is undefined, so output (and YAML) carries no `key: undefined`. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// ---- user v2 ----

const externalIdentity = z.strictObject({
  connector_id: nonEmpty,
  username: nonEmpty,
  user_id: z.string().optional(),
  samlSingleLogoutUrl: z.string().optional(),
});

const userSpec = z
  .strictObject({
    roles: z.array(resourceName).default([]),
    traits: z.record(nonEmpty, z.array(z.string())).default({}),
    github_identities: z.array(externalIdentity).optional(),
    oidc_identities: z.array(externalIdentity).optional(),
    saml_identities: z.array(externalIdentity).optional(),
  })
  .transform(compact);

// ---- role v3 to v8 (per-version defaults: ./role-versions.ts) ----

/** Verbs Teleport accepts in kubernetes_resources. */
export const KUBERNETES_VERBS = [
  '*',
  'get',
  'list',
  'watch',
  'create',
  'update',
  'patch',
  'delete',
  'deletecollection',
  'exec',
  'portforward',
] as const;

/** Kinds role v7 accepts in kubernetes_resources (Teleport's singular names). */
export const KUBERNETES_V7_KINDS = [
  'pod',
  'secret',
  'configmap',
  'namespace',
  'service',
  'serviceaccount',
  'kube_node',
  'persistentvolume',
  'persistentvolumeclaim',
  'deployment',
  'replicaset',
  'statefulset',
  'daemonset',
  'clusterrole',
  'kube_role',
  'clusterrolebinding',
  'rolebinding',
  'cronjob',
  'job',
  'certificatesigningrequest',
  'ingress',
] as const;

const V7_CLUSTER_WIDE = new Set(['namespace', 'kube_node', 'persistentvolume', 'clusterrole', 'clusterrolebinding', 'certificatesigningrequest']);

/** Plural names of the core ("" API group) resources, which role v8 accepts without api_group. */
const CORE_RESOURCES = new Set([
  '*',
  'pods',
  'secrets',
  'configmaps',
  'namespaces',
  'services',
  'serviceaccounts',
  'nodes',
  'persistentvolumes',
  'persistentvolumeclaims',
  'endpoints',
  'events',
  'limitranges',
  'resourcequotas',
  'replicationcontrollers',
  'podtemplates',
  'componentstatuses',
  'bindings',
]);

const labelSelector = z.record(nonEmpty, z.union([z.string(), z.array(z.string())], { error: 'must be a string or a list of strings' }));

const kubernetesResource = z.strictObject({
  kind: nonEmpty,
  namespace: z.string().optional(),
  name: z.string({ error: 'is required (use "*" for any name)' }).min(1, 'must not be empty (use "*" for any name)'),
  verbs: z.array(nonEmpty).optional(),
  api_group: z.string().optional(),
});

const rule = z.strictObject({
  resources: z.array(nonEmpty).min(1, 'must list at least one resource'),
  verbs: z.array(nonEmpty).min(1, 'must list at least one verb'),
});

// Fields are declared in the order Teleport's role reference lists them; formatResources prints
// them in this order (see ./order.ts), so keep it when adding fields.
const conditions = z.strictObject({
  kubernetes_groups: z.array(templated).optional(),
  kubernetes_labels: labelSelector.optional(),
  kubernetes_resources: z.array(kubernetesResource).optional(),
  kubernetes_users: z.array(templated).optional(),
  rules: z.array(rule).optional(),
  // Fields of services Keyway does not have yet, stored as written (./teleport-fields.ts).
  ...STORED_CONDITION_SHAPE,
});

const roleOptions = z.strictObject({
  max_session_ttl: duration.optional(),
  // Teleport's: concurrent Kubernetes streams per user (0 or unset: no limit), and the locking mode.
  max_kubernetes_connections: z.number().int().min(0).optional(),
  lock: z.enum(['best_effort', 'strict'], { error: 'must be "best_effort" or "strict"' }).optional(),
  ...STORED_OPTION_SHAPE,
});

type RawConditions = z.output<typeof conditions>;

function normaliseConditions(c: RawConditions, version: RoleVersion, allow: boolean): RoleConditions {
  const raw = c as RawConditions & Record<string, unknown>;
  const out: RoleConditions = {};
  if (allow && version === 'v3') {
    // Teleport fills these before anything else looks at the role; the kubernetes_resources
    // default below then sees the wildcard cluster selector.
    applyV3LabelDefaults(raw);
  }
  if (raw.kubernetes_groups !== undefined) out.kubernetes_groups = raw.kubernetes_groups;
  if (raw.kubernetes_labels !== undefined) out.kubernetes_labels = raw.kubernetes_labels as LabelSelector;
  let resources: KubernetesResource[] | undefined = raw.kubernetes_resources?.map((r) =>
    compact({
      kind: r.kind,
      namespace: r.namespace === '' ? undefined : r.namespace,
      name: r.name,
      verbs: r.verbs ?? defaultVerbs(version),
      api_group: r.api_group === '' ? undefined : r.api_group,
    }),
  );
  // Teleport: an allow block that selects clusters but no resources gets the version's default.
  if (allow && (resources === undefined || resources.length === 0) && Object.keys(out.kubernetes_labels ?? {}).length > 0) {
    resources = defaultAllowKubeResources(version) ?? resources;
  }
  if (resources !== undefined) out.kubernetes_resources = resources;
  if (raw.kubernetes_users !== undefined) out.kubernetes_users = raw.kubernetes_users;
  if (raw.rules !== undefined) out.rules = raw.rules;
  copyStored(raw, out as Record<string, unknown>, STORED_CONDITION_NAMES);
  return out;
}

function checkConditions(c: RoleConditions, version: RoleVersion, allow: boolean, ctx: z.RefinementCtx, base: PathKey[]): void {
  const issue = (path: PathKey[], message: string) => ctx.addIssue({ code: 'custom', path: [...base, ...path], message });
  if (allow) {
    const star = c.kubernetes_labels?.['*'];
    if (star !== undefined && !(star === '*' || (Array.isArray(star) && star.length === 1 && star[0] === '*'))) {
      issue(['kubernetes_labels', '*'], 'the "*" key only accepts the value "*"');
    }
  }
  for (const [key, value] of Object.entries(c.kubernetes_labels ?? {})) {
    for (const v of [key, ...(Array.isArray(value) ? value : [value])]) {
      const problem = matcherProblem(v);
      if (problem) issue(['kubernetes_labels', key], problem);
    }
  }
  (c.kubernetes_resources ?? []).forEach((r, i) => {
    const at = (field: string, message: string) => issue(['kubernetes_resources', i, field], message);
    for (const field of ['namespace', 'name', 'api_group'] as const) {
      const v = r[field];
      const problem = v === undefined ? undefined : matcherProblem(v);
      if (problem) at(field, problem);
    }
    for (const verb of r.verbs) {
      if (!(KUBERNETES_VERBS as readonly string[]).includes(verb) && !verb.includes('{{')) {
        at('verbs', `verb ${JSON.stringify(verb)} is not one of ${KUBERNETES_VERBS.join(', ')}`);
      }
    }
    if (r.verbs.includes('*') && r.verbs.length > 1) at('verbs', '"*" cannot be combined with other verbs');
    if (isPodOnlyVersion(version)) {
      if (r.kind !== 'pod') at('kind', `role ${version} only supports kind "pod" (got ${JSON.stringify(r.kind)}); use role v7 or v8`);
      if (r.verbs.length !== 1 || r.verbs[0] !== '*') at('verbs', `role ${version} only supports verbs ["*"]; use role v7 or v8`);
    }
    if (version !== 'v8') {
      if (r.api_group !== undefined) at('api_group', `api_group is only supported in role v8 (this role is ${version})`);
      if (r.kind !== '*' && !(KUBERNETES_V7_KINDS as readonly string[]).includes(r.kind)) {
        at('kind', `kind ${JSON.stringify(r.kind)} is not one of *, ${KUBERNETES_V7_KINDS.join(', ')} (role ${version})`);
      }
      if (r.namespace === undefined && !V7_CLUSTER_WIDE.has(r.kind)) {
        at('namespace', `is required for kind ${JSON.stringify(r.kind)} (use "*" for any namespace)`);
      }
    }
    if (version === 'v8') {
      if ((KUBERNETES_V7_KINDS as readonly string[]).includes(r.kind)) {
        at('kind', `role v8 uses Kubernetes plural resource names (e.g. "pods", "deployments"), not ${JSON.stringify(r.kind)}`);
      } else if (r.api_group === undefined && !CORE_RESOURCES.has(r.kind)) {
        at('api_group', `is required for ${JSON.stringify(r.kind)} in role v8 (use "*" for any group)`);
      }
    }
  });
}

type PathKey = string | number;

/** Why a matcher value (`^re$` is a Go regular expression) is invalid, or undefined. */
function matcherProblem(value: string): string | undefined {
  try {
    parseTemplate(value);
    if (value.startsWith('^') && value.endsWith('$') && !hasTemplate(value)) compileGoRegexp(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function storedOptions(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  copyStored(options, out, STORED_OPTION_NAMES);
  return out;
}

export function roleSpecSchema(version: RoleVersion) {
  return z
    .strictObject({
      options: roleOptions.prefault({}),
      allow: conditions.prefault({}),
      deny: conditions.prefault({}),
    })
    .transform(
      (s): RoleSpec => ({
        options: {
          // Teleport: unset or zero means its default, 30h.
          max_session_ttl:
            s.options.max_session_ttl === undefined || s.options.max_session_ttl === 0
              ? DEFAULT_MAX_SESSION_TTL
              : formatDuration(s.options.max_session_ttl),
          ...(s.options.max_kubernetes_connections ? { max_kubernetes_connections: s.options.max_kubernetes_connections } : {}),
          ...(s.options.lock !== undefined ? { lock: s.options.lock } : {}),
          ...storedOptions(s.options),
        },
        allow: normaliseConditions(s.allow, version, true),
        deny: normaliseConditions(s.deny, version, false),
      }),
    )
    .superRefine((s, ctx) => {
      checkConditions(s.allow, version, true, ctx, ['allow']);
      checkConditions(s.deny, version, false, ctx, ['deny']);
    });
}

// ---- token v2 ----

// 'Scim' is Keyway's, not Teleport's: a bearer token for the proxy's /scim/v2 API, stored
// under the SHA-256 of its value; it joins nothing, so it is never combined with a host role.
const tokenSpec = z
  .strictObject({
    roles: z
      .array(z.enum(['Kube', 'Proxy', 'Scim'], { error: 'Keyway tokens support the roles "Kube", "Proxy" and "Scim"' }))
      .min(1, 'must list at least one role, e.g. [Kube]'),
    join_method: z.literal('token', { error: 'Keyway supports join_method "token"' }).default('token'),
  })
  .refine((s) => !s.roles.includes('Scim') || s.roles.every((r) => r === 'Scim'), { message: 'a Scim token joins nothing: it cannot also carry Kube or Proxy', path: ['roles'] });

// ---- connectors ----

const roleList = z.array(nonEmpty).min(1, 'must map to at least one role');

const githubSpec = z
  .strictObject({
    client_id: nonEmpty,
    client_secret: nonEmpty,
    redirect_url: httpUrl.optional(),
    teams_to_roles: z.array(z.strictObject({ organization: nonEmpty, team: nonEmpty, roles: roleList })).optional(),
    // The older form (Teleport's seed connectors): its logins are role names, its Kubernetes
    // groups and users become traits. Accepted; a login through it warns to use teams_to_roles.
    teams_to_logins: z
      .array(
        z.strictObject({
          organization: nonEmpty,
          team: nonEmpty,
          logins: z.array(nonEmpty).default([]),
          kubernetes_groups: z.array(nonEmpty).optional(),
          kubernetes_users: z.array(nonEmpty).optional(),
        }),
      )
      .optional(),
    display: z.string().optional(),
    endpoint_url: httpUrl.optional(),
    api_endpoint_url: httpUrl.optional(),
  })
  .transform(compact)
  .superRefine((s, ctx) => {
    if (!s.teams_to_roles?.length && !s.teams_to_logins?.length) {
      ctx.addIssue({ code: 'custom', path: ['teams_to_roles'], message: 'must map at least one team to roles (teams_to_roles, or the older teams_to_logins); without it nobody could log in' });
    }
  });

const oidcSpec = z
  .strictObject({
    issuer_url: httpUrl,
    client_id: nonEmpty,
    client_secret: z.string().optional(),
    redirect_url: z
      .union([httpUrl, z.array(httpUrl)], { error: 'must be a URL or a list of URLs' })
      .transform((v) => (Array.isArray(v) ? v : [v]))
      .pipe(z.array(z.string()).min(1, 'must list at least one URL')),
    claims_to_roles: z
      .array(z.strictObject({ claim: nonEmpty, value: z.string(), roles: roleList }))
      .min(1, 'must map at least one claim to roles; without it nobody could log in'),
    scope: z.array(nonEmpty).optional(),
    prompt: z.string().optional(),
    display: z.string().optional(),
    provider: z.string().optional(),
    username_claim: z.string().optional(),
    acr_values: z.string().optional(),
    // Teleport's max_age: a duration ("1h") or seconds; the provider must have authenticated the person that recently.
    max_age: z.union([z.string(), z.number().int().nonnegative()]).optional(),
    allow_unverified_email: z.boolean().optional(),
  })
  .transform(compact);

const samlSpec = z
  .strictObject({
    acs: httpUrl,
    attributes_to_roles: z
      .array(z.strictObject({ name: nonEmpty, value: z.string(), roles: roleList }))
      .min(1, 'must map at least one attribute to roles; without it nobody could log in'),
    entity_descriptor: z.string().optional(),
    entity_descriptor_url: httpUrl.optional(),
    issuer: z.string().optional(),
    sso: httpUrl.optional(),
    cert: z.string().optional(),
    audience: z.string().optional(),
    service_provider_issuer: z.string().optional(),
    signing_key_pair: z.strictObject({ private_key: nonEmpty, cert: nonEmpty }).optional(),
    // Decrypts encrypted assertions (the IdP encrypts to its cert).
    assertion_key_pair: z.strictObject({ private_key: nonEmpty, cert: nonEmpty }).optional(),
    // Responses the IdP sends without a login request of ours; off by default (login CSRF).
    allow_idp_initiated: z.boolean().optional(),
    display: z.string().optional(),
    provider: z.string().optional(),
  })
  .transform(compact)
  .superRefine((s, ctx) => {
    if (!s.entity_descriptor && !s.entity_descriptor_url) {
      for (const field of ['sso', 'issuer', 'cert'] as const) {
        if (!s[field]) {
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: 'is required when neither entity_descriptor nor entity_descriptor_url is set',
          });
        }
      }
    }
  });

// ---- kube_cluster v3 ----

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const kubeClusterSpec = z
  .strictObject({
    kubeconfig: z
      .string()
      .refine((s) => {
        const t = s.replace(/\s+/g, '');
        return t.length % 4 === 0 && BASE64.test(t);
      }, 'must be a base64-encoded kubeconfig')
      .optional(),
  })
  .transform(compact);

// ---- lock v2 ----

const lockSpec = z
  .strictObject({
    target: z
      .strictObject({ user: nonEmpty.optional(), role: nonEmpty.optional() })
      .refine((t) => t.user !== undefined || t.role !== undefined, 'must name a user or a role to lock'),
    message: z.string().optional(),
    expires: timestamp.optional(),
    created_at: timestamp.optional(),
    created_by: z.string().optional(),
  })
  .transform(compact);

const schemas = new Map<string, z.ZodType<Resource>>();

/** The strict schema for one kind and version (the version already checked by the caller). */
export function schemaFor(kind: ResourceKind, version: string): z.ZodType<Resource> {
  const key = `${kind}/${version}`;
  let schema = schemas.get(key);
  if (!schema) {
    schema = buildSchema(kind, version);
    schemas.set(key, schema);
  }
  return schema;
}

function buildSchema(kind: ResourceKind, version: string): z.ZodType<Resource> {
  switch (kind) {
    case 'user':
      return envelope('user', 'v2', userSpec.prefault({}));
    case 'role': {
      const v = ((ROLE_VERSIONS as readonly string[]).includes(version) ? version : 'v7') as RoleVersion;
      return envelope('role', v, roleSpecSchema(v).prefault({}));
    }
    case 'token':
      return envelope('token', 'v2', tokenSpec);
    case 'github':
      return envelope('github', 'v3', githubSpec);
    case 'oidc':
      return envelope('oidc', 'v3', oidcSpec);
    case 'saml':
      return envelope('saml', 'v2', samlSpec);
    case 'kube_cluster':
      return envelope('kube_cluster', 'v3', kubeClusterSpec.prefault({}));
    case 'lock':
      return envelope('lock', 'v2', lockSpec);
  }
}
