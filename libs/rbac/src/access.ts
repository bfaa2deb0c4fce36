import { AccessDeniedError } from '@keyway/errors';
import type { RoleResource, Rule } from '@keyway/resources';

/** Verbs of API rules, as in Teleport. */
export const RULE_VERBS = ['list', 'read', 'create', 'update', 'delete'] as const;
export type RuleVerb = (typeof RULE_VERBS)[number];

/** Resource names that API rules refer to (Teleport's names). */
export const RULE_RESOURCES = [
  'user',
  'role',
  'token',
  'github',
  'oidc',
  'saml',
  'auth_connector',
  'kube_cluster',
  'lock',
  'cert_authority',
  'event',
  'session',
  'session_tracker',
] as const;

/** In Teleport a rule on `auth_connector` covers every connector kind. */
const CONNECTOR_KINDS = new Set(['github', 'oidc', 'saml']);

export interface AccessDecision {
  allowed: boolean;
  /** The role whose rule decided: the deny rule that matched, or the first allow rule. */
  role?: string;
  rule?: Rule;
  /** A sentence for messages and audit: why it was allowed or denied. */
  reason: string;
}

function ruleMatches(rule: Rule, resource: string, verb: string): boolean {
  const resourceOk =
    rule.resources.includes('*') ||
    rule.resources.includes(resource) ||
    (CONNECTOR_KINDS.has(resource) && rule.resources.includes('auth_connector'));
  const verbOk = rule.verbs.includes('*') || rule.verbs.includes(verb) || (verb === 'readnosecrets' && rule.verbs.includes('read'));
  return resourceOk && verbOk;
}

/**
 * Decides whether roles allow `verb` on `resource` through their `rules`, as Teleport does:
 * a matching deny rule in any role wins; otherwise some role must have a matching allow rule.
 * `'*'` matches any resource or verb; `read` also grants `readnosecrets`.
 */
export function evaluateAccess(roles: readonly RoleResource[], resource: string, verb: string): AccessDecision {
  for (const role of roles) {
    for (const rule of role.spec.deny.rules ?? []) {
      if (ruleMatches(rule, resource, verb)) {
        return { allowed: false, role: role.metadata.name, rule, reason: `denied by a deny rule of role "${role.metadata.name}"` };
      }
    }
  }
  for (const role of roles) {
    for (const rule of role.spec.allow.rules ?? []) {
      if (ruleMatches(rule, resource, verb)) {
        return { allowed: true, role: role.metadata.name, rule, reason: `allowed by role "${role.metadata.name}"` };
      }
    }
  }
  const names = roles.map((r) => r.metadata.name);
  return {
    allowed: false,
    reason: names.length === 0 ? 'the user has no roles' : `no rule of role${names.length > 1 ? 's' : ''} ${names.map((n) => `"${n}"`).join(', ')} allows it`,
  };
}

/**
 * Throws AccessDeniedError unless the roles allow `verb` on `resource`. The message names the
 * user, the action and the reason, e.g.
 * `user "jimbo" may not create role: no rule of role "junior-devs" allows it`.
 */
export function checkAccess(roles: readonly RoleResource[], resource: string, verb: RuleVerb | string, username?: string): void {
  const decision = evaluateAccess(roles, resource, verb);
  if (decision.allowed) return;
  const who = username === undefined ? 'caller' : `user ${JSON.stringify(username)}`;
  throw new AccessDeniedError(`${who} may not ${verb} ${resource}: ${decision.reason}`, {
    ...(username === undefined ? {} : { user: username }),
    roles: roles.map((r) => r.metadata.name),
    resource,
    verb,
    ...(decision.role === undefined ? {} : { deniedBy: decision.role }),
  });
}
