import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '@keyway/auth';
import { loadConfig } from '@keyway/config';
import { silentLogger } from '@keyway/log';
import { createTestCa, type TestCa } from '@keyway/testing';
import { waitUntil } from './harness.js';

// proxy_service.https_keypairs: a browser reaching the proxy by its public name gets the
// publicly trusted certificate on the web routes; clients dialling an address, and the kube
// route, keep the cluster's own certificate. A key that does not belong to its certificate is
// refused at start, naming the files.

function get(port: number, o: { servername?: string; ca?: string }): Promise<{ status: number; issuer: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: '/v1/webapi/ping', agent: false, ...(o.servername ? { servername: o.servername } : {}), ...(o.ca ? { ca: o.ca } : { rejectUnauthorized: false }) },
      (res) => {
        const issuer = (res.socket as TLSSocket).getPeerCertificate().issuer?.CN ?? '';
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, issuer: String(issuer) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('proxy_service.https_keypairs', () => {
  let dir: string;
  let ca: TestCa;
  let stack: Stack;
  const config = (extra: string) => {
    const name = Math.random().toString(36).slice(2);
    const file = join(dir, `keyway-${name}.yaml`);
    writeFileSync(file, `cluster_name: acme\nauth_service: {listen_addr: "127.0.0.1:0"}\nproxy_service:\n  listen_addr: "127.0.0.1:0"\n  public_addr: ["keyway.test:443"]\n${extra}`);
    return loadConfig({ file, env: { KEYWAY_DATA_DIR: join(dir, `data-${name}`) } });
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-https-'));
    ca = createTestCa('public-test-ca');
    const pair = ca.issueServer({ dnsNames: ['keyway.test'] });
    writeFileSync(join(dir, 'web.crt'), pair.certPem);
    writeFileSync(join(dir, 'web.key'), pair.keyPem);
    writeFileSync(join(dir, 'other.key'), ca.issueServer({ dnsNames: ['x.test'] }).keyPem);
    stack = await startStack(config(`  https_keypairs: [{cert_file: ${join(dir, 'web.crt')}, key_file: ${join(dir, 'web.key')}}]\n`), silentLogger());
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('serves the public certificate to a client asking for the public name, verified by its CA', async () => {
    const port = Number((stack.proxyAddress as string).split(':')[1]);
    expect(await get(port, { servername: 'keyway.test', ca: ca.certPem })).toEqual({ status: 200, issuer: 'public-test-ca' });
  });

  it('serves the cluster’s own certificate to a client dialling an address, and on the kube route', async () => {
    const port = Number((stack.proxyAddress as string).split(':')[1]);
    const byAddress = await get(port, {});
    expect(byAddress.issuer).not.toBe('public-test-ca');
    expect(byAddress.issuer).toBe('acme');
    const kube = await get(port, { servername: 'kube.keyway.test' });
    expect(kube.issuer).toBe('acme');
  });

  it('refuses at start a key that is not its certificate’s, naming both files', async () => {
    await expect(startStack(config(`  https_keypairs: [{cert_file: ${join(dir, 'web.crt')}, key_file: ${join(dir, 'other.key')}}]\n`), silentLogger())).rejects.toThrow(
      `https_keypairs: ${join(dir, 'other.key')} is not the key of ${join(dir, 'web.crt')}`,
    );
    await expect(startStack(config(`  https_keypairs: [{cert_file: ${join(dir, 'missing.crt')}, key_file: ${join(dir, 'web.key')}}]\n`), silentLogger())).rejects.toThrow(/cannot read .*missing\.crt: ENOENT/);
  });

  it('serves a certificate renewed on disk without a restart (https_keypairs_reload_interval), and keeps the old one while the files do not fit', async () => {
    const files = { cert: join(dir, 'reload.crt'), key: join(dir, 'reload.key') };
    const first = ca.issueServer({ dnsNames: ['keyway.test'] });
    writeFileSync(files.cert, first.certPem);
    writeFileSync(files.key, first.keyPem);
    const reloading = await startStack(config(`  https_keypairs: [{cert_file: ${files.cert}, key_file: ${files.key}}]\n  https_keypairs_reload_interval: 100ms\n`), silentLogger());
    try {
      const port = Number((reloading.proxyAddress as string).split(':')[1]);
      expect(await get(port, { servername: 'keyway.test', ca: ca.certPem })).toEqual({ status: 200, issuer: 'public-test-ca' });
      // cert-manager renews it, from another issuer.
      const renewedCa = createTestCa('renewed-test-ca');
      const renewed = renewedCa.issueServer({ dnsNames: ['keyway.test'] });
      writeFileSync(files.cert, renewed.certPem);
      writeFileSync(files.key, renewed.keyPem);
      await waitUntil(async () => (await get(port, { servername: 'keyway.test' })).issuer === 'renewed-test-ca', 'the renewed certificate to be served');
      expect(await get(port, { servername: 'keyway.test', ca: renewedCa.certPem })).toEqual({ status: 200, issuer: 'renewed-test-ca' });
      // A half-written renewal (a key that is not the certificate's): the served one stays.
      writeFileSync(files.key, ca.issueServer({ dnsNames: ['x.test'] }).keyPem);
      await new Promise((r) => setTimeout(r, 400));
      expect(await get(port, { servername: 'keyway.test', ca: renewedCa.certPem })).toEqual({ status: 200, issuer: 'renewed-test-ca' });
    } finally {
      await reloading.close();
    }
  });
});
