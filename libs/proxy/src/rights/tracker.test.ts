import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@keyway/log';
import type { Identity } from '@keyway/pki';
import { parseResourceDocuments, type LockResource, type RoleResource, type UserResource } from '@keyway/resources';
import { ClusterCache } from '../cache.js';
import { RightsTracker } from './tracker.js';

// The tracker over a real ClusterCache whose maps are filled as its watch would fill them
// (the cache is never started: these tests are about the decisions, the end-to-end suite
// drives the watch).

const DOCS = parseResourceDocuments(`kind: role
version: v7
metadata: {name: devs}
spec: {}
---
kind: role
version: v7
metadata: {name: capped}
spec: {options: {max_kubernetes_connections: 3}}
---
kind: role
version: v7
metadata: {name: tight}
spec: {options: {max_kubernetes_connections: 1}}
---
kind: role
version: v7
metadata: {name: paranoid}
spec: {options: {lock: strict}}
---
kind: user
version: v2
metadata: {name: ada}
spec: {roles: [devs]}
---
kind: lock
version: v2
metadata: {name: l1}
spec: {target: {role: devs}, message: incident 7}
`).docs;

function cacheWith(...names: string[]): ClusterCache {
  const cache = new ClusterCache(() => {
    throw new Error('the cache is not started in these tests');
  }, silentLogger());
  for (const doc of DOCS) {
    if (doc.kind === 'role') cache.roles.set(doc.metadata.name, doc as RoleResource);
    if (doc.kind === 'user' && names.includes(doc.metadata.name)) cache.users.set(doc.metadata.name, doc as UserResource);
    if (doc.kind === 'lock' && names.includes(doc.metadata.name)) cache.locks.set(doc.metadata.name, doc as LockResource);
  }
  return cache;
}

const identity = (roles: string[], expiresInMs = 3_600_000): Identity => ({
  username: 'ada',
  roles,
  traits: {},
  kubernetesUsers: [],
  kubernetesGroups: [],
  clusterName: 'acme',
  mfaVerified: false,
  systemRoles: [],
  expires: new Date(Date.now() + expiresInMs),
});

const trackers: RightsTracker[] = [];
const tracker = (cache: ClusterCache, now?: () => number) => {
  const t = new RightsTracker({ cache, logger: silentLogger(), ...(now ? { now } : {}) });
  trackers.push(t);
  return t;
};
afterEach(() => {
  for (const t of trackers.splice(0)) t.stop();
});

describe('RightsTracker', () => {
  it('refuses an expired certificate on every request, whatever its connection timer did', () => {
    // The certificate is valid by the wall clock (no timer has fired), but it is a request later.
    const later = tracker(cacheWith('ada'), () => Date.now() + 2 * 3_600_000);
    expect(later.refusal(identity(['devs']))).toMatchObject({ code: 401, message: expect.stringMatching(/certificate of user "ada" expired at/) });
    expect(tracker(cacheWith('ada')).refusal(identity(['devs']))).toBeUndefined();
  });

  it('refuses a deleted user and a user locked through one of the certificate roles', () => {
    expect(tracker(cacheWith()).refusal(identity(['devs']))).toMatchObject({ code: 403, message: 'keyway: user "ada" no longer exists' });
    expect(tracker(cacheWith('ada', 'l1')).refusal(identity(['devs']))).toMatchObject({ code: 403, message: 'keyway: user "ada" is locked: incident 7' });
  });

  it('a timer per connection closes it when NotAfter passes, with the reason', async () => {
    const t = tracker(cacheWith('ada'));
    const reasons: string[] = [];
    t.trackConnection(identity(['devs'], 150), { close: (r) => reasons.push(r) });
    t.trackConnection(identity(['devs'], 60_000), { close: (r) => reasons.push(`long-lived: ${r}`) });
    await new Promise((r) => setTimeout(r, 400));
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/^certificate of user "ada" expired at /);
    expect(t.held('ada')).toBe(1);
  });

  it('caps streams at the smallest non-zero max_kubernetes_connections of the roles, counting only streams', () => {
    const t = tracker(cacheWith('ada'));
    const id = identity(['devs', 'capped', 'tight']);
    t.trackConnection(id, { close: () => undefined });
    const first = t.openStream(id, { close: () => undefined });
    expect('release' in first).toBe(true);
    const second = t.openStream(id, { close: () => undefined });
    expect(second).toMatchObject({ status: { code: 429, reason: 'TooManyRequests', message: expect.stringContaining('max_kubernetes_connections: 1') } });
    if ('release' in first) first.release();
    expect('release' in t.openStream(id, { close: () => undefined })).toBe(true);
    // Without a limit in any role, there is none.
    const free = identity(['devs']);
    for (let i = 0; i < 50; i++) expect('release' in t.openStream(free, { close: () => undefined })).toBe(true);
  });

  it('strict (a role says lock: strict) refuses with 503 while there is no current view; best-effort does not', () => {
    // A cache that never received a snapshot: its view of locks is of unknown age.
    const t = tracker(cacheWith('ada'));
    expect(t.refusal(identity(['paranoid']))).toMatchObject({ code: 503, message: expect.stringMatching(/view of locks is not loaded yet.*locking_mode is strict/) });
    expect(t.refusal(identity(['devs']))).toBeUndefined();
  });
});
