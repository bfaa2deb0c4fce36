import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SCIM_MAX_BODY_BYTES, SCIM_MAX_DEPTH, ScimError, parseCreate, parseFilter, parsePaging, parsePatch, parseReplace, parseRoute, parseScimJson, scimTokenName } from './scim-parse.js';

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

function scimErrorOf(fn: () => unknown): ScimError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ScimError) return err;
    throw err;
  }
  throw new Error('expected a ScimError');
}

describe('SCIM PATCH', () => {
  it("reads Okta's path form and Entra ID's value form, strings included", () => {
    expect(parsePatch({ schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] })).toEqual({ active: false });
    expect(parsePatch({ schemas: [PATCH], Operations: [{ op: 'Replace', value: { active: false } }] })).toEqual({ active: false });
    expect(parsePatch({ Operations: [{ op: 'replace', path: 'urn:ietf:params:scim:schemas:core:2.0:User:active', value: 'False' }] })).toEqual({ active: false });
    expect(parsePatch({ Operations: [{ op: 'replace', value: { active: true, displayName: 'Ada' } }] })).toEqual({ active: true });
    // Profile changes Keyway does not keep are accepted and change nothing; the last active wins.
    expect(parsePatch({ Operations: [{ op: 'add', path: 'emails', value: [{ value: 'a@b' }] }] })).toEqual({});
    expect(parsePatch({ Operations: [{ op: 'replace', path: 'active', value: false }, { op: 'replace', path: 'active', value: true }] })).toEqual({ active: true });
  });

  it('refuses what it cannot act on with a typed 400', () => {
    const cases: unknown[] = [
      null,
      [],
      'x',
      {},
      { Operations: [] },
      { Operations: 'replace' },
      { schemas: ['urn:other'], Operations: [{ op: 'replace', path: 'active', value: false }] },
      { Operations: [{ op: 'move', path: 'active', value: false }] },
      { Operations: [{ op: 'replace', path: 'active', value: 'no' }] },
      { Operations: [{ op: 'replace', path: 'active', value: 0 }] },
      { Operations: [{ op: 'replace', value: 'x' }] },
      { Operations: [{ op: 'remove', path: 'active' }] },
      { Operations: [{ op: 'replace', path: 7, value: false }] },
      { Operations: Array.from({ length: 101 }, () => ({ op: 'replace', path: 'active', value: false })) },
    ];
    for (const c of cases) expect(scimErrorOf(() => parsePatch(c)).status, JSON.stringify(c)?.slice(0, 80)).toBe(400);
  });

  it('never throws anything but a ScimError, whatever JSON arrives', () => {
    const op = fc.record(
      { op: fc.oneof(fc.constantFrom('add', 'replace', 'remove', 'REPLACE'), fc.anything()), path: fc.oneof(fc.constantFrom('active', 'ACTIVE', 'name.givenName'), fc.anything()), value: fc.oneof(fc.boolean(), fc.constantFrom('true', 'False'), fc.record({ active: fc.anything() }), fc.anything()) },
      { requiredKeys: [] },
    );
    const body = fc.oneof(fc.anything(), fc.record({ schemas: fc.oneof(fc.constant([PATCH]), fc.anything()), Operations: fc.oneof(fc.array(fc.oneof(op, fc.anything()), { maxLength: 5 }), fc.anything()) }, { requiredKeys: [] }));
    fc.assert(
      fc.property(body, (b) => {
        try {
          const change = parsePatch(b);
          expect(change.active === undefined || typeof change.active === 'boolean').toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(ScimError);
          expect((err as ScimError).status).toBe(400);
        }
      }),
      { seed: 7, numRuns: 2000 },
    );
  });

  it('parses any text as JSON or refuses it with a ScimError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
        try {
          parseScimJson(text);
        } catch (err) {
          expect(err).toBeInstanceOf(ScimError);
        }
      }),
      { seed: 11, numRuns: 2000 },
    );
  });
});

