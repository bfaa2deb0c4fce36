import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@keyway/pki';
import { totpCode } from '../users/secrets.js';
import { PASSWORD, failure, signUp, start, stop, type Harness } from './attack-harness.js';

// An anonymous attacker at the auth service's gRPC port, trying to learn which users exist and
// which passwords are right from the answers and their timing, and to guess faster than allowed.

const SAME = { kind: 'AccessDenied', message: 'invalid username, password or second factor', data: {} };

describe('failed logins all look the same', () => {
  let h: Harness;
  const { publicKeyPem } = generateKeyPair();
  const login = (user: string, password: string, code: string) =>
    h.anon.call('login', { user, password, totpCode: code, publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' });

  beforeAll(async () => {
    // Limits out of the way: these tests are about the answers, not the rate.
    h = await start({ KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_ADDRESS__BURST: '100000', KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_USER__BURST: '100000' });
  }, 60_000);
  afterAll(() => stop(h));

  it('answers unknown user, wrong password, wrong or reused code, lock, lockout and unfinished signup alike', async () => {
    const alice = await signUp(h, 'alice');
    const lockedSecret = await signUp(h, 'locked-user');
    await h.admin.call('createLock', { user: 'locked-user', role: '', message: 'incident 7', ttlSeconds: 0 });
    const outSecret = await signUp(h, 'lockout-user');
    await h.admin.call('createUser', { name: 'unfinished', roles: ['access'], traits: {}, tokenTtlSeconds: 3600 });

    h.advance(30_000);
    const good = totpCode(alice, h.now());
    await login('alice', PASSWORD, good);
    const answers: Record<string, unknown> = {
      unknownUser: await failure(login('nobody-here', PASSWORD, good)),
      wrongPassword: await failure(login('alice', 'wrong password!!', totpCode(alice, h.now()))),
      rightPasswordWrongCode: await failure(login('alice', PASSWORD, '000000')),
      rightPasswordNoCode: await failure(login('alice', PASSWORD, '')),
      rightPasswordReusedCode: await failure(login('alice', PASSWORD, good)),
      lockedUser: await failure(login('locked-user', PASSWORD, totpCode(lockedSecret, h.now()))),
      unfinishedSignup: await failure(login('unfinished', PASSWORD, '000000')),
    };
    for (let i = 0; i < 5; i++) await failure(login('lockout-user', 'wrong password!!', '000000'));
    h.advance(30_000);
    answers['lockedOutRightCredentials'] = await failure(login('lockout-user', PASSWORD, totpCode(outSecret, h.now())));
    for (const [name, answer] of Object.entries(answers)) expect(answer, name).toEqual(SAME);
  });

  it('takes comparable time for each kind of failure (measured, reported, not asserted)', async () => {
    const secret = await signUp(h, 'timing');
    const outSecret = await signUp(h, 'timing-out');
    for (let i = 0; i < 5; i++) await failure(login('timing-out', 'wrong password!!', '000000'));
    const cases: Record<string, () => Promise<unknown>> = {
      unknownUser: () => login('nobody-timing', 'wrong password!!', '000000'),
      wrongPassword: () => login('timing', 'wrong password!!', '000000'),
      rightPasswordWrongCode: () => login('timing', PASSWORD, '000000'),
      lockedOutRightPassword: () => login('timing-out', PASSWORD, totpCode(outSecret, h.now())),
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const times: Record<string, number[]> = {};
    // Interleaved, so load on the machine hits every case alike; a good login after each round
    // resets the failure count, so "timing" is never locked out while it is measured.
    for (let round = 0; round < 15; round++) {
      for (const [name, run] of Object.entries(cases)) {
        const t0 = performance.now();
        expect(await failure(run())).toEqual(SAME);
        (times[name] ??= []).push(performance.now() - t0);
      }
      h.advance(30_000);
      await login('timing', PASSWORD, totpCode(secret, h.now()));
    }
    const report = Object.fromEntries(
      Object.entries(times).map(([k, v]) => [k, { median: +median(v).toFixed(1), min: +Math.min(...v).toFixed(1), max: +Math.max(...v).toFixed(1) }]),
    );
    console.log(`login failure timings (ms, 15 rounds): ${JSON.stringify(report)}`);
  });
});

describe('rate limits of anonymous calls', () => {
  let h: Harness;
  const { publicKeyPem } = generateKeyPair();

  beforeAll(async () => {
    h = await start({
      KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_ADDRESS__BURST: '6',
      KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_ADDRESS__PERIOD: '2s',
      KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_USER__BURST: '3',
      KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_USER__PERIOD: '10s',
    });
  }, 60_000);
  afterAll(() => stop(h));

  it('limits logins per user, then per address, with RESOURCE_EXHAUSTED and a retry-after, before checking the password', async () => {
    const login = (user: string, password = 'wrong password!!') =>
      h.anon.call('login', { user, password, totpCode: '000000', publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' });
    for (let i = 0; i < 3; i++) expect(await failure(login('victim'))).toEqual(SAME);
    const perUser = await failure(login('victim', PASSWORD));
    expect(perUser).toMatchObject({ kind: 'LimitExceeded', message: 'too many login attempts for this user; retry after 10s', data: { retryAfterSeconds: 10 } });
    // An unknown name is limited the same way, so the limit says nothing about who exists.
    await failure(login('ghost'));
    expect(await failure(login('ghost'))).toMatchObject(SAME);
    // Six per address: the seventh attempt of any user from here is refused.
    const perAddress = await failure(login('someone-else'));
    expect(perAddress).toMatchObject({ kind: 'LimitExceeded', message: 'too many login attempts from this address; retry after 2s' });
    h.advance(2_000);
    expect(await failure(login('someone-else'))).toEqual(SAME);
    h.advance(20_000);
    expect(await failure(login('victim'))).toEqual(SAME);
  });

  it('limits join attempts, user token look-ups and signup completion', async () => {
    h.advance(60_000);
    const join = () =>
      h.anon.call('join', { token: 'f'.repeat(32), publicKeyPem, role: 'Kube', hostId: '', nodeName: '', dnsNames: [], ipAddresses: [] });
    for (let i = 0; i < 3; i++) expect(await failure(join())).toMatchObject({ kind: 'AccessDenied' });
    expect(await failure(join())).toMatchObject({ kind: 'LimitExceeded', message: expect.stringMatching(/^too many join attempts with this token; retry after \d+s$/) });

    h.advance(60_000);
    const guess = (i: number) => h.anon.call('getUserToken', { token: i.toString(16).padStart(48, '0') });
    for (let i = 0; i < 6; i++) expect(await failure(guess(i))).toMatchObject({ kind: 'NotFound' });
    expect(await failure(guess(99))).toMatchObject({ kind: 'LimitExceeded', message: expect.stringMatching(/^too many user token look-ups from this address/) });

    h.advance(60_000);
    const complete = (i: number) => h.anon.call('completeUserToken', { token: i.toString(16).padStart(48, '0'), password: PASSWORD, totpCode: '000000' });
    for (let i = 0; i < 6; i++) expect(await failure(complete(i))).toMatchObject({ kind: 'NotFound' });
    expect(await failure(complete(99))).toMatchObject({ kind: 'LimitExceeded', message: expect.stringMatching(/^too many signup or reset attempts from this address/) });
  });
});
