import { BadParameterError } from '@keyway/errors';
import { compileGoRegexp, type GoRegexp } from './go-regexp.js';

/**
 * Trait templates as Teleport writes them in roles: `{{internal.kubernetes_groups}}`,
 * `{{external.groups}}`, `{{external["my-claim"]}}`, `{{email.local(external.email)}}`,
 * `{{regexp.replace(external.groups, "^dev-(.*)$", "$1")}}`, with an optional literal prefix
 * and suffix around one expression (`IAM#{{external.foo}};`).
 *
 * Parsing lives here so that role documents are checked when they are created; evaluation
 * (`expandTemplate`) lives in @keyway/rbac.
 */

export type TraitNamespace = 'internal' | 'external';

export type TemplateNode =
  | { type: 'variable'; namespace: TraitNamespace; name: string }
  | { type: 'email.local'; arg: TemplateNode }
  | { type: 'regexp.replace'; arg: TemplateNode; pattern: GoRegexp; source: string; replacement: string };

export interface TemplateExpression {
  prefix: string;
  suffix: string;
  expr: TemplateNode;
}


/** True when the value uses template brackets at all (valid or not). */
export function hasTemplate(value: string): boolean {
  return value.includes('{{') || value.includes('}}');
}

/**
 * Parses a value that may hold a template. Returns undefined for a plain literal; throws
 * BadParameterError when the value uses `{{ }}` but is not a valid template.
 */
export function parseTemplate(value: string): TemplateExpression | undefined {
  if (!hasTemplate(value)) return undefined;
  const start = value.indexOf('{{');
  const end = value.lastIndexOf('}}');
  const prefix = value.slice(0, Math.max(start, 0));
  const suffix = value.slice(end + 2);
  if (start < 0 || end < start + 2 || /[{}]/.test(prefix) || /[{}]/.test(suffix)) {
    throw new BadParameterError(
      `${JSON.stringify(value)} uses template brackets but is not a template; ` +
        'write one expression as {{internal.name}} or {{external.name}}, optionally with text around it',
      { value },
    );
  }
  try {
    const body = value.slice(start + 2, end);
    if (body.trim() === '') throw new Error('empty expression');
    const parser = new Parser(body);
    const expr = parser.parseExpression();
    parser.expectEnd();
    return { prefix, suffix, expr };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new BadParameterError(`invalid template ${JSON.stringify(value)}: ${why}`, { value });
  }
}

type Token =
  | { t: 'ident'; v: string }
  | { t: 'string'; v: string }
  | { t: 'punct'; v: '.' | '(' | ')' | ',' | '[' | ']' };

class Parser {
  private readonly tokens: Token[];
  private pos = 0;

  constructor(src: string) {
    this.tokens = tokenize(src);
  }

  parseExpression(): TemplateNode {
    const first = this.ident();
    if (first === 'internal' || first === 'external') {
      if (this.peekPunct('.')) {
        this.next();
        return { type: 'variable', namespace: first, name: this.ident() };
      }
      if (this.peekPunct('[')) {
        this.next();
        const name = this.string();
        this.punct(']');
        if (name === '') throw new Error('empty trait name');
        return { type: 'variable', namespace: first, name };
      }
      throw new Error(`expected ".name" or '["name"]' after ${first}`);
    }
    this.punct('.');
    const fn = `${first}.${this.ident()}`;
    this.punct('(');
    switch (fn) {
      case 'email.local': {
        const arg = this.parseExpression();
        this.punct(')');
        return { type: 'email.local', arg };
      }
      case 'regexp.replace': {
        const arg = this.parseExpression();
        this.punct(',');
        const source = this.string();
        this.punct(',');
        const replacement = this.string();
        this.punct(')');
        return { type: 'regexp.replace', arg, pattern: compileGoRegexp(source), source, replacement };
      }
      default:
        throw new Error(
          `unsupported function ${fn}() (supported: email.local, regexp.replace; variables: internal.*, external.*)`,
        );
    }
  }

  expectEnd(): void {
    const tok = this.tokens[this.pos];
    if (tok) throw new Error(`unexpected ${describe(tok)} after the expression`);
  }

  private next(): Token {
    const tok = this.tokens[this.pos++];
    if (!tok) throw new Error('unexpected end of expression');
    return tok;
  }

  private peekPunct(v: string): boolean {
    const tok = this.tokens[this.pos];
    return tok?.t === 'punct' && tok.v === v;
  }

  private ident(): string {
    const tok = this.next();
    if (tok.t !== 'ident') throw new Error(`expected a name, found ${describe(tok)}`);
    return tok.v;
  }

  private string(): string {
    const tok = this.next();
    if (tok.t !== 'string') throw new Error(`expected a double-quoted string, found ${describe(tok)}`);
    return tok.v;
  }

  private punct(v: string): void {
    if (this.pos >= this.tokens.length) throw new Error(`expected "${v}" but the expression ended`);
    const tok = this.next();
    if (tok.t !== 'punct' || tok.v !== v) throw new Error(`expected "${v}", found ${describe(tok)}`);
  }
}

function describe(tok: Token): string {
  return tok.t === 'string' ? `string ${JSON.stringify(tok.v)}` : `"${tok.v}"`;
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j]!)) j++;
      out.push({ t: 'ident', v: src.slice(i, j) });
      i = j;
    } else if (c === '"') {
      let j = i + 1;
      let v = '';
      for (;;) {
        if (j >= src.length) throw new Error('unterminated string');
        const d = src[j]!;
        if (d === '"') break;
        if (d === '\\') {
          const e = src[j + 1];
          if (e === undefined) throw new Error('unterminated string');
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
        } else {
          v += d;
          j++;
        }
      }
      out.push({ t: 'string', v });
      i = j + 1;
    } else if ('.(),[]'.includes(c)) {
      out.push({ t: 'punct', v: c as '.' });
      i++;
    } else {
      throw new Error(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  return out;
}

export { compileGoRegexp, type GoRegexp };

/** Converts a Go replacement template (`$1`, `${1}`, `${name}`) to JavaScript's (`$1`, `$<name>`). */
export function goReplacement(replacement: string): string {
  return replacement.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*|\d+)\}/g, (_m, name: string) =>
    /^\d+$/.test(name) ? `$${name}` : `$<${name}>`,
  );
}