describe('SCIM bodies', () => {
  it('bounds size and nesting before parsing, and counts brackets inside strings as text', () => {
    expect(scimErrorOf(() => parseScimJson(' '.repeat(SCIM_MAX_BODY_BYTES + 1))).status).toBe(413);
    expect(scimErrorOf(() => parseScimJson('['.repeat(SCIM_MAX_DEPTH + 1) + ']'.repeat(SCIM_MAX_DEPTH + 1))).detail).toMatch(/nests deeper/);
    expect(scimErrorOf(() => parseScimJson('['.repeat(60_000))).status).toBe(400);
    expect(parseScimJson(JSON.stringify({ userName: '[[[[[[[[[[[[[[[[[[[[[[\\"{{{{' }))).toEqual({ userName: '[[[[[[[[[[[[[[[[[[[[[[\\"{{{{' });
    expect(scimErrorOf(() => parseScimJson('')).status).toBe(400);
    expect(scimErrorOf(() => parseScimJson('{"a":')).detail).toBe('the request body is not JSON');
  });

  it('takes userName and active from a POST, and refuses renames on PUT', () => {
    expect(parseCreate({ schemas: [], userName: 'ada@example.com' })).toEqual({ userName: 'ada@example.com', active: true });
    expect(parseCreate({ UserName: 'ada', active: 'false' })).toEqual({ userName: 'ada', active: false });
    expect(scimErrorOf(() => parseCreate({ userName: '' })).status).toBe(400);
    expect(scimErrorOf(() => parseCreate({ userName: 'a\nb' })).status).toBe(400);
    expect(scimErrorOf(() => parseCreate({ userName: 'x'.repeat(600) })).status).toBe(400);
    expect(parseReplace({ userName: 'ada', active: false }, 'ada')).toEqual({ active: false });
    expect(parseReplace({ userName: 'ada' }, 'ada')).toEqual({});
    expect(scimErrorOf(() => parseReplace({ userName: 'eve', active: true }, 'ada')).scimType).toBe('mutability');
  });
});

describe('SCIM queries and routes', () => {
  it('supports exactly the userName eq filter', () => {
    expect(parseFilter(null)).toBeUndefined();
    expect(parseFilter('userName eq "ada@example.com"')).toBe('ada@example.com');
    expect(parseFilter('username EQ "a\\"b"')).toBe('a"b');
    for (const f of ['userName co "a"', 'emails eq "a"', 'userName eq ada', 'userName eq "a" or userName eq "b"', 'userName eq "\\x"']) {
      expect(scimErrorOf(() => parseFilter(f)).scimType).toBe('invalidFilter');
    }
  });

  it('clamps paging as RFC 7644 says and refuses non-numbers', () => {
    expect(parsePaging(new URLSearchParams(''))).toEqual({ startIndex: 1, count: 100 });
    expect(parsePaging(new URLSearchParams('startIndex=0&count=-5'))).toEqual({ startIndex: 1, count: 0 });
    expect(parsePaging(new URLSearchParams('startIndex=3&count=100000'))).toEqual({ startIndex: 3, count: 200 });
    expect(scimErrorOf(() => parsePaging(new URLSearchParams('count=1e9'))).status).toBe(400);
  });

  it('routes by path, the id being the URL-encoded user name', () => {
    expect(parseRoute('/Users')).toEqual({ kind: 'users' });
    expect(parseRoute('/Users/ada%40example.com')).toEqual({ kind: 'user', id: 'ada@example.com' });
    expect(parseRoute('/ServiceProviderConfig')).toEqual({ kind: 'spc' });
    expect(parseRoute('/ResourceTypes/User')).toEqual({ kind: 'resourceTypes', id: 'User' });
    expect(parseRoute('/Schemas')).toEqual({ kind: 'schemas' });
    expect(scimErrorOf(() => parseRoute('/Groups')).status).toBe(404);
    expect(scimErrorOf(() => parseRoute('/Users/a/b')).status).toBe(404);
    expect(scimErrorOf(() => parseRoute('/Users/%E0%A4%A')).status).toBe(400);
  });

  it('stores tokens as a hash of their value', () => {
    expect(scimTokenName('secret')).toMatch(/^[0-9a-f]{64}$/);
    expect(scimTokenName('secret')).not.toBe(scimTokenName('secreT'));
  });
});
