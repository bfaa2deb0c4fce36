import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@keyway/testing';
import { deleteSsoSession, getSsoSession, markSsoSeen, putSsoRequest, putSsoSession, sweepSso, takeSsoRequest } from './sso.js';
import { Store } from './store.js';

describe('SSO login requests and single-use ids', () => {
  let tdb: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    tdb = await createTestDatabase();
    store = await Store.open({ location: { type: 'postgres', connString: tdb.url } });
  });
  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });
  const soon = () => new Date(Date.now() + 60_000);

  it('hands a request to exactly one of many concurrent callbacks', async () => {
    await putSsoRequest(store, 'r1', 'oidc', { keep: { verifier: 'v' } }, soon());
    const takes = await Promise.all(Array.from({ length: 10 }, () => takeSsoRequest(store, 'r1', 'oidc')));
    expect(takes.filter(Boolean)).toEqual([{ keep: { verifier: 'v' } }]);
  });

  it('gives nothing for an expired request, or one of another kind, and removes it either way', async () => {
    await putSsoRequest(store, 'r2', 'saml', {}, new Date(Date.now() - 1000));
    expect(await takeSsoRequest(store, 'r2', 'saml')).toBeUndefined();
    await putSsoRequest(store, 'r3', 'github', {}, soon());
    expect(await takeSsoRequest(store, 'r3', 'oidc')).toBeUndefined();
    expect(await takeSsoRequest(store, 'r3', 'github')).toBeUndefined();
  });

  it('keeps one renewal session per user: replaced by the next login, gone when expired or deleted', async () => {
    const base = { kind: 'oidc', connector: 'okta', subject: 's1', checkedAt: new Date(), expires: soon() };
    await putSsoSession(store, { ...base, username: 'ann', sealed: 'first' });
    await putSsoSession(store, { ...base, username: 'ann', sealed: 'second', kind: 'github', connector: 'gh' });
    expect(await getSsoSession(store, 'ann')).toMatchObject({ username: 'ann', kind: 'github', connector: 'gh', sealed: 'second' });
    await putSsoSession(store, { ...base, username: 'old', sealed: 'x', expires: new Date(Date.now() - 1000) });
    expect(await getSsoSession(store, 'old')).toBeUndefined();
    await deleteSsoSession(store, 'ann');
    expect(await getSsoSession(store, 'ann')).toBeUndefined();
  });

  it('says an id was seen the second time, across concurrent callers, until it expires', async () => {
    const firsts = await Promise.all(Array.from({ length: 8 }, () => markSsoSeen(store, 'saml:a1', soon())));
    expect(firsts.filter((seen) => !seen)).toHaveLength(1);
    expect(await markSsoSeen(store, 'saml:a1', soon())).toBe(true);
    await markSsoSeen(store, 'saml:old', new Date(Date.now() - 1000));
    // An expired mark no longer counts (the assertion itself is refused as expired by then).
    expect(await markSsoSeen(store, 'saml:old', soon())).toBe(false);
  });

  it('sweeps what has expired', async () => {
    await putSsoRequest(store, 'gone', 'oidc', {}, new Date(Date.now() - 1000));
    await markSsoSeen(store, 'gone-id', new Date(Date.now() - 1000));
    expect(await sweepSso(store)).toBeGreaterThanOrEqual(2);
  });
});
