import { describe, expect, it } from 'vitest';
import { isBadParameter } from '@keyway/errors';
import { expandTemplate, type Traits } from './templates.js';

const traits: Traits = {
  internal: { kubernetes_groups: ['dev', 'ops'], kubernetes_users: ['jimbo'], empty: [], blank: [''] },
  external: {
    email: ['alice@example.com', 'Bob Smith <bob@corp.example>', 'not-an-address'],
    groups: ['dev-web', 'dev-api', 'admins'],
    'k8s-groups': ['viewers'],
  },
};

describe('expandTemplate', () => {
  it('returns literals unchanged', () => {
    expect(expandTemplate('teleport-view', traits)).toEqual(['teleport-view']);
    expect(expandTemplate('system:masters', traits)).toEqual(['system:masters']);
  });

  it('expands internal and external traits, with prefix and suffix', () => {
    expect(expandTemplate('{{internal.kubernetes_groups}}', traits)).toEqual(['dev', 'ops']);
    expect(expandTemplate('{{ external.groups }}', traits)).toEqual(['dev-web', 'dev-api', 'admins']);
    expect(expandTemplate('{{external["k8s-groups"]}}', traits)).toEqual(['viewers']);
    expect(expandTemplate('pre-{{internal.kubernetes_groups}}-post', traits)).toEqual(['pre-dev-post', 'pre-ops-post']);
  });

  it('gives no values for a missing or empty trait', () => {
    expect(expandTemplate('{{internal.nope}}', traits)).toEqual([]);
    expect(expandTemplate('{{external.kubernetes_groups}}', traits)).toEqual([]);
    expect(expandTemplate('x-{{internal.empty}}', traits)).toEqual([]);
    expect(expandTemplate('x-{{internal.blank}}', traits)).toEqual([]);
    expect(expandTemplate('{{internal.constructor}}', traits)).toEqual([]);
    expect(expandTemplate('{{external.email}}', { internal: {}, external: {} })).toEqual([]);
  });

  it('supports email.local()', () => {
    expect(expandTemplate('{{email.local(external.email)}}', traits)).toEqual(['alice', 'bob']);
  });

  it('supports regexp.replace(), dropping values that do not match', () => {
    expect(expandTemplate('{{regexp.replace(external.groups, "^dev-(.*)$", "$1")}}', traits)).toEqual(['web', 'api']);
    expect(expandTemplate('team-{{regexp.replace(external.groups, "^dev-(?P<t>.*)$", "${t}")}}', traits)).toEqual(['team-web', 'team-api']);
    expect(expandTemplate('{{regexp.replace(external.groups, "-", "_")}}', traits)).toEqual(['dev_web', 'dev_api']);
    expect(expandTemplate('{{regexp.replace(email.local(external.email), "^a", "A")}}', traits)).toEqual(['Alice']);
  });

  it('rejects invalid templates with BadParameterError', () => {
    for (const bad of ['{{internal.x', '{{secret.x}}', '{{email.local(external.x}}', '{{regexp.replace(external.x, "[", "")}}']) {
      let caught: unknown;
      try {
        expandTemplate(bad, traits);
      } catch (err) {
        caught = err;
      }
      expect(isBadParameter(caught), bad).toBe(true);
    }
  });
});
