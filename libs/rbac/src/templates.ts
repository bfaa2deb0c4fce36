import { BadParameterError } from '@keyway/errors';
import { parseTemplate, type TemplateNode } from '@keyway/resources';

/**
 * A user's traits as role templates see them: `internal.*` for what Keyway stores on the user
 * (local users), `external.*` for what the identity provider asserted (SSO claims).
 */
export interface Traits {
  internal: Record<string, string[]>;
  external: Record<string, string[]>;
}

/**
 * The traits a certificate carries, as templates see them. As in Teleport, both namespaces read
 * the user's one trait map: `{{internal.logins}}` and `{{external.groups}}` are traits["logins"]
 * and traits["groups"]; SSO users' traits are what the provider asserted, local users' what the
 * admin set.
 */
export function userTraits(traits: Record<string, string[]>): Traits {
  return { internal: traits, external: traits };
}

/**
 * Expands one role value against a user's traits, as Teleport does:
 * - a literal comes back as itself;
 * - `{{internal.x}}` / `{{external.x}}` / `{{external["x"]}}` give one value per trait value,
 *   with any literal prefix and suffix around each (`pre-{{internal.x}}-post`);
 * - a missing trait gives no values; so do empty trait values;
 * - `email.local()` keeps the part before `@` (values that are not addresses are dropped);
 * - `regexp.replace(expr, "re", "repl")` rewrites matching values and drops the others.
 * An invalid template is a BadParameterError.
 */
export function expandTemplate(value: string, traits: Traits): string[] {
  const t = parseTemplate(value);
  if (!t) return [value];
  return evaluate(t.expr, traits)
    .filter((v) => v !== '')
    .map((v) => `${t.prefix}${v}${t.suffix}`);
}

function evaluate(node: TemplateNode, traits: Traits): string[] {
  switch (node.type) {
    case 'variable': {
      const bag = traits[node.namespace] ?? {};
      return Object.hasOwn(bag, node.name) ? [...(bag[node.name] ?? [])] : [];
    }
    case 'email.local':
      return evaluate(node.arg, traits).flatMap((v) => {
        const local = emailLocalPart(v);
        return local === undefined ? [] : [local];
      });
    case 'regexp.replace': {
      // RE2 semantics (linear time), as Teleport's Go regexp.
      return evaluate(node.arg, traits).flatMap((v) => (node.pattern.test(v) ? [node.pattern.replaceAll(v, node.replacement)] : []));
    }
    default:
      throw new BadParameterError('unsupported template expression', { node });
  }
}

/** `alice@example.com` and `Alice <alice@example.com>` → `alice`; anything else → undefined. */
function emailLocalPart(value: string): string | undefined {
  const angle = /<([^<>]+)>\s*$/.exec(value);
  const address = (angle ? angle[1]! : value).trim();
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1 || /\s/.test(address)) return undefined;
  return address.slice(0, at);
}
