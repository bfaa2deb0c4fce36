import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventRecord, AuditLog } from '@keyway/audit';
import { silentLogger } from '@keyway/log';
import type { UserResource } from '@keyway/resources';
import { SsoLoginError, newSecretKey, type SsoDriver, type SsoIdentity } from '@keyway/sso';
import { Store, getSsoSession } from '@keyway/store';
import { createTestDatabase, type TestDatabase } from '@keyway/testing';
import { SsoRenewals, renewalKeyOf } from './renewal.js';
import { ssoUser } from './logins.js';

// The renewal check's own failure modes, with a scripted provider: a provider that is down
// refuses the renewal without ending the user; a sealed secret that is not the user's own (a
// row copied between users, a changed key) is refused; the provider's "no" ends the user.

describe('SSO renewals', () => {
  let tdb: TestDatabase;
  let store: Store;
  const events: AuditEventRecord[] = [];
  const audit: AuditLog = { emit: (e) => void events.push(e), record: (e) => (events.push(e), Promise.resolve(true)), flush: () => Promise.resolve(), close: () => Promise.resolve() };
  let answer: () => Promise<SsoIdentity> = () => Promise.reject(new Error('unset'));
  const driver: SsoDriver = { kind: 'github', begin: () => Promise.reject(new Error('no')), complete: () => Promise.reject(new Error('no')), recheck: () => answer() };
  const deleted: string[] = [];
  const saved: UserResource[] = [];
  const key = newSecretKey();
  const renewals = (k = key, recheckIntervalMs = 0) =>
    new SsoRenewals({ store, drivers: { github: driver }, clusterName: 'acme', logger: silentLogger(), audit, now: () => new Date(), key: k, recheckIntervalMs, saveUser: (u) => (saved.push(u), Promise.resolve()), deleteUser: (n) => (deleted.push(n), Promise.resolve()) });
  const who = (name: string, roles = ['dev']): SsoIdentity => ({ username: name, roles, traits: { github_teams: ['devs'] }, subject: `id-${name}`, received: {}, warnings: [], renewal: { access_token: `token-of-${name}` } });
  const userOf = (w: SsoIdentity) => ssoUser(w, 'github', 'gh', new Date(Date.now() + 3600_000), new Date());

  beforeAll(async () => {
    tdb = await createTestDatabase();
    store = await Store.open({ location: { type: 'postgres', connString: tdb.url } });
    await store.putResource('github', 'gh', { kind: 'github', version: 'v3', metadata: { name: 'gh' }, spec: {} });
  });
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });

  it('derives one key per CA secret and cluster, the same on every replica', () => {
    expect(renewalKeyOf('secret-1', 'acme')).toBe(renewalKeyOf('secret-1', 'acme'));
    expect(renewalKeyOf('secret-1', 'acme')).not.toBe(renewalKeyOf('secret-2', 'acme'));
    expect(renewalKeyOf('secret-1', 'acme')).not.toBe(renewalKeyOf('secret-1', 'other'));
    expect(renewalKeyOf('secret-1', 'acme')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('hands the driver the kept secret and updates roles from its answer', async () => {
    const ann = who('ann');
    await renewals().remember(userOf(ann), 'github', 'gh', ann);
    let asked: unknown;
    answer = () => Promise.resolve(who('ann', ['ops']));
    const d = { ...driver, recheck: (input: Parameters<NonNullable<SsoDriver['recheck']>>[0]) => ((asked = input), answer()) };
    const r = new SsoRenewals({ store, drivers: { github: d }, clusterName: 'acme', logger: silentLogger(), audit, now: () => new Date(), key, recheckIntervalMs: 0, saveUser: (u) => (saved.push(u), Promise.resolve()), deleteUser: () => Promise.resolve() });
    const refreshed = await r.recheck(userOf(ann));
    expect(asked).toMatchObject({ subject: 'id-ann', renewal: { access_token: 'token-of-ann' } });
    expect(refreshed.spec.roles).toEqual(['ops']);
    expect(saved.at(-1)?.spec.roles).toEqual(['ops']);
  });

  it('asks the provider at most once per interval', async () => {
    const bo = who('bo');
    await renewals().remember(userOf(bo), 'github', 'gh', bo);
    let calls = 0;
    answer = () => ((calls += 1), Promise.resolve(who('bo')));
    await renewals(key, 60_000).recheck(userOf(bo));
    expect(calls).toBe(0);
    await renewals(key, 0).recheck(userOf(bo));
    expect(calls).toBe(1);
  });

  it('refuses, without ending the user, when the provider is down', async () => {
    const cy = who('cy');
    await renewals().remember(userOf(cy), 'github', 'gh', cy);
    answer = () => Promise.reject(new SsoLoginError('provider unreachable', "GitHub's API did not answer GET /user"));
    await expect(renewals().recheck(userOf(cy))).rejects.toMatchObject({ kind: 'ConnectionProblem', message: expect.stringContaining('github connector "gh"') });
    expect(deleted).not.toContain('cy');
    expect(await getSsoSession(store, 'cy')).toBeDefined();
  });

  it("refuses a sealed secret that is another user's, or sealed under another key", async () => {
    const dee = who('dee');
    const eve = who('eve');
    await renewals().remember(userOf(dee), 'github', 'gh', dee);
    await renewals().remember(userOf(eve), 'github', 'gh', eve);
    // Someone with the database copies dee's sealed token onto eve's row.
    const dees = await getSsoSession(store, 'dee');
    await store.db.updateTable('sso_sessions').set({ sealed: dees!.sealed }).where('username', '=', 'eve').execute();
    answer = () => Promise.resolve(who('eve'));
    await expect(renewals().recheck(userOf(eve))).rejects.toMatchObject({ kind: 'AccessDenied', data: { reason: 'renewal_unreadable' } });
    await expect(renewals(newSecretKey()).recheck(userOf(dee))).rejects.toMatchObject({ kind: 'AccessDenied', data: { reason: 'renewal_unreadable' } });
    expect(deleted).toEqual([]);
  });

  it("ends the user when the provider says no, or answers for another name, and audits why", async () => {
    const fay = who('fay');
    await renewals().remember(userOf(fay), 'github', 'gh', fay);
    answer = () => Promise.reject(new SsoLoginError('token revoked', 'GitHub no longer accepts the login\'s token'));
    await expect(renewals().recheck(userOf(fay))).rejects.toMatchObject({ kind: 'AccessDenied', message: expect.stringMatching(/^github connector "gh" no longer grants fay access: GitHub no longer accepts/) });
    expect(deleted).toContain('fay');
    expect(await getSsoSession(store, 'fay')).toBeUndefined();
    expect(events.at(-1)).toMatchObject({ code: 'T1001W', reason: 'token revoked', renewal: true });

    const gus = who('gus');
    await renewals().remember(userOf(gus), 'github', 'gh', gus);
    answer = () => Promise.resolve(who('mallory'));
    await expect(renewals().recheck(userOf(gus))).rejects.toMatchObject({ kind: 'AccessDenied', data: { sso_reason: 'username changed' } });
    expect(deleted).toContain('gus');
  });

  it('leaves users alone that have nothing to check (local users, logins without a renewal secret)', async () => {
    answer = () => Promise.reject(new Error('must not be asked'));
    const local = { kind: 'user', version: 'v2', metadata: { name: 'hal' }, spec: { roles: ['dev'] } } as UserResource;
    expect(await renewals().recheck(local)).toBe(local);
    const ida = { ...who('ida') };
    delete ida.renewal;
    await renewals().remember(userOf(ida), 'github', 'gh', ida);
    const u = userOf(ida);
    expect(await renewals().recheck(u)).toBe(u);
  });
});
