import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeAgent } from '@keyway/agent';
import { startStack, type Stack } from '@keyway/auth';
import { KUBE_SNI } from '@keyway/client';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { searchAuditEvents } from '@keyway/store';
import { startTestKubeApiServer, type TestKubeApiServer } from '@keyway/testing';
import { kwctlIn, startTestAgent, waitUntil } from './harness.js';

// Writes whose body ends in a later frame than its last bytes (undici/fetch, and the
// @kubernetes/client-node built on them, send the body's end on its own) must be answered
// with what the API server answered. The API server answers as soon as it has Content-Length
// bytes, so its answer can reach the agent before the end of the body does; the agent used to
// tear the tunnel stream down then, and the proxy reported 503 for a write that happened.

const RESOURCES = `kind: role
version: v7
metadata: {name: writers}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: [writers]
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: ['*']}]
---
kind: user
version: v2
metadata: {name: wren}
spec: {roles: [writers]}
`;

const CONCURRENCY = 10;
const WRITES = 200;

describe('writes with a body that ends after its last bytes', () => {
  let api: TestKubeApiServer;
  let stack: Stack;
  let agent: KubeAgent;
  let dir: string;
  let creds: { cert: string; key: string; ca: string };
  const kwctl = kwctlIn(() => dir);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-body-'));
    api = await startTestKubeApiServer();
    api.setRbac([{ groups: ['writers'], verbs: ['get', 'create', 'patch'], resources: ['pods'], namespaces: ['default'] }]);
    const config = loadConfig({ env: { KEYWAY_DATA_DIR: dir, KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0', KEYWAY_PROXY_LISTEN_ADDR: '127.0.0.1:0' } });
    stack = await startStack(config, silentLogger());
    expect((await kwctl(['create', '-f', '-'], RESOURCES)).code).toBe(0);
    agent = await startTestAgent(stack, { kubeconfig: api.agentKubeconfig, cluster: 'kubernetes', labels: {}, dir, kwctl });
    expect((await kwctl(['auth', 'sign', '--user=wren', '--kube-cluster=kubernetes', '--format=tls', `--out=${join(dir, 'u')}`])).code).toBe(0);
    creds = { cert: readFileSync(join(dir, 'u.crt'), 'utf8'), key: readFileSync(join(dir, 'u.key'), 'utf8'), ca: readFileSync(join(dir, 'u.cas'), 'utf8') };
  }, 90_000);

  afterAll(async () => {
    await agent?.close();
    await stack?.close();
    await api?.close();
  });

  const client = (h2: boolean) =>
    new Client(`https://${stack.proxyAddress as string}`, {
      connect: { ...creds, servername: KUBE_SNI },
      allowH2: h2,
    });

  /** A body whose bytes leave first and whose end follows `endAfterMs` later, as a separate frame. */
  async function* lateEnd(bytes: Buffer, endAfterMs: number): AsyncGenerator<Buffer> {
    yield bytes;
    if (endAfterMs > 0) await sleep(endAfterMs);
  }

  async function send(c: Client, method: 'POST' | 'PATCH', path: string, doc: object, endAfterMs: number): Promise<{ status: number; body: string }> {
    const bytes = Buffer.from(JSON.stringify(doc));
    const res = await c
      .request({
      method,
      path,
      headers: { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json', 'content-length': String(bytes.length) },
      body: Readable.from(lateEnd(bytes, endAfterMs)),
      })
      .catch((err: Error) => err);
    // A transport error (an HTTP/2 reset) is a failure like a wrong status.
    if (res instanceof Error) return { status: 0, body: res.message };
    return { status: res.statusCode, body: await res.body.text().catch((err: Error) => `(body failed: ${err.message})`) };
  }

  const pod = (name: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });

  /** Creates then patches `WRITES / 2` pods each, `CONCURRENCY` at a time; returns every answer that was not the API server's success. */
  async function run(tag: string, h2: boolean, endAfterMs: (i: number) => number): Promise<string[]> {
    const clients = Array.from({ length: CONCURRENCY }, () => client(h2));
    const failures: string[] = [];
    let next = 0;
    await Promise.all(
      clients.map(async (c) => {
        for (let i = next++; i < WRITES / 2; i = next++) {
          const name = `${tag}-${i}`;
          const created = await send(c, 'POST', '/api/v1/namespaces/default/pods', pod(name), endAfterMs(i));
          if (created.status !== 201) failures.push(`create ${name}: ${created.status} ${created.body}`);
          const patched = await send(c, 'PATCH', `/api/v1/namespaces/default/pods/${name}`, { metadata: { labels: { patched: 'yes' } } }, endAfterMs(i));
          if (patched.status !== 200) failures.push(`patch ${name}: ${patched.status} ${patched.body}`);
        }
      }),
    );
    await Promise.all(clients.map((c) => c.close()));
    return failures;
  }

  /** Pods of this run the API server holds with the patch applied. */
  const applied = (tag: string) => api.requests.filter((r) => r.method === 'PATCH' && r.name?.startsWith(`${tag}-`)).length;

  for (const h2 of [false, true]) {
    const proto = h2 ? 'HTTP/2' : 'HTTP/1.1';
    it(`answers every ${proto} write as the API server did when the body ends late`, async () => {
      const tag = h2 ? 'late-h2' : 'late-h1';
      // Every other write ends its body 30 ms after its bytes, the rest at once.
      const failures = await run(tag, h2, (i) => (i % 2 === 0 ? 30 : 0));
      expect(failures).toEqual([]);
      expect(applied(tag)).toBe(WRITES / 2);
    }, 120_000);
  }

  it('records the API server’s status in the audit log for those writes', async () => {
    const events = async () =>
      (await searchAuditEvents(stack.auth.store, { event: 'kube.request', user: 'wren', limit: 10_000 })).filter((e) => e.data['verb'] === 'POST' || e.data['verb'] === 'PATCH');
    await waitUntil(async () => (await events()).length >= 2 * WRITES, `${2 * WRITES} audit events`, 60_000);
    const codes = (await events()).map((e) => Number(e.data['response_code']));
    expect(codes.filter((c) => c !== 200 && c !== 201)).toEqual([]);
  }, 90_000);
});
