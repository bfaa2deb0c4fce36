import { randomUUID } from 'node:crypto';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Client, Metadata, credentials, status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_SERVER_NAME, GRPC_MAX_MESSAGE_BYTES, type AuthClient } from '@keyway/client';
import { KeywayError, grpcStatusOf } from '@keyway/errors';
import { generateKeyPair } from '@keyway/pki';
import type { WatchEvent } from '@keyway/proto';
import { RESOURCE_LIMITS } from '@keyway/resources';
import { startAttackStack, type AttackStack } from './attack-stack.js';

// Issue 10, class 1: no input crashes or stalls the auth process (nor the proxy in the same
// process). Each case here killed `keyway start` or hung the call before its fix. A throw that
// escapes to the event loop is what ends a real process: the trap records any.

const escaped: unknown[] = [];
const trap = (err: unknown) => escaped.push(err);
process.on('uncaughtException', trap);
process.on('unhandledRejection', trap);

let s: AttackStack;
beforeAll(async () => {
  s = await startAttackStack();
}, 90_000);
afterAll(async () => {
  process.off('uncaughtException', trap);
  process.off('unhandledRejection', trap);
  await s?.close();
});
afterEach(async () => {
  expect(escaped).toEqual([]);
  // The process serves: Ping answers, directly and through the proxy's public port.
  await s.client(undefined, { viaProxy: true }).call('ping', {});
  await s.client().call('ping', {});
});

async function failure(p: Promise<unknown>): Promise<KeywayError> {
  const r = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(r instanceof KeywayError)) throw new Error(`expected a typed failure, got ${String(r)}`);
  return r;
}

const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
const roleJson = (name: string, groups: string[]) => JSON.stringify({ kind: 'role', version: 'v7', metadata: { name }, spec: { allow: { kubernetes_groups: groups } } });
const resource = (kind: string, json: string) => ({ kind, name: '', revision: '', json });

