import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthClient } from '@keyway/client';
import { AccessDeniedError } from '@keyway/errors';
import { silentLogger } from '@keyway/log';
import { SCIM_BODY_MAX, bearerToken, handleScimRoute } from './scim-routes.js';

// The proxy's half of SCIM: it carries the request to auth (here a stand-in that records what
// it was handed) and bounds what it reads; it decides nothing.

type Sent = { token: string; method: string; path: string; query: string; body: string; remoteIp: string };

describe('SCIM routes on the proxy', () => {
  const sent: Sent[] = [];
  let reply: (r: Sent) => Promise<{ status: number; body: string }> = async () => ({ status: 200, body: '{}' });
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    const client = {
      call: async (method: string, r: Sent) => {
        expect(method).toBe('scimRequest');
        sent.push(r);
        return reply(r);
      },
      close: () => undefined,
    } as unknown as AuthClient;
    server = http.createServer((req, res) => {
      if (!handleScimRoute({ authClient: () => client, logger: silentLogger() }, req, res, '192.0.2.7')) {
        res.writeHead(404);
        res.end('not scim');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const request = (method: string, path: string, o: { headers?: Record<string, string | number>; body?: string | Buffer } = {}) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, headers: o.headers ?? {} }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      });
      req.on('error', reject);
      req.end(o.body);
    });

  it('hands method, path, query, body, bearer token and address to auth, and its answer back as SCIM JSON', async () => {
    reply = async () => ({ status: 201, body: JSON.stringify({ id: 'ada', meta: { location: '/scim/v2/Users/ada' } }) });
    const r = await request('POST', '/scim/v2/Users?x=1', { headers: { authorization: 'Bearer s3cret', 'content-type': 'application/scim+json' }, body: '{"userName":"ada"}' });
    expect(r.status).toBe(201);
    expect(r.headers['content-type']).toBe('application/scim+json');
    expect(r.headers.location).toBe('/scim/v2/Users/ada');
    expect(sent.at(-1)).toEqual({ token: 's3cret', method: 'POST', path: '/Users', query: 'x=1', body: '{"userName":"ada"}', remoteIp: '192.0.2.7' });
    reply = async () => ({ status: 204, body: '' });
    const del = await request('DELETE', '/scim/v2/Users/ada%40x', { headers: { authorization: 'bearer t' } });
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    expect(sent.at(-1)).toMatchObject({ token: 't', path: '/Users/ada%40x', body: '' });
  });

  it('leaves other paths alone', async () => {
    expect((await request('GET', '/scim/v20/Users')).text).toBe('not scim');
    expect((await request('GET', '/v1/webapi/ping')).text).toBe('not scim');
  });

  it('refuses an oversized or non-UTF-8 body before auth sees it', async () => {
    const before = sent.length;
    // Declared too large: answered from the header, nothing read.
    const declared = await request('PATCH', '/scim/v2/Users/ada', { headers: { 'content-length': SCIM_BODY_MAX + 1 }, body: 'x' });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.text)).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '413' });
    expect(declared.headers.connection).toBe('close');
    // Streamed without a length: counted as it arrives.
    const chunked = await request('PATCH', '/scim/v2/Users/ada', { headers: { 'transfer-encoding': 'chunked' }, body: 'x'.repeat(SCIM_BODY_MAX + 10) });
    expect(chunked.status).toBe(413);
    const binary = await request('PUT', '/scim/v2/Users/ada', { body: Buffer.from([0x7b, 0xc3, 0x28, 0x7d]) });
    expect(binary.status).toBe(400);
    expect(JSON.parse(binary.text).detail).toBe('the request body is not UTF-8');
    expect(sent.length).toBe(before);
  });

  it("passes no token when the header is missing, malformed or huge, and turns auth's refusals into SCIM errors", async () => {
    reply = async () => {
      throw new AccessDeniedError('host may not relay SCIM requests');
    };
    const r = await request('GET', '/scim/v2/Users', { headers: { authorization: `Bearer ${'a'.repeat(2000)}` } });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.text)).toEqual({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '403', detail: 'host may not relay SCIM requests' });
    expect(sent.at(-1)?.token).toBe('');
    reply = async () => {
      throw new Error('secret internals');
    };
    const internal = await request('GET', '/scim/v2/Users');
    expect(internal.status).toBe(500);
    expect(internal.text).not.toContain('secret');
    expect(bearerToken(undefined)).toBe('');
    expect(bearerToken('Basic abc')).toBe('');
    expect(bearerToken('Bearer a b')).toBe('');
    expect(bearerToken('Bearer  tok ')).toBe('tok');
  });
});
