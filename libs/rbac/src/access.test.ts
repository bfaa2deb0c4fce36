import { describe, expect, it } from 'vitest';
import { isAccessDenied, type KeywayError } from '@keyway/errors';
import { parseResourceDocuments, type RoleResource } from '@keyway/resources';
import { checkAccess, evaluateAccess } from './access.js';
import { ACCESS_ROLE, AUDITOR_ROLE, EDITOR_ROLE, SYSTEM_ADMIN_ROLE } from './presets.js';

function role(name: string, spec: string): RoleResource {
  return parseResourceDocuments(`kind: role\nversion: v7\nmetadata: {name: ${name}}\nspec: ${spec}\n`).docs[0] as RoleResource;
}

function denial(fn: () => void): KeywayError {
  try {
    fn();
  } catch (err) {
    expect(isAccessDenied(err)).toBe(true);
    return err as KeywayError;
  }
  throw new Error('expected access to be denied');
}

describe('checkAccess', () => {
  const userAdmin = role('user-admin', '{allow: {rules: [{resources: [user], verbs: [list, read, create]}]}}');
  const anything = role('anything', "{allow: {rules: [{resources: ['*'], verbs: ['*']}]}}");
  const noDelete = role('no-delete', "{deny: {rules: [{resources: ['*'], verbs: [delete]}]}}");

  it('allows what an allow rule names', () => {
    expect(() => checkAccess([userAdmin], 'user', 'create', 'jimbo')).not.toThrow();
    expect(evaluateAccess([userAdmin], 'user', 'read')).toMatchObject({ allowed: true, role: 'user-admin' });
  });

  it('denies what no rule names, saying who and why', () => {
    const err = denial(() => checkAccess([userAdmin, ACCESS_ROLE], 'role', 'create', 'jimbo'));
    expect(err.message).toBe('user "jimbo" may not create role: no rule of roles "user-admin", "access" allows it');
    expect(err.data).toEqual({ user: 'jimbo', roles: ['user-admin', 'access'], resource: 'role', verb: 'create' });
    expect(denial(() => checkAccess([], 'user', 'list')).message).toBe('caller may not list user: the user has no roles');
    expect(denial(() => checkAccess([userAdmin], 'user', 'delete', 'jimbo')).message).toContain('no rule of role "user-admin" allows it');
  });

  it('lets deny rules win over allow rules, in any role', () => {
    expect(() => checkAccess([anything], 'token', 'delete', 'a')).not.toThrow();
    const err = denial(() => checkAccess([anything, noDelete], 'token', 'delete', 'a'));
    expect(err.message).toBe('user "a" may not delete token: denied by a deny rule of role "no-delete"');
    expect(err.data['deniedBy']).toBe('no-delete');
    expect(() => checkAccess([anything, noDelete], 'token', 'read', 'a')).not.toThrow();
  });

  it('treats auth_connector as every connector kind and read as readnosecrets', () => {
    const connectors = role('connectors', '{allow: {rules: [{resources: [auth_connector], verbs: [read]}]}}');
    for (const kind of ['github', 'oidc', 'saml', 'auth_connector']) {
      expect(evaluateAccess([connectors], kind, 'read').allowed).toBe(true);
      expect(evaluateAccess([connectors], kind, 'readnosecrets').allowed).toBe(true);
    }
    expect(evaluateAccess([connectors], 'user', 'read').allowed).toBe(false);
    const noGithub = role('no-github', '{deny: {rules: [{resources: [auth_connector], verbs: [read]}]}}');
    expect(evaluateAccess([EDITOR_ROLE, noGithub], 'github', 'read').allowed).toBe(false);
  });

  it('gives presets the access their names promise', () => {
    for (const kind of ['user', 'role', 'token', 'github', 'oidc', 'saml', 'kube_cluster', 'lock']) {
      for (const verb of ['list', 'read', 'create', 'update', 'delete']) {
        expect(evaluateAccess([EDITOR_ROLE], kind, verb).allowed, `editor ${verb} ${kind}`).toBe(true);
      }
    }
    expect(evaluateAccess([EDITOR_ROLE], 'cert_authority', 'read').allowed).toBe(true);
    expect(evaluateAccess([EDITOR_ROLE], 'cert_authority', 'update').allowed).toBe(false);
    expect(evaluateAccess([EDITOR_ROLE], 'event', 'list').allowed).toBe(true);
    expect(evaluateAccess([AUDITOR_ROLE], 'event', 'list').allowed).toBe(true);
    expect(evaluateAccess([AUDITOR_ROLE], 'session', 'read').allowed).toBe(true);
    expect(evaluateAccess([AUDITOR_ROLE], 'user', 'read').allowed).toBe(false);
    expect(evaluateAccess([ACCESS_ROLE], 'user', 'list').allowed).toBe(false);
    expect(evaluateAccess([ACCESS_ROLE], 'event', 'list').allowed).toBe(false);
    expect(evaluateAccess([SYSTEM_ADMIN_ROLE], 'anything', 'whatever').allowed).toBe(true);
  });
});
