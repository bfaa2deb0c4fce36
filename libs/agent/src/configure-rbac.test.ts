import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { AGENT_IMPERSONATION_RULES } from './configure-rbac.js';
import { canonicalRules } from './configure.js';

const k8s = (file: string) => readFileSync(fileURLToPath(new URL(`../../../k8s/agent/${file}`, import.meta.url)), 'utf8');

function clusterRoleRules(yamlText: string): unknown {
  const roles = parseAllDocuments(yamlText)
    .map((d) => d.toJS() as { kind?: string; rules?: unknown } | null)
    .filter((o) => o?.kind === 'ClusterRole');
  expect(roles).toHaveLength(1);
  return roles[0]?.rules;
}

describe('the agent ClusterRole has one definition', () => {
  it('k8s/agent/serviceaccount.yaml grants exactly the rules configure applies', () => {
    expect(canonicalRules(clusterRoleRules(k8s('serviceaccount.yaml')))).toEqual(canonicalRules(AGENT_IMPERSONATION_RULES));
  });

  it('k8s/agent/make-kubeconfig.sh grants exactly the rules configure applies', () => {
    const script = k8s('make-kubeconfig.sh');
    const block = /# BEGIN RULES[^\n]*\n([\s\S]*?)# END RULES/.exec(script)?.[1];
    expect(block, 'the script marks its ClusterRole with BEGIN/END RULES').toBeDefined();
    expect(canonicalRules(clusterRoleRules((block as string).replaceAll('$role', 'x')))).toEqual(canonicalRules(AGENT_IMPERSONATION_RULES));
  });

  it('grants nothing but impersonation', () => {
    expect(AGENT_IMPERSONATION_RULES.flatMap((r) => r.verbs)).toEqual(['impersonate']);
  });
});

describe('canonicalRules', () => {
  it('ignores the order of fields and list items, as the API server returns them', () => {
    expect(canonicalRules([{ verbs: ['impersonate'], resources: ['users', 'groups'], apiGroups: [''] }])).toEqual(canonicalRules([{ apiGroups: [''], resources: ['groups', 'users'], verbs: ['impersonate'] }]));
    expect(canonicalRules([{ apiGroups: [''], resources: ['users'], verbs: ['get'] }])).not.toEqual(canonicalRules([{ apiGroups: [''], resources: ['users'], verbs: ['impersonate'] }]));
  });
});
