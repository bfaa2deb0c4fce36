import { compileGoRegexp, type GoRegexp } from '@keyway/resources';

/** One line of claims_to_roles / attributes_to_roles: a claim (or attribute) name, a value pattern, roles. */
export interface ValueMapping {
  name: string;
  value: string;
  roles: string[];
}

/**
 * Teleport's value patterns: `^…$` is a (Go-syntax, RE2) regular expression, anything else a
 * glob in which `*` matches any text and is a capture group; a role may use `$1`, `${name}`
 * to take matched text (`value: "^team-(.*)$", roles: ["$1-admin"]`).
 */
function compileValuePattern(pattern: string): GoRegexp {
  if (pattern.startsWith('^') && pattern.endsWith('$')) return compileGoRegexp(pattern);
  const quoted = pattern.split('*').map((part) => part.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&'));
  return compileGoRegexp(`^${quoted.join('(.*)')}$`, { dotAll: true, maxLength: Infinity });
}

/**
 * The roles a person's claims or attributes map to, each once, in the order of the mapping.
 * A role that expands to the empty string is left out. An invalid pattern throws an Error
 * naming it (connectors are validated when stored, so this means a stored one predates that).
 */
export function mapToRoles(mappings: readonly ValueMapping[], values: Readonly<Record<string, readonly string[]>>): string[] {
  const roles: string[] = [];
  const seen = new Set<string>();
  for (const m of mappings) {
    const have = values[m.name];
    if (!have || have.length === 0) continue;
    const re = compileValuePattern(m.value);
    for (const value of have) {
      if (!re.test(value)) continue;
      for (const role of m.roles) {
        const name = role.includes('$') ? re.replaceAll(value, role) : role;
        if (name && !seen.has(name)) {
          seen.add(name);
          roles.push(name);
        }
      }
    }
  }
  return roles;
}

/**
 * Claims or attributes as traits: every value a string list. Strings stay, numbers and booleans
 * become their text, lists are flattened one level; objects and nulls are left out (Teleport's
 * OIDC claims to traits does the same). Names and values are bounded, so a provider cannot
 * make a certificate of unbounded size.
 */
export function toTraits(received: Readonly<Record<string, unknown>>, bounds: TraitBounds = DEFAULT_TRAIT_BOUNDS): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let names = 0;
  for (const [name, raw] of Object.entries(received)) {
    if (names >= bounds.maxTraits || name.length === 0 || name.length > bounds.maxNameLength || CONTROL.test(name)) continue;
    const list = Array.isArray(raw) ? raw : [raw];
    const values: string[] = [];
    for (const v of list) {
      if (values.length >= bounds.maxValues) break;
      const s = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
      // Control characters are refused in certificates (they would reach headers and logs).
      if (s !== undefined && s.length <= bounds.maxValueLength && !CONTROL.test(s)) values.push(s);
    }
    if (values.length === 0) continue;
    out[name] = values;
    names++;
  }
  return out;
}

const CONTROL = /[\u0000-\u001f\u007f]/;

export interface TraitBounds {
  maxTraits: number;
  maxNameLength: number;
  maxValues: number;
  maxValueLength: number;
}

export const DEFAULT_TRAIT_BOUNDS: TraitBounds = { maxTraits: 64, maxNameLength: 128, maxValues: 256, maxValueLength: 1024 };
