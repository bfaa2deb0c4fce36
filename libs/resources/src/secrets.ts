import { lookupKind, type ResourceKind } from './kinds.js';
import type { Resource } from './types.js';

/**
 * The secret fields of each kind, as dotted paths. These are the fields redactSecrets blanks.
 *
 * - github, oidc `spec.client_secret` and saml `spec.signing_key_pair.private_key`: what
 *   Teleport's `WithoutSecrets()` blanks (GithubConnectorV3, OIDCConnectorV3, SAMLConnectorV2 in
 *   api/types), so `tctl get` without `--with-secrets` hides the same values. Teleport also
 *   blanks saml `assertion_key_pair.private_key` (here too), oidc `google_service_account`
 *   and `mfa.client_secret`; Keyway's schemas reject the last two, so they are never stored.
 * - kube_cluster `spec.kubeconfig`: a Keyway addition. Teleport prints it, but it carries the
 *   cluster's credentials (client keys, bearer tokens), so Keyway treats it as a secret too.
 *
 * Not listed: a join token's secret is its `metadata.name`, which `tctl get tokens` prints too
 * and without which the resource cannot be identified.
 */
export const SECRET_FIELDS: Readonly<Record<ResourceKind, readonly string[]>> = {
  user: [],
  role: [],
  token: [],
  github: ['spec.client_secret'],
  oidc: ['spec.client_secret'],
  saml: ['spec.signing_key_pair.private_key', 'spec.assertion_key_pair.private_key'],
  kube_cluster: ['spec.kubeconfig'],
  lock: [],
};

/**
 * Returns a deep copy of the resource for output, with every secret field (SECRET_FIELDS)
 * replaced by the empty string, as Teleport does for `tctl get` without `--with-secrets`: the
 * key stays, so `client_secret: ""` shows there is a secret and that it was left out. A secret
 * field that is not set stays absent. Other kinds come back as an unchanged copy; the input is
 * never modified.
 *
 * The redacted copy is for reading, not for creating again: github and saml connectors without
 * their secret fail validation, and an oidc connector or kube_cluster created from it would
 * lose its secret.
 */
export function redactSecrets<R extends Resource>(resource: R): R {
  const copy = structuredClone(resource);
  const kind = lookupKind(String((copy as { kind?: unknown }).kind));
  for (const path of kind ? SECRET_FIELDS[kind] : []) {
    const keys = path.split('.');
    const last = keys.pop()!;
    let node: unknown = copy;
    for (const k of keys) node = isObject(node) ? node[k] : undefined;
    if (isObject(node) && Object.hasOwn(node, last) && node[last] !== undefined && node[last] !== null) node[last] = '';
  }
  return copy;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
