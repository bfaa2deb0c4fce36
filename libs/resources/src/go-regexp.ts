import { RE2JS } from 're2js';

/**
 * A regular expression with Go's semantics (RE2: the syntax Teleport's roles are written in,
 * matched in time linear in the input). JavaScript's own engine backtracks: a role pattern
 * such as `^(a+)+$` against a crafted name would stall the whole process for seconds.
 */
export interface GoRegexp {
  readonly source: string;
  /** True when the expression matches somewhere in `value` (Go's MatchString). */
  test(value: string): boolean;
  /** Go's ReplaceAllString: `$1`, `${1}`, `$name`, `${name}` expand to groups, `$$` to `$`. */
  replaceAll(value: string, template: string): string;
}

/** Longest accepted expression; RE2 also bounds the compiled program and repeat counts. */
export const MAX_GO_REGEXP_LENGTH = 4096;

/** Compiles a Go (RE2) expression; throws an Error naming the expression when RE2 refuses it. */
export function compileGoRegexp(source: string, options: { dotAll?: boolean; maxLength?: number } = {}): GoRegexp {
  if (source.length > (options.maxLength ?? MAX_GO_REGEXP_LENGTH)) {
    throw new Error(`invalid regular expression ${JSON.stringify(`${source.slice(0, 40)}…`)}: longer than ${MAX_GO_REGEXP_LENGTH} characters`);
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(source, options.dotAll ? RE2JS.DOTALL : 0);
  } catch (err) {
    throw new Error(`invalid regular expression ${JSON.stringify(source)}: ${(err as Error).message.replace(/^error parsing regexp: /, '')}`);
  }
  const groups = re.namedGroups();
  const groupCount = re.groupCount();
  return {
    source,
    test: (value) => re.test(value),
    replaceAll(value, template) {
      const m = re.matcher(value);
      let out = '';
      let last = 0;
      let prevEnd = -1;
      while (m.find()) {
        const start = m.start();
        const end = m.end();
        // Go ignores an empty match that abuts the preceding match.
        if (start === end && start === prevEnd) continue;
        out += value.slice(last, start);
        out += expand(template, (name) => {
          const index = /^\d+$/.test(name) ? Number(name) : groups[name];
          if (index === undefined || index > groupCount) return '';
          return m.group(index) ?? '';
        });
        last = end;
        prevEnd = end;
      }
      return out + value.slice(last);
    },
  };
}

/** Go's Regexp.Expand over a template, with `group` giving a group's text by name or number. */
function expand(template: string, group: (name: string) => string): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c !== '$') {
      out += c;
      continue;
    }
    const next = template[i + 1];
    if (next === '$') {
      out += '$';
      i++;
      continue;
    }
    let name: string | undefined;
    let end = i + 1;
    if (next === '{') {
      const close = template.indexOf('}', i + 2);
      const inner = close < 0 ? '' : template.slice(i + 2, close);
      if (close >= 0 && /^[A-Za-z0-9_]+$/.test(inner)) {
        name = inner;
        end = close + 1;
      }
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(template.slice(i + 1));
      if (m) {
        name = m[0];
        end = i + 1 + m[0].length;
      }
    }
    if (name === undefined) {
      // A `$` not followed by a name is kept as it is, as Go does.
      out += c;
      continue;
    }
    out += group(name);
    i = end - 1;
  }
  return out;
}
