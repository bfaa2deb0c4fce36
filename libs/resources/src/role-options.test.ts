import { describe, expect, it } from 'vitest';
import type { KeywayError } from '@keyway/errors';
import { parseResourceDocuments, type ResourceProblem } from './documents.js';
import type { RoleResource } from './types.js';

// The role options behind issue 10's "rights end when they end": Teleport's names and values.

const role = (options: string) => `kind: role
version: v7
metadata: {name: r}
spec:
  options: ${options}
`;

function problems(text: string): ResourceProblem[] {
  try {
    parseResourceDocuments(text);
  } catch (err) {
    return (err as KeywayError & { data: { problems: ResourceProblem[] } }).data.problems;
  }
  return [];
}

describe('role options max_kubernetes_connections, lock, disconnect_expired_cert', () => {
  it('keeps the limit and the locking mode as Teleport writes them', () => {
    const [r] = parseResourceDocuments(role('{max_kubernetes_connections: 3, lock: strict, disconnect_expired_cert: true}')).docs as RoleResource[];
    expect(r?.spec.options).toEqual({ max_session_ttl: '30h', max_kubernetes_connections: 3, lock: 'strict' });
  });

  it('treats 0 as no limit, as Teleport does', () => {
    const [r] = parseResourceDocuments(role('{max_kubernetes_connections: 0, lock: best_effort}')).docs as RoleResource[];
    expect(r?.spec.options).toEqual({ max_session_ttl: '30h', lock: 'best_effort' });
  });

  it('accepts disconnect_expired_cert: false (Teleport: defer to the cluster; Keyway always disconnects)', () => {
    expect(problems(role('{disconnect_expired_cert: false}'))).toEqual([]);
  });

  it('refuses a negative or fractional limit and an unknown locking mode, naming the field', () => {
    expect(problems(role('{max_kubernetes_connections: -1}'))).toEqual([expect.objectContaining({ path: 'spec.options.max_kubernetes_connections', code: 'invalid' })]);
    expect(problems(role('{max_kubernetes_connections: 1.5}'))).toEqual([expect.objectContaining({ path: 'spec.options.max_kubernetes_connections', code: 'invalid' })]);
    expect(problems(role('{lock: sometimes}'))).toEqual([expect.objectContaining({ path: 'spec.options.lock', code: 'invalid', message: expect.stringContaining('"best_effort" or "strict"') })]);
  });
});