describe('errors of any content reach the caller', () => {
  it('an anonymous caller through the proxy gets a status for an error whose data is non-ASCII', async () => {
    for (const anon of [s.client(undefined, { viaProxy: true }), s.client()]) {
      for (const kind of ['rôle', '角色', '👾', 'a\u0000b', '\uD800']) {
        const err = await failure(anon.call('getResource', { kind, name: 'x', withSecrets: false }));
        expect(['BadParameter', 'AccessDenied']).toContain(err.kind);
      }
    }
  });

  it('an error message that repeats a long unicode value arrives whole', async () => {
    const admin = s.client(s.admin);
    const err = await failure(admin.call('getResource', { kind: `é${'ü'.repeat(1000)}`, name: 'x', withSecrets: false }));
    expect(err.kind).toBe('BadParameter');
    expect(err.message).toMatch(/^unknown resource kind "éü+/);
  });
});

describe('request strings are bounded before they reach the store', () => {
  it('an anonymous login with a 2 MB or NUL user name is refused and the audit pipeline keeps flowing', async () => {
    const anon = s.client(undefined, { viaProxy: true });
    const { publicKeyPem } = generateKeyPair();
    for (const user of ['x'.repeat(2 * 1024 * 1024), 'é'.repeat(70_000), 'a\u0000b']) {
      const err = await failure(anon.call('login', { user, password: 'p', totpCode: '1', publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' }));
      expect(err.kind).toBe('BadParameter');
      expect(err.message).toMatch(/^user (is longer than the limit of 2048 bytes|contains a NUL character)$/);
    }
    // Before the bound, the 2 MB name went into an audit event whose indexed user column
    // Postgres refused: the writer retried forever and every audit search hung.
    await anon.call('login', { user: 'nobody', password: 'p', totpCode: '1', publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' }).catch(() => undefined);
    const found = await s.client(s.admin).call('searchEvents', { from: '', to: '', event: 'user.login', user: 'nobody', cluster: '', namespace: '', limit: 5, beforeId: '' });
    expect(found.events.length).toBeGreaterThan(0);
  });

  it('a proxy identity emitting malformed audit events is refused, and long or NUL search fields cannot stop the log', async () => {
    const proxy = s.client(s.proxyHost);
    const admin = s.client(s.admin);
    const event = (fields: Record<string, unknown>) => ({ uid: randomUUID(), event: 'kube.request', code: 'T3009I', time: new Date().toISOString(), ...fields });
    // Stored: the search columns keep a bounded prefix without NUL (an index entry over ~2.7 KiB,
    // or a NUL in a text column, failed the batch for ever and held every later event).
    const long = event({ user: `mallory${'x'.repeat(10_000)}`, resource_namespace: 'dev\u0000'.repeat(2_000), kubernetes_cluster: 'é'.repeat(5_000) });
    await proxy.call('emitAuditEvents', { events: [JSON.stringify(long)] });
    for (const [bad, why] of [
      [event({ time: 'not a time' }), /audit event 0: time must be an ISO 8601 time/],
      [event({ uid: 'a\u0000b' }), /audit event 0: uid must be/],
      [event({ event: 'x'.repeat(100) }), /audit event 0: event must be a name/],
      [event({ padding: 'x'.repeat(300 * 1024) }), /audit event 0 is over 256 KiB/],
      [[1, 2, 3], /audit event 0: an audit event is a JSON object/],
    ] as [unknown, RegExp][]) {
      const err = await failure(proxy.call('emitAuditEvents', { events: [JSON.stringify(bad)] }));
      expect(err.kind).toBe('BadParameter');
      expect(err.message).toMatch(why);
    }
    const found = await admin.call('searchEvents', { from: '', to: '', event: 'kube.request', user: '', cluster: '', namespace: '', limit: 50, beforeId: '' });
    expect(found.events.map((e) => (JSON.parse(e.json) as { uid: string }).uid)).toContain(long.uid);
    const verified = await admin.call('verifyAuditChain', { since: '' });
    expect(verified.ok, verified.reason).toBe(true);
  });

  it('a resource with a NUL character is refused, not an INTERNAL store failure', async () => {
    const err = await failure(s.client(s.admin).call('createResources', { resources: [resource('role', roleJson('nul', ['a\u0000b']))], force: false }));
    expect(err.kind).toBe('BadParameter');
    expect(err.message).toMatch(/contains a NUL character/);
  });
});

describe('bytes that are not a request', () => {
  /** A call with bytes of our choosing, not what the generated encoder would write. */
  function raw(address: string, method: string, bytes: Buffer): Promise<{ code: number; details: string }> {
    const client = new Client(address, credentials.createSsl(Buffer.from(s.admin.caPems.join(''))), {
      'grpc.ssl_target_name_override': AUTH_SERVER_NAME,
      'grpc.default_authority': AUTH_SERVER_NAME,
    });
    return new Promise((resolve) => {
      client.makeUnaryRequest(`/keyway.auth.v1.AuthService/${method}`, (b: Buffer) => b, (b: Buffer) => b, bytes, new Metadata(), { deadline: Date.now() + 20_000 }, (err) => {
        client.close();
        resolve({ code: err?.code ?? status.OK, details: err?.details ?? '' });
      });
    });
  }

  it('are answered INVALID_ARGUMENT, not INTERNAL: an int64 past 2^53, an unknown wire type, a truncated field', async () => {
    const w = new BinaryWriter();
    w.uint32(10).string('bob');
    w.uint32(16).int64('9223372036854775807');
    const cases: [string, Buffer][] = [
      ['ResetUser', Buffer.from(w.finish())],
      ['Login', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])],
      ['CreateResources', Buffer.from([0x0a, 0x80, 0x01])],
      ['Join', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])],
    ];
    for (const address of [s.stack.authAddress, s.stack.proxyAddress as string]) {
      for (const [method, bytes] of cases) {
        const r = await raw(address, method, bytes);
        expect(r.code, `${method}: ${r.details}`).toBe(status.INVALID_ARGUMENT);
        expect(r.details).toMatch(/not a valid protobuf message/);
      }
    }
  });
});

describe('documents are bounded and authorized before they are parsed', () => {
  it('a deeply nested document from anyone is answered, never parsed by a caller without rights', async () => {
    const doc = resource('role', nested(100_000));
    for (const c of [s.client(undefined, { viaProxy: true }), s.client(), s.client(s.user), s.client(s.proxyHost), s.client(s.kubeHost)]) {
      expect((await failure(c.call('createResources', { resources: [doc], force: false }))).kind).toBe('AccessDenied');
      expect((await failure(c.call('createResources', { resources: [resource('', nested(100_000))], force: true }))).kind).toBe('AccessDenied');
    }
    const admin = await failure(s.client(s.admin).call('createResources', { resources: [doc], force: false }));
    expect(admin.kind).toBe('BadParameter');
    expect(admin.message).toMatch(/nested more than 64 levels/);
  });

  it('a document that parses with thousands of problems is answered with a bounded error', async () => {
    const many = Array.from({ length: 5000 }, (_, i) => `kind: widget${i}\n`).join('---\n');
    const err = await failure(s.client(s.admin).call('createResources', { resources: [resource('role', many)], force: false }));
    expect(err.kind).toBe('BadParameter');
    expect(err.message.length).toBeLessThan(5000);
  });

  it('a document declared as one kind that is another is refused', async () => {
    const err = await failure(s.client(s.admin).call('createResources', { resources: [resource('lock', roleJson('sneaky', ['x']))], force: false }));
    expect(err.message).toMatch(/declared as "lock" but is a role/);
  });
});

describe('what is written always fits a watch message', () => {
  it('the server and every client use the same message limit, far above the resource bound', () => {
    expect(GRPC_MAX_MESSAGE_BYTES).toBeGreaterThan(4 * RESOURCE_LIMITS.maxResourceBytes);
  });

  it('refuses a 10 MB role and a 6 MB heartbeat label, and the proxy watch keeps delivering', async () => {
    const events: WatchEvent[] = [];
    let ended: { err?: KeywayError } | undefined;
    const watcher = s.client(s.proxyHost).watch(['role', 'lock', 'kube_server'], (e) => events.push(e), (err) => (ended = { ...(err ? { err } : {}) }));
    try {
      await waitFor(() => events.some((e) => e.type === 'init'), 'the watch snapshot');
      const admin = s.client(s.admin);
      const big = await failure(admin.call('createResources', { resources: [resource('role', roleJson('huge', ['x'.repeat(10 * 1024 * 1024)]))], force: false }));
      expect(big.kind).toBe('BadParameter');
      expect(big.message).toMatch(/resources\[0\]\.json is longer than the limit of 2097152 bytes/);
      const many = await failure(admin.call('createResources', { resources: [resource('role', roleJson('wide', Array.from({ length: 60_000 }, (_, i) => `group-${i}-${'y'.repeat(10)}`)))], force: false }));
      expect(many.message).toMatch(/more than the limit of 1048576 bytes/);

      const agent = s.client(s.kubeHost);
      const heartbeat = (labels: Record<string, string>) =>
        agent.call('heartbeat', { kind: 'kube_server', hostId: s.kubeHost.hostId, hostname: 'agent', addr: '', version: '0', ttlSeconds: 60, kubeClusters: [{ name: 'dev', labels }] });
      const label = await failure(heartbeat({ env: 'x'.repeat(6 * 1024 * 1024) }));
      expect(label.kind).toBe('BadParameter');
      expect(label.message).toMatch(/kubeClusters\[0\]\.labels\.env is longer than the limit of 2048 bytes/);
      const over = await failure(heartbeat({ env: 'é'.repeat(600) }));
      expect(over.message).toMatch(/kube_clusters\[0\]\.labels\.env: label value is longer than the limit of 1024 bytes/);
      const lots = await failure(heartbeat(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, 'v']))));
      expect(lots.message).toMatch(/has 1000 labels, more than the limit of 128/);
      await heartbeat({ env: 'dev' });

      const lock = await admin.call('createLock', { user: 'mallory', role: '', message: 'after the attempts', ttlSeconds: 0 });
      await waitFor(() => events.some((e) => e.resource?.kind === 'lock' && e.resource.name === lock.name), 'the lock on the watch');
      await waitFor(() => events.some((e) => e.resource?.kind === 'kube_server' && e.resource.json.includes('"env":"dev"')), 'the heartbeat on the watch');
      expect(ended).toBeUndefined();
      expect(events.some((e) => (e.resource?.json.length ?? 0) > RESOURCE_LIMITS.maxResourceBytes)).toBe(false);
    } finally {
      watcher.cancel();
    }
  });
});

describe('a refused stream ends with its status', () => {
  it.each([
    ['anonymous, direct', () => s.client()],
    ['anonymous, through the proxy', () => s.client(undefined, { viaProxy: true })],
    ['a user', () => s.client(s.user)],
    ['an agent', () => s.client(s.kubeHost)],
  ] as [string, () => AuthClient][])('WatchEvents as %s is refused with PERMISSION_DENIED', async (_who, make) => {
    const end = await new Promise<KeywayError | undefined>((resolve) => {
      make().watch(['role'], () => undefined, resolve);
    });
    expect(end?.kind).toBe('AccessDenied');
    expect(grpcStatusOf(end)).toBe(status.PERMISSION_DENIED);
  });

  it('WatchEvents of an unknown kind ends with INVALID_ARGUMENT', async () => {
    const end = await new Promise<KeywayError | undefined>((resolve) => {
      s.client(s.proxyHost).watch(['wïdget'], () => undefined, resolve);
    });
    expect(end?.kind).toBe('BadParameter');
  });
});

async function waitFor(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
