import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AuthClient} from '@keyway/client';
import { loadOrJoin, type IdentityFile, type IdentityStore } from '@keyway/client';
import type { WatchEvent } from '@keyway/proto';
import { silentLogger } from '@keyway/log';
import { decodeIdentity, generateKeyPair } from '@keyway/pki';
import { HOST_READABLE } from './authorization.js';
import { callerFromCertificate } from './caller.js';
import { PASSWORD, clientAs, failure, joinHost as join, signUp, start, stop, type Harness } from './attack-harness.js';
import { totpCode } from '../users/secrets.js';

// Host identities as attackers: a proxy's and an agent's certificates (and a user's) asking
// the auth service for what their job does not need, through every method that returns it;
// and joining hosts trying to take another host's id.

const GITHUB = {
  kind: 'github',
  version: 'v3',
  metadata: { name: 'gh' },
  spec: {
    client_id: 'abc',
    client_secret: 'gh-client-s3cret',
    redirect_url: 'https://proxy.example.com/v1/webapi/github/callback',
    teams_to_roles: [{ organization: 'acme', team: 'devs', roles: ['access'] }],
  },
};
const KUBECONFIG_SECRET = Buffer.from('apiVersion: v1\nusers: [{name: u, user: {token: kube-bearer-s3cret}}]\n').toString('base64');
const KUBE_CLUSTER = { kind: 'kube_cluster', version: 'v3', metadata: { name: 'prod', labels: { env: 'prod' } }, spec: { kubeconfig: KUBECONFIG_SECRET } };
const SECRETS = ['gh-client-s3cret', KUBECONFIG_SECRET, '$argon2'];

/**
 * Asks for a watch as the holder of `identity`, through the same caller check the gRPC server
 * makes. (On the wire a refused watch does not end with its status yet: issue 10 class 1.)
 */
async function watchRefusal(h: Harness, identity: IdentityFile, kinds: string[]) {
  const caller = callerFromCertificate(new X509Certificate(identity.certPem).raw, { userCa: h.auth.cas.user.cert, hostCa: h.auth.cas.host.cert });
  return failure(h.auth.api.watch(caller, kinds, () => undefined));
}

/** Opens a watch and collects events until `init` (resolves) or an error (rejects). */
function watch(c: AuthClient, kinds: string[]) {
  const events: WatchEvent[] = [];
  let resolveInit!: () => void;
  let rejectInit!: (e: unknown) => void;
  const init = new Promise<void>((res, rej) => ((resolveInit = res), (rejectInit = rej)));
  const handle = c.watch(
    kinds,
    (e) => {
      events.push(e);
      if (e.type === 'init') resolveInit();
    },
    (err) => (err ? rejectInit(err) : resolveInit()),
  );
  return { events, init, cancel: () => handle.cancel() };
}

