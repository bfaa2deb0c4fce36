import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC_MAX_MESSAGE_BYTES } from '@keyway/client';
import { RESOURCE_LIMITS } from '@keyway/resources';
import { AuthClient } from '@keyway/client';
import { LIST_PAGE_MAX, MAX_SESSION_CHUNK_BYTES } from './auth-api.js';
import { failure, joinHost, start, stop, type Harness } from './attack-harness.js';

// Lists that would not fit in one message: sixteen roles near the 1 MiB resource bound are
// 16 MiB together, the gRPC message limit. Each page must fit, and the pages together must
// hold every resource exactly once.

/** A role whose JSON is close to the resource bound (most of it in one label value list). */
function bigRole(name: string) {
  const filler = 'x'.repeat(1000);
  const values = Array.from({ length: Math.floor((RESOURCE_LIMITS.maxResourceBytes - 4096) / 1003) }, () => filler);
  return { kind: 'role', version: 'v7', metadata: { name }, spec: { allow: { kubernetes_labels: { env: values } } } };
}

describe('listing in pages', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await start();
    const roles = Array.from({ length: 17 }, (_, i) => bigRole(`big-${String(i).padStart(2, '0')}`));
    for (const r of roles) await h.admin.call('createResources', { resources: [{ kind: 'role', name: r.metadata.name, json: JSON.stringify(r), revision: '' }], force: false });
  }, 120_000);
  afterAll(() => stop(h));

  it('returns roles worth more than one message, every one once, each page under the message limit', async () => {
    const sizes: number[] = [];
    const names: string[] = [];
    let startKey = '';
    for (let pages = 0; pages < 50; pages++) {
      const page = await h.admin.call('listResources', { kind: 'role', withSecrets: false, limit: 0, startKey });
      sizes.push(page.resources.reduce((n, r) => n + Buffer.byteLength(r.json), 0));
      names.push(...page.resources.map((r) => r.name));
      if (!page.nextKey) break;
      startKey = page.nextKey;
    }
    expect(sizes.length).toBeGreaterThan(1);
    for (const s of sizes) expect(s).toBeLessThan(GRPC_MAX_MESSAGE_BYTES);
    const big = names.filter((n) => n.startsWith('big-'));
    expect(big).toEqual(Array.from({ length: 17 }, (_, i) => `big-${String(i).padStart(2, '0')}`));
    expect(new Set(names).size).toBe(names.length);
    expect(await h.admin.listAllResources('role')).toHaveLength(names.length);
  });

  it('honours the limit and the start key, and caps the limit', async () => {
    const two = await h.admin.call('listResources', { kind: 'role', withSecrets: false, limit: 2, startKey: 'big-05' });
    expect(two.resources.map((r) => r.name)).toEqual(['big-05', 'big-06']);
    expect(two.nextKey).toBe('big-07');
    const huge = await h.admin.call('listResources', { kind: 'lock', withSecrets: false, limit: 2 ** 31 - 1, startKey: '' });
    expect(huge.resources.length).toBeLessThanOrEqual(LIST_PAGE_MAX);
    const negative = await h.admin.call('listResources', { kind: 'role', withSecrets: false, limit: -5, startKey: 'big-16' });
    expect(negative.resources.map((r) => r.name)[0]).toBe('big-16');
  });

  it('still refuses a list to a caller who may not list the kind, whatever the page', async () => {
    expect(await failure(h.anon.call('listResources', { kind: 'role', withSecrets: false, limit: 1, startKey: 'big-03' }))).toMatchObject({ kind: 'AccessDenied' });
  });
});

describe('session recording chunks', () => {
  let h: Harness;
  let proxy: AuthClient;
  const session = { id: '4d6f6e8e-1b2c-4d3e-8f40-5a6b7c8d9e0f', user: 'alice', cluster: 'k', namespace: 'default', pod: 'web', container: '', command: ['sh'], started: new Date().toISOString(), ended: '' };
  const upload = (seq: number, events: string) => proxy.call('uploadSessionChunk', { session, seq, events, ended: '' });

  beforeAll(async () => {
    h = await start();
    proxy = new AuthClient({ address: h.address, identity: (await joinHost(h, 'Proxy')).identity, timeoutMs: 30_000 });
  }, 60_000);
  afterAll(async () => {
    proxy.close();
    await stop(h);
  });

  it('refuses a chunk over the bound or with a line that is not a JSON object, naming the line', async () => {
    expect(await failure(upload(0, 'x'.repeat(MAX_SESSION_CHUNK_BYTES + 1)))).toMatchObject({ kind: 'BadParameter', message: expect.stringContaining('over the 1048576 a chunk may hold') });
    expect(await failure(upload(0, '{"t":1}\nnot json'))).toMatchObject({ message: 'session chunk 0: line 2 is not JSON' });
    expect(await failure(upload(0, '{"t":1}\n[1,2]'))).toMatchObject({ message: 'session chunk 0: line 2 is not a JSON object' });
    expect(await failure(upload(0, '{"t":1}\nnull'))).toMatchObject({ message: 'session chunk 0: line 2 is not a JSON object' });
  });

  it('reads back chunks worth more than a message in pages that each fit', async () => {
    const line = JSON.stringify({ t: 0, type: 'stdout', data: 'z'.repeat(MAX_SESSION_CHUNK_BYTES - 100) });
    for (let seq = 0; seq < 18; seq++) await upload(seq, line);
    let after = -1;
    const seen: number[] = [];
    for (let pages = 0; pages < 40; pages++) {
      const { chunks } = await h.admin.call('getSessionEvents', { sessionId: session.id, afterSeq: after, limit: 1000 });
      if (chunks.length === 0) break;
      expect(chunks.reduce((n, c) => n + c.events.length, 0)).toBeLessThan(GRPC_MAX_MESSAGE_BYTES);
      seen.push(...chunks.map((c) => c.seq));
      after = chunks.at(-1)?.seq ?? after;
    }
    expect(seen).toEqual(Array.from({ length: 18 }, (_, i) => i));
  }, 60_000);
});
