import { describe, expect, it } from 'vitest';
import { isBadParameter } from '@keyway/errors';
import { goReplacement, parseTemplate } from './template.js';

describe('parseTemplate', () => {
  it('returns undefined for literals', () => {
    expect(parseTemplate('teleport-view')).toBeUndefined();
    expect(parseTemplate('system:masters')).toBeUndefined();
  });

  it('parses variables with prefix and suffix', () => {
    expect(parseTemplate('{{internal.kubernetes_groups}}')).toEqual({
      prefix: '',
      suffix: '',
      expr: { type: 'variable', namespace: 'internal', name: 'kubernetes_groups' },
    });
    expect(parseTemplate('IAM#{{ external.foo }};')).toEqual({
      prefix: 'IAM#',
      suffix: ';',
      expr: { type: 'variable', namespace: 'external', name: 'foo' },
    });
    expect(parseTemplate('{{external["my-claim"]}}')?.expr).toEqual({ type: 'variable', namespace: 'external', name: 'my-claim' });
  });

  it('parses functions, nested', () => {
    expect(parseTemplate('{{email.local(external.email)}}')?.expr).toEqual({
      type: 'email.local',
      arg: { type: 'variable', namespace: 'external', name: 'email' },
    });
    const t = parseTemplate('{{regexp.replace(email.local(external.email), "^(.*)\\\\.admin$", "$1")}}');
    expect(t?.expr.type).toBe('regexp.replace');
    if (t?.expr.type === 'regexp.replace') {
      expect(t.expr.source).toBe('^(.*)\\.admin$');
      expect(t.expr.pattern.test('bob.admin')).toBe(true);
      expect(t.expr.arg.type).toBe('email.local');
    }
  });

  it.each([
    ['{{internal.logins}', /template brackets/],
    ['{{internal.a}}{{internal.b}}', /unexpected character "}"/],
    ['}}{{internal.a}}', /template brackets/],
    ['{{}}', /empty expression/],
    ['{{internal}}', /after internal/],
    ['{{foo.bar}}', /expected "\("/],
    ['{{strings.upper(external.x)}}', /unsupported function strings\.upper/],
    ['{{regexp.replace(external.x, "(", "y")}}', /invalid regular expression/],
    ['{{regexp.replace(external.x, "a")}}', /expected ","/],
    ['{{internal.logins extra}}', /unexpected "extra"/],
    ['{{external["x]}}', /unterminated string/],
  ])('rejects %j', (value, why) => {
    let caught: unknown;
    try {
      parseTemplate(value);
    } catch (err) {
      caught = err;
    }
    expect(isBadParameter(caught)).toBe(true);
    expect((caught as Error).message).toMatch(why);
  });

  it('translates Go regexp and replacement syntax', () => {
    const t = parseTemplate('{{regexp.replace(external.g, "(?i)^dev-(?P<team>.*)$", "${team}")}}');
    if (t?.expr.type !== 'regexp.replace') throw new Error('expected regexp.replace');
    expect(t.expr.pattern.replaceAll('DEV-web', t.expr.replacement)).toBe('web');
    expect(goReplacement('${1}-x')).toBe('$1-x');
  });
});