describe('host identities get only what their job needs', () => {
  let h: Harness;
  let proxy: AuthClient;
  let agent: AuthClient;
  let user: AuthClient;
  const ids: Record<'proxy' | 'agent' | 'user', IdentityFile> = {} as never;

  beforeAll(async () => {
    h = await start();
    await h.admin.call('createResources', {
      resources: [GITHUB, KUBE_CLUSTER].map((r) => ({ kind: r.kind, name: '', revision: '', json: JSON.stringify(r) })),
      force: false,
    });
    const p = await join(h, 'Proxy');
    ids.proxy = p.identity;
    proxy = clientAs(h, p.identity);
    await proxy.call('heartbeat', { kind: 'proxy', hostId: p.hostId, hostname: 'p', addr: '', version: '1', ttlSeconds: 600, kubeClusters: [] });
    ids.agent = (await join(h, 'Kube')).identity;
    agent = clientAs(h, ids.agent);
    // A user with the access role (no API rules), logged in with password and TOTP.
    const secret = await signUp(h, 'mallory');
    h.advance(30_000);
    const key = generateKeyPair();
    const certs = await h.anon.call('login', { user: 'mallory', password: PASSWORD, totpCode: totpCode(secret, h.now()), publicKeyPem: key.publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' });
    ids.user = { privateKeyPem: key.privateKeyPem, certPem: certs.certPem, caPems: h.caPems };
    user = clientAs(h, ids.user);
  }, 60_000);
  afterAll(async () => {
    for (const c of [proxy, agent, user]) c?.close();
    await stop(h);
  });

  it('a proxy cannot read join tokens or connectors by any method', async () => {
    for (const kind of ['token', 'github', 'oidc', 'saml']) {
      expect(await watchRefusal(h, ids.proxy, [kind]), `watch ${kind}`).toMatchObject({ kind: 'AccessDenied' });
      // A forbidden kind among allowed ones refuses the whole watch.
      expect(await watchRefusal(h, ids.proxy, ['role', kind]), `watch role+${kind}`).toMatchObject({ kind: 'AccessDenied' });
      expect(await failure(proxy.call('listResources', { kind, withSecrets: false, limit: 0, startKey: '' })), `list ${kind}`).toMatchObject({ kind: 'AccessDenied' });
      expect(await failure(proxy.call('getResource', { kind, name: 'gh', withSecrets: false })), `get ${kind}`).toMatchObject({ kind: 'AccessDenied' });
    }
    expect(await failure(proxy.call('searchEvents', { from: '', to: '', event: '', user: '', cluster: '', namespace: '', limit: 10, beforeId: '' }))).toMatchObject({
      kind: 'AccessDenied',
    });
    expect(await failure(proxy.call('listSessions', { limit: 10 }))).toMatchObject({ kind: 'AccessDenied' });
  });

  it('a proxy reads what it authorizes with, the same by get, list and watch, and never a secret', async () => {
    const allowed = [...HOST_READABLE.Proxy];
    const w = watch(proxy, allowed);
    await w.init;
    const kinds = new Set(w.events.filter((e) => e.type === 'put').map((e) => e.resource?.kind));
    for (const k of ['role', 'user', 'kube_cluster', 'proxy']) expect(kinds).toContain(k);
    // Changes after the snapshot are redacted too.
    await h.admin.call('createResources', { resources: [{ kind: 'kube_cluster', name: '', revision: '', json: JSON.stringify({ ...KUBE_CLUSTER, metadata: { name: 'prod2' } }) }], force: false });
    await h.admin.call('createResources', { resources: [{ kind: 'github', name: '', revision: '', json: JSON.stringify({ ...GITHUB, metadata: { name: 'gh2' } }) }], force: false });
    await expect.poll(() => w.events.some((e) => e.resource?.name === 'prod2')).toBe(true);
    w.cancel();
    const seen = JSON.stringify(w.events);
    for (const s of SECRETS) expect(seen).not.toContain(s);
    expect(seen).not.toContain('gh2');
    const cluster = w.events.find((e) => e.resource?.name === 'prod2');
    expect(JSON.parse(cluster?.resource?.json ?? '{}')).toMatchObject({ spec: { kubeconfig: '' } });

    for (const kind of ['role', 'user', 'lock', 'kube_cluster']) {
      const listed = await proxy.call('listResources', { kind, withSecrets: false, limit: 0, startKey: '' });
      for (const s of SECRETS) expect(JSON.stringify(listed)).not.toContain(s);
      expect(await failure(proxy.call('listResources', { kind, withSecrets: true, limit: 0, startKey: '' })), `list ${kind} --with-secrets`).toMatchObject({ kind: 'AccessDenied' });
    }
    expect(JSON.parse((await proxy.call('getResource', { kind: 'kube_cluster', name: 'prod', withSecrets: false })).json)).toMatchObject({ spec: { kubeconfig: '' } });
    expect(await failure(proxy.call('getResource', { kind: 'kube_cluster', name: 'prod', withSecrets: true }))).toMatchObject({ kind: 'AccessDenied' });
    // Users as the proxy sees them: no password hash, no TOTP secret.
    const users = await proxy.call('listResources', { kind: 'user', withSecrets: false, limit: 0, startKey: '' });
    const mallory = users.resources.find((r) => r.name === 'mallory');
    expect(Object.keys(JSON.parse(mallory?.json ?? '{}')).sort()).toEqual(['kind', 'metadata', 'spec', 'version']);
    expect(mallory?.json).not.toMatch(/password|totp/i);
  });

  it('an agent reads nothing: it only heartbeats and renews', async () => {
    for (const kind of ['role', 'user', 'lock', 'kube_cluster', 'proxy', 'kube_server', 'token', 'github']) {
      expect(await watchRefusal(h, ids.agent, [kind]), `watch ${kind}`).toMatchObject({ kind: 'AccessDenied' });
    }
    for (const kind of ['role', 'user', 'lock', 'kube_cluster', 'token', 'github']) {
      expect(await failure(agent.call('listResources', { kind, withSecrets: false, limit: 0, startKey: '' }))).toMatchObject({ kind: 'AccessDenied' });
      expect(await failure(agent.call('getResource', { kind, name: 'prod', withSecrets: false }))).toMatchObject({ kind: 'AccessDenied' });
    }
    expect(await failure(agent.call('listSessions', { limit: 10 }))).toMatchObject({ kind: 'AccessDenied' });
    const renewed = await agent.call('renewHostCert', { publicKeyPem: generateKeyPair().publicKeyPem, dnsNames: [], ipAddresses: [] });
    expect(renewed.hostId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a user without API rules gets nothing, and no user can watch', async () => {
    expect(await watchRefusal(h, ids.user, ['role'])).toMatchObject({ kind: 'AccessDenied' });
    for (const kind of ['token', 'github', 'kube_cluster', 'role']) {
      expect(await failure(user.call('listResources', { kind, withSecrets: false, limit: 0, startKey: '' }))).toMatchObject({ kind: 'AccessDenied' });
      expect(await failure(user.call('getResource', { kind, name: 'gh', withSecrets: false }))).toMatchObject({ kind: 'AccessDenied' });
    }
  });

  it('the admin identity still reads secrets when it asks, and a watch never carries them', async () => {
    expect((await h.admin.call('getResource', { kind: 'github', name: 'gh', withSecrets: true })).json).toContain('gh-client-s3cret');
    expect((await h.admin.call('getResource', { kind: 'github', name: 'gh', withSecrets: false })).json).not.toContain('gh-client-s3cret');
    const w = watch(h.admin, ['github', 'kube_cluster', 'token']);
    await w.init;
    w.cancel();
    expect(w.events.length).toBeGreaterThan(2);
    for (const s of SECRETS) expect(JSON.stringify(w.events)).not.toContain(s);
  });
});

describe('host ids are chosen by the auth service', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await start();
  }, 60_000);
  afterAll(() => stop(h));

  it("a joining agent cannot take another host's id, nor heartbeat as it", async () => {
    const victim = await join(h, 'Kube');
    const victimClient = clientAs(h, victim.identity);
    await victimClient.call('heartbeat', {
      kind: 'kube_server', hostId: victim.hostId, hostname: 'victim', addr: '', version: '1', ttlSeconds: 60, kubeClusters: [{ name: 'prod', labels: { env: 'prod' } }],
    });
    const attacker = await join(h, 'Kube', { hostId: victim.hostId });
    expect(attacker.hostId).not.toBe(victim.hostId);
    expect(decodeIdentity(attacker.identity.certPem).username).toBe(attacker.hostId);
    const attackerClient = clientAs(h, attacker.identity);
    expect(
      await failure(
        attackerClient.call('heartbeat', { kind: 'kube_server', hostId: victim.hostId, hostname: 'evil', addr: '', version: '1', ttlSeconds: 60, kubeClusters: [{ name: 'prod', labels: { env: 'dev' } }] }),
      ),
    ).toMatchObject({ kind: 'AccessDenied' });
    // Another role's or a user's certificate proves nothing either.
    const proxy = await join(h, 'Proxy');
    expect((await join(h, 'Kube', { hostId: proxy.hostId, as: proxy.identity })).hostId).not.toBe(proxy.hostId);
    expect((await join(h, 'Kube', { hostId: victim.hostId, as: proxy.identity })).hostId).not.toBe(victim.hostId);
    const listed = await h.admin.call('listResources', { kind: 'kube_cluster', withSecrets: false, limit: 0, startKey: '' });
    expect(JSON.parse(listed.resources.find((r) => r.name === 'prod')?.json ?? '{}')).toMatchObject({ metadata: { labels: { env: 'prod' } } });
    for (const c of [victimClient, attackerClient]) c.close();
  });

  it('a proxy may announce the clusters it serves itself under its own id, never under another host', async () => {
    const p = await join(h, 'Proxy');
    const pc = clientAs(h, p.identity);
    const victim = await join(h, 'Kube');
    try {
      const beat = { kind: 'kube_server', hostname: 'proxy', addr: '', version: '1', ttlSeconds: 60, kubeClusters: [{ name: 'served-by-proxy', labels: {} }] };
      await pc.call('heartbeat', { ...beat, hostId: p.hostId });
      const listed = await h.admin.call('listResources', { kind: 'kube_cluster', withSecrets: false, limit: 0, startKey: '' });
      expect(listed.resources.map((r) => r.name)).toContain('served-by-proxy');
      expect(await failure(pc.call('heartbeat', { ...beat, hostId: victim.hostId }))).toMatchObject({ kind: 'AccessDenied' });
    } finally {
      pc.close();
    }
  });

  it('a host that re-joins with its previous certificate keeps its id', async () => {
    const first = await join(h, 'Kube');
    const again = await join(h, 'Kube', { as: first.identity, hostId: first.hostId });
    expect(again.hostId).toBe(first.hostId);
    expect(decodeIdentity(again.identity.certPem)).toMatchObject({ username: first.hostId, systemRoles: ['Kube'] });
  });

  it('loadOrJoin re-joins with stored credentials about to expire under the same id, and with none under a new one', async () => {
    const first = await join(h, 'Kube');
    let saved: IdentityFile | undefined;
    const store = (initial: IdentityFile | undefined): IdentityStore => ({
      location: 'memory',
      load: () => Promise.resolve(initial),
      save: (f) => {
        saved = f;
        return Promise.resolve();
      },
    });
    // Stored credentials that expire within the minute: the agent joins again, presenting them.
    // Lives longer than the week the clock below jumps ahead (the store checks expiry in-process too).
    const token = (await h.admin.call('createToken', { roles: ['kube'], ttlSeconds: 30 * 86400, name: '', labels: {} })).name;
    // The agent's clock says its certificate expires in 30 s (the server checks with its own).
    const expires = decodeIdentity(first.identity.certPem).expires.getTime();
    const clock = vi.spyOn(Date, 'now').mockReturnValue(expires - 30_000);
    let creds;
    try {
      creds = await loadOrJoin({ authAddr: h.address, token, role: 'Kube', store: store(first.identity), caPins: [], logger: silentLogger() });
    } finally {
      clock.mockRestore();
    }
    expect(creds.identity.username).toBe(first.hostId);
    expect(saved && decodeIdentity(saved.certPem).username).toBe(first.hostId);
    const fresh = await loadOrJoin({ authAddr: h.address, token, role: 'Kube', store: store(undefined), caPins: [], logger: silentLogger() });
    expect(fresh.identity.username).not.toBe(first.hostId);
  });
});
