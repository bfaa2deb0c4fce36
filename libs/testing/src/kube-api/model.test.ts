/** The API server's pure parts: request attributes, storage, selectors, printing, the fake shell. */
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseRequestInfo } from './server.js';
import { resourceByName, type ResourceDef } from './resources.js';
import { parseLabelSelector } from './selectors.js';
import { FakeShell, tokenize, type ExecIo } from './shell.js';
import { ObjectStore } from './store.js';
import { humanDuration, wantsTable } from './table.js';

const q = (s = '') => new URLSearchParams(s);

describe('parseRequestInfo', () => {
  it('derives verb, namespace, resource, name and subresource like kube', () => {
    expect(parseRequestInfo('GET', '/api/v1/namespaces/default/pods', q())).toMatchObject({ verb: 'list', namespace: 'default', resource: 'pods' });
    expect(parseRequestInfo('GET', '/api/v1/namespaces/default/pods', q('watch=1'))).toMatchObject({ verb: 'watch' });
    expect(parseRequestInfo('GET', '/api/v1/namespaces/default/pods', q('fieldSelector=metadata.name%3Dp'))).toMatchObject({ verb: 'list', name: 'p' });
    expect(parseRequestInfo('POST', '/api/v1/namespaces/ns/pods/p/exec', q())).toMatchObject({ verb: 'create', resource: 'pods', name: 'p', subresource: 'exec' });
    expect(parseRequestInfo('DELETE', '/apis/apps/v1/namespaces/ns/deployments', q())).toMatchObject({ verb: 'deletecollection', apiGroup: 'apps', resource: 'deployments' });
    expect(parseRequestInfo('GET', '/api/v1/namespaces/team', q())).toMatchObject({ verb: 'get', resource: 'namespaces', name: 'team', namespace: 'team' });
    expect(parseRequestInfo('GET', '/api/v1/namespaces/team/status', q())).toMatchObject({ resource: 'namespaces', name: 'team', subresource: 'status' });
    expect(parseRequestInfo('GET', '/apis', q())).toMatchObject({ resourceRequest: false, verb: 'get' });
  });
});

describe('ObjectStore', () => {
  const cm = resourceByName('configmaps') as ResourceDef;
  const ns = resourceByName('namespaces') as ResourceDef;
  const fresh = () => {
    const s = new ObjectStore(5);
    s.create(ns, { metadata: { name: 'default' } });
    return s;
  };

  it('defaults metadata, bumps resourceVersion, and checks it on update', () => {
    const s = fresh();
    const a = s.create(cm, { metadata: { generateName: 'cfg-' } }, 'default');
    expect(a.metadata.name).toMatch(/^cfg-[0-9a-f]{5}$/);
    expect(a).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'default' } });
    const b = s.update(cm, { ...a, data: { x: '1' } });
    expect(Number(b.metadata.resourceVersion)).toBeGreaterThan(Number(a.metadata.resourceVersion));
    expect(() => s.update(cm, { ...a, data: { x: '2' } })).toThrow(/the object has been modified/);
    expect(() => s.create(cm, { metadata: { name: 'x' } }, 'missing')).toThrow('namespaces "missing" not found');
  });

  it('pages with continue tokens and filters with selectors', () => {
    const s = fresh();
    for (let i = 0; i < 5; i++) s.create(cm, { metadata: { name: `c${i}`, labels: { even: String(i % 2 === 0) } } }, 'default');
    const p1 = s.list(cm, { namespace: 'default', limit: 2 });
    expect([...p1.items].map((o) => o.metadata.name)).toEqual(['c0', 'c1']);
    expect(p1.remainingItemCount).toBe(3);
    const p2 = s.list(cm, { namespace: 'default', limit: 2, continueToken: p1.continueToken });
    expect([...p2.items].map((o) => o.metadata.name)).toEqual(['c2', 'c3']);
    const even = s.list(cm, { namespace: 'default', labelSelector: parseLabelSelector('even=true') });
    expect([...even.items].map((o) => o.metadata.name)).toEqual(['c0', 'c2', 'c4']);
    const notIn = s.list(cm, { namespace: 'default', labelSelector: parseLabelSelector('even notin (true)') });
    expect([...notIn.items].map((o) => o.metadata.name)).toEqual(['c1', 'c3']);
  });

  it('replays events since a resourceVersion, and answers 410 once they are compacted', () => {
    const s = fresh();
    const start = Number(s.resourceVersion);
    s.create(cm, { metadata: { name: 'a' } }, 'default');
    s.delete(cm, 'default', 'a');
    expect(s.eventsSince(start).map((e) => e.type)).toEqual(['ADDED', 'DELETED']);
    for (let i = 0; i < 10; i++) s.create(cm, { metadata: { name: `n${i}` } }, 'default');
    expect(() => s.eventsSince(start)).toThrow(/too old resource version/);
  });
});

describe('printing', () => {
  it('formats ages like kubectl', () => {
    expect(humanDuration(5_000)).toBe('5s');
    expect(humanDuration(150_000)).toBe('2m30s');
    expect(humanDuration(3 * 3600_000 + 60_000)).toBe('3h1m');
    expect(humanDuration(50 * 3600_000)).toBe('2d2h');
  });

  it('recognises kubectl’s Table Accept header', () => {
    expect(wantsTable('application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json')).toBe(true);
    expect(wantsTable('application/json, */*')).toBe(false);
  });
});

describe('fake shell', () => {
  const run = async (argv: string[], stdin?: string) => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (d: Buffer) => out.push(d));
    stderr.on('data', (d: Buffer) => err.push(d));
    const io: ExecIo = { stdin: stdin === undefined ? null : PassThrough.from([Buffer.from(stdin)]), stdout, stderr, tty: false, resize: new EventEmitter(), signal: new AbortController().signal };
    const code = await new FakeShell().run(argv, io, { namespace: 'ns', pod: 'p', container: 'c', command: argv, kind: 'exec', user: { username: 'u', groups: [] } });
    return { code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() };
  };

  it('tokenizes quotes and operators', () => {
    expect(tokenize(`echo 'a b' "c \\"d\\"" e\\ f; exit 3 && x || y`)).toEqual(['echo', 'a b', 'c "d"', 'e f', ';', 'exit', '3', '&&', 'x', '||', 'y']);
  });

  it('runs lists with exit codes and redirections', async () => {
    expect(await run(['sh', '-c', 'echo one; false && echo no || echo two; echo err >&2; exit 4'])).toEqual({ code: 4, out: 'one\ntwo\n', err: 'err\n' });
    expect(await run(['sh', '-c', 'nope'])).toMatchObject({ code: 127, err: 'sh: nope: not found\n' });
    expect(await run(['cat'], 'piped')).toMatchObject({ code: 0, out: 'piped' });
    expect(await run(['wc', '-l'], 'a\nb\n')).toMatchObject({ out: '2\n' });
    expect((await run(['head', '-c', '100000', '/dev/urandom'])).out.length).toBeGreaterThan(0);
    await expect(run(['nope'])).rejects.toThrow(/executable file not found/);
  });
});
