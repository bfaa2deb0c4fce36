import { describe, expect, it } from 'vitest';
import { isBadParameter } from '@keyway/errors';
import { parseResourceDocuments, type RoleResource, type UserResource } from '@keyway/resources';
import { DEFAULT_CERT_TTL_MS, certTtl, identityKubeGrants, maxSessionTtl } from './grants.js';
import { ACCESS_ROLE } from './presets.js';

const H = 3_600_000;

function role(name: string, spec: string): RoleResource {
  return parseResourceDocuments(`kind: role\nversion: v7\nmetadata: {name: ${name}}\nspec: ${spec}\n`).docs[0] as RoleResource;
}

const JUNIOR_DEVS = parseResourceDocuments(`kind: role
version: v7
metadata: {name: junior-devs}
spec:
  options: {max_session_ttl: 8h}
  allow:
    kubernetes_labels: {env: [dev, staging]}
    kubernetes_groups: ['teleport-view', '{{internal.kubernetes_groups}}', '{{external.k8s_groups}}']
    kubernetes_users: ['{{internal.kubernetes_users}}']
    kubernetes_resources:
      - {kind: pod, namespace: dev, name: '*', verbs: [get, list, watch, exec]}
  deny: {}
`).docs[0] as RoleResource;

const JIMBO = parseResourceDocuments(`kind: user
version: v2
metadata:
  name: jimbo
spec:
  roles: ['junior-devs']
  traits:
    kubernetes_groups: ['teleport-view']
`).docs[0] as UserResource;

describe('identityKubeGrants', () => {
  it('gives the seed user the groups of the DESIGN.md role', () => {
    expect(identityKubeGrants([JUNIOR_DEVS], { internal: JIMBO.spec.traits, external: {} })).toEqual({
      kubernetesGroups: ['teleport-view'],
      kubernetesUsers: [],
    });
  });

  it('unions roles, expands templates, dedupes, sorts and removes denied values', () => {
    const ops = role('ops', "{allow: {kubernetes_groups: [ops, 'team-{{external.team}}'], kubernetes_users: ['{{email.local(external.email)}}']}}");
    const noMasters = role('no-masters', '{deny: {kubernetes_groups: [system:masters]}}');
    const masters = role('masters', '{allow: {kubernetes_groups: [system:masters]}}');
    const traits = {
      internal: { kubernetes_groups: ['viewers', 'ops'], kubernetes_users: ['jim'] },
      external: { k8s_groups: ['sso-devs'], team: ['a', 'b'], email: ['jim.b@example.com'] },
    };
    expect(identityKubeGrants([JUNIOR_DEVS, ops, ACCESS_ROLE, masters, noMasters], traits)).toEqual({
      kubernetesGroups: ['ops', 'sso-devs', 'team-a', 'team-b', 'teleport-view', 'viewers'],
      kubernetesUsers: ['jim', 'jim.b'],
    });
    expect(identityKubeGrants([], traits)).toEqual({ kubernetesGroups: [], kubernetesUsers: [] });
  });

  it('names the role whose template is broken', () => {
    const broken: RoleResource = { ...ACCESS_ROLE, metadata: { name: 'old' }, spec: { ...ACCESS_ROLE.spec, allow: { kubernetes_groups: ['{{internal.x'] } } };
    let caught: unknown;
    try {
      identityKubeGrants([broken], { internal: {}, external: {} });
    } catch (err) {
      caught = err;
    }
    expect(isBadParameter(caught)).toBe(true);
    expect((caught as Error).message).toMatch(/^role "old": /);
  });
});

describe('session and certificate TTLs', () => {
  const short = role('short', '{options: {max_session_ttl: 1h30m}}');
  const long = role('long', '{options: {max_session_ttl: 100h}}');

  it('takes the smallest max_session_ttl, defaulting to 30h', () => {
    expect(maxSessionTtl([])).toBe(30 * H);
    expect(maxSessionTtl([ACCESS_ROLE])).toBe(30 * H);
    expect(maxSessionTtl([long])).toBe(30 * H);
    expect(maxSessionTtl([JUNIOR_DEVS, long])).toBe(8 * H);
    expect(maxSessionTtl([JUNIOR_DEVS, short, long])).toBe(1.5 * H);
  });

  it('issues 12h certificates unless asked for less or capped by a role', () => {
    expect(DEFAULT_CERT_TTL_MS).toBe(12 * H);
    expect(certTtl([ACCESS_ROLE])).toBe(12 * H);
    expect(certTtl([ACCESS_ROLE], 20 * H)).toBe(20 * H);
    expect(certTtl([ACCESS_ROLE], 40 * H)).toBe(30 * H);
    expect(certTtl([JUNIOR_DEVS])).toBe(8 * H);
    expect(certTtl([JUNIOR_DEVS], H)).toBe(H);
    expect(certTtl([JUNIOR_DEVS, short], 10 * H)).toBe(1.5 * H);
    expect(() => certTtl([ACCESS_ROLE], 0)).toThrow(/must be positive/);
    expect(() => certTtl([ACCESS_ROLE], Number.NaN)).toThrow(/must be positive/);
  });
});
