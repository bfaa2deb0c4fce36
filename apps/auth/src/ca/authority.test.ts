import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import tls from 'node:tls';
import { BadParameterError } from '@keyway/errors';
import { decodeIdentity, generateKeyPair, parseCertificate, verifyCertificate, type IdentityClaims } from '@keyway/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertSigner, createCertAuthority } from './authority.js';

const HOUR = 3600_000;

const alice: IdentityClaims = {
  username: 'alice',
  roles: ['access', 'kube-dev'],
  traits: { logins: ['alice'], kubernetes_groups: ['devs'] },
  kubernetesCluster: 'prod',
  kubernetesUsers: ['alice'],
  kubernetesGroups: ['devs'],
  clusterName: 'acme',
  loginIp: '10.0.0.9',
  mfaVerified: true,
  systemRoles: [],
};

const proxyIdentity: IdentityClaims = {
  username: 'proxy-1',
  roles: ['Proxy'],
  traits: {},
  kubernetesUsers: [],
  kubernetesGroups: [],
  clusterName: 'acme',
  mfaVerified: false,
  systemRoles: ['Proxy'],
};

describe('createCertAuthority', () => {
  it('creates a self-signed P-256 CA valid for 10 years', () => {
    const now = new Date('2025-03-01T00:00:00Z');
    const ca = createCertAuthority({ type: 'user', clusterName: 'acme', now });
    const x509 = new X509Certificate(ca.certPem);
    expect(x509.ca).toBe(true);
    expect(x509.subject.split('\n')).toEqual(['O=keyway user CA', 'CN=acme']);
    expect(x509.issuer).toBe(x509.subject);
    expect(x509.verify(x509.publicKey)).toBe(true);
    expect(x509.checkIssued(x509)).toBe(true);
    expect(x509.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(new Date(x509.validTo).toISOString()).toBe('2035-03-01T00:00:00.000Z');
    expect(new Date(x509.validFrom).toISOString()).toBe('2025-02-28T23:59:00.000Z');
    expect(createPublicKey(ca.privateKeyPem).equals(x509.publicKey)).toBe(true);
    expect(x509.keyUsage).toBeUndefined(); // node lists EKU only; KU is checked through TLS below
    expect(() => createCertAuthority({ type: 'ssh' as 'user', clusterName: 'acme' })).toThrow(BadParameterError);
  });
});

describe('CertSigner', () => {
  const userCa = createCertAuthority({ type: 'user', clusterName: 'acme' });
  const hostCa = createCertAuthority({ type: 'host', clusterName: 'acme' });
  const userSigner = new CertSigner({ certPem: userCa.certPem, privateKey: userCa.privateKeyPem });
  const hostSigner = new CertSigner({ certPem: hostCa.certPem, privateKey: hostCa.privateKeyPem });
  const userCaCert = new X509Certificate(userCa.certPem);
  const hostCaCert = new X509Certificate(hostCa.certPem);

  it('issues user certificates that decode and verify against the user CA', () => {
    const key = generateKeyPair();
    const notAfter = new Date(Math.floor(Date.now() / 1000) * 1000 + 12 * HOUR);
    const cert = userSigner.signUserCertificate({ publicKey: key.publicKeyPem, identity: alice, notAfter });
    const x509 = new X509Certificate(cert.certPem);
    expect(x509.verify(userCaCert.publicKey)).toBe(true);
    expect(x509.checkIssued(userCaCert)).toBe(true);
    expect(x509.raw.equals(cert.certDer)).toBe(true);
    expect(x509.serialNumber).toBe(cert.serialNumber);
    expect(x509.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(x509.publicKey.equals(createPublicKey(key.publicKeyPem))).toBe(true);
    expect(Date.now() - new Date(x509.validFrom).getTime()).toBeGreaterThanOrEqual(59_000);

    const id = verifyCertificate(cert.certPem, [userCaCert]);
    expect(id).toMatchObject({ ...alice, expires: notAfter, serialNumber: cert.serialNumber });
    expect(decodeIdentity(cert.certDer)).toEqual(id);
    expect(() => verifyCertificate(cert.certPem, [hostCaCert])).toThrow('not signed by the host CA of cluster "acme"');
  });

  it('takes a pre-parsed KeyObject and an explicit NotBefore', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const notBefore = new Date('2030-01-01T00:00:00Z');
    const cert = userSigner.signUserCertificate({
      publicKey,
      identity: alice,
      notBefore,
      notAfter: new Date('2030-01-01T12:00:00Z'),
    });
    expect(parseCertificate(cert.certDer).notBefore).toEqual(notBefore);
  });

  it('gives every certificate a distinct positive 16-byte serial', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const serials = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const cert = userSigner.signUserCertificate({ publicKey, identity: alice, notAfter: new Date(Date.now() + HOUR) });
      serials.add(cert.serialNumber);
      expect(cert.serialNumber.length).toBeLessThanOrEqual(32);
    }
    expect(serials.size).toBe(300);
  });

  it('issues host certificates with SAN and both EKUs', () => {
    const key = generateKeyPair();
    const cert = hostSigner.signHostCertificate({
      publicKey: key.publicKeyPem,
      identity: proxyIdentity,
      dnsNames: ['proxy.keyway.test'],
      ipAddresses: ['127.0.0.1'],
      notAfter: new Date(Date.now() + HOUR),
    });
    const x509 = new X509Certificate(cert.certPem);
    expect(x509.verify(hostCaCert.publicKey)).toBe(true);
    expect(x509.subjectAltName).toBe('DNS:proxy.keyway.test, IP Address:127.0.0.1');
    expect(x509.keyUsage?.sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(verifyCertificate(x509, [hostCaCert]).systemRoles).toEqual(['Proxy']);
    // A client-only host (e.g. an agent or the admin identity) needs no SAN.
    const agent = hostSigner.signHostCertificate({
      publicKey: key.publicKeyPem,
      identity: { ...proxyIdentity, username: 'agent-1', roles: ['Kube'], systemRoles: ['Kube'] },
      dnsNames: [],
      ipAddresses: [],
      notAfter: new Date(Date.now() + HOUR),
    });
    expect(new X509Certificate(agent.certPem).subjectAltName).toBeUndefined();
  });

  it('refuses bad requests', () => {
    const key = generateKeyPair();
    const ok = { publicKey: key.publicKeyPem, identity: alice, notAfter: new Date(Date.now() + HOUR) };
    expect(() => userSigner.signUserCertificate({ ...ok, publicKey: key.privateKeyPem })).toThrow(BadParameterError);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => userSigner.signUserCertificate({ ...ok, publicKey: privateKey })).toThrow('public key');
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    expect(() => userSigner.signUserCertificate({ ...ok, publicKey: weak })).toThrow('at least 2048 bits');
    expect(() => userSigner.signUserCertificate({ ...ok, notAfter: new Date(Date.now() - HOUR) })).toThrow('after its start');
    expect(() => userSigner.signUserCertificate({ ...ok, notAfter: new Date('2099-01-01T00:00:00Z') })).toThrow(
      'outlive its CA',
    );
    expect(() => userSigner.signUserCertificate({ ...ok, identity: proxyIdentity })).toThrow('system roles');
    expect(() =>
      hostSigner.signHostCertificate({ ...ok, dnsNames: [], ipAddresses: [] }),
    ).toThrow('at least one system role');
    expect(() => userSigner.signUserCertificate({ ...ok, identity: { ...alice, username: 'a\nb' } })).toThrow(
      BadParameterError,
    );
  });

  it('refuses a CA key that does not match the certificate', () => {
    const other = createCertAuthority({ type: 'user', clusterName: 'acme' });
    expect(() => new CertSigner({ certPem: userCa.certPem, privateKey: other.privateKeyPem })).toThrow('does not match');
    const leaf = userSigner.signUserCertificate({
      publicKey: generateKeyPair().publicKeyPem,
      identity: alice,
      notAfter: new Date(Date.now() + HOUR),
    });
    expect(() => new CertSigner({ certPem: leaf.certPem, privateKey: userCa.privateKeyPem })).toThrow('CA:true');
  });
});

describe('TLS with issued certificates', () => {
  const userCa = createCertAuthority({ type: 'user', clusterName: 'acme' });
  const hostCa = createCertAuthority({ type: 'host', clusterName: 'acme' });
  const userSigner = new CertSigner({ certPem: userCa.certPem, privateKey: userCa.privateKeyPem });
  const hostSigner = new CertSigner({ certPem: hostCa.certPem, privateKey: hostCa.privateKeyPem });
  const serverKey = generateKeyPair();
  const clientKey = generateKeyPair();
  const serverCert = hostSigner.signHostCertificate({
    publicKey: serverKey.publicKeyPem,
    identity: proxyIdentity,
    dnsNames: ['proxy.keyway.test'],
    ipAddresses: ['127.0.0.1'],
    notAfter: new Date(Date.now() + HOUR),
  });
  const clientCert = userSigner.signUserCertificate({
    publicKey: clientKey.publicKeyPem,
    identity: alice,
    notAfter: new Date(Date.now() + HOUR),
  });
  let server: tls.Server;
  let port = 0;

  beforeAll(async () => {
    server = tls.createServer(
      {
        key: serverKey.privateKeyPem,
        cert: serverCert.certPem,
        ca: [userCa.certPem],
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        // The handshake already checked chain and EKU; the identity comes from the certificate.
        const id = decodeIdentity(socket.getPeerCertificate(true).raw);
        socket.end(`hello ${id.username} (${id.roles.join(',')})`);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function talk(opts: tls.ConnectionOptions): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: true, ...opts });
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (data += d));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
  }

  const client = { ca: [hostCa.certPem], key: clientKey.privateKeyPem, cert: clientCert.certPem };

  it('completes mutual TLS by DNS name (SNI) and by IP', async () => {
    expect(await talk({ ...client, servername: 'proxy.keyway.test' })).toBe('hello alice (access,kube-dev)');
    expect(await talk({ ...client })).toBe('hello alice (access,kube-dev)');
  });

  it('refuses a server name the certificate does not carry', async () => {
    await expect(talk({ ...client, servername: 'other.keyway.test' })).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it('refuses a client certificate from the wrong CA', async () => {
    const wrong = hostSigner.signHostCertificate({
      publicKey: clientKey.publicKeyPem,
      identity: { ...proxyIdentity, username: 'mallory' },
      dnsNames: [],
      ipAddresses: [],
      notAfter: new Date(Date.now() + HOUR),
    });
    // Under TLS 1.3 node's server drops an unauthorized client after the handshake without an
    // alert, so the client sees a close rather than an error: it must never get an answer.
    const reply = await talk({ ...client, cert: wrong.certPem }).catch((err: Error) => `error: ${err.message}`);
    expect(reply).not.toContain('hello');
    // Without a client certificate at all the server refuses too.
    const anonymous = await talk({ ca: client.ca }).catch((err: Error) => `error: ${err.message}`);
    expect(anonymous).not.toContain('hello');
  });

  it('refuses a server certificate from a CA the client does not trust', async () => {
    await expect(talk({ ...client, ca: [userCa.certPem] })).rejects.toMatchObject({
      code: expect.stringMatching(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/),
    });
  });
});

// kubectl is Go: its crypto/x509 is stricter than OpenSSL about DER, so this guards the
// certificates' interoperability with client-go. Skipped where kubectl is not installed.
const kubectl = (process.env['PATH'] ?? '')
  .split(delimiter)
  .filter(Boolean)
  .map((d) => join(d, 'kubectl'))
  .find((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

describe.skipIf(!kubectl)('kubectl (Go crypto/x509) with issued certificates', () => {
  it('verifies the host certificate and presents the user certificate', async () => {
    const userCa = createCertAuthority({ type: 'user', clusterName: 'acme' });
    const hostCa = createCertAuthority({ type: 'host', clusterName: 'acme' });
    const serverKey = generateKeyPair();
    const clientKey = generateKeyPair();
    const hostCert = new CertSigner({ certPem: hostCa.certPem, privateKey: hostCa.privateKeyPem }).signHostCertificate({
      publicKey: serverKey.publicKeyPem,
      identity: proxyIdentity,
      dnsNames: ['kube.keyway.test'],
      ipAddresses: ['127.0.0.1'],
      notAfter: new Date(Date.now() + HOUR),
    });
    const userCert = new CertSigner({ certPem: userCa.certPem, privateKey: userCa.privateKeyPem }).signUserCertificate({
      publicKey: clientKey.publicKeyPem,
      identity: { ...alice, username: 'Zoë' },
      notAfter: new Date(Date.now() + HOUR),
    });
    const dir = mkdtempSync(join(tmpdir(), 'keyway-ca-'));
    const server = https.createServer(
      { key: serverKey.privateKeyPem, cert: hostCert.certPem, ca: userCa.certPem, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const id = decodeIdentity((req.socket as tls.TLSSocket).getPeerCertificate(true).raw);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ major: '1', minor: '30', gitVersion: 'v1.30.0', platform: `user=${id.username}` }));
      },
    );
    try {
      writeFileSync(join(dir, 'ca.pem'), hostCa.certPem);
      writeFileSync(join(dir, 'cert.pem'), userCert.certPem);
      writeFileSync(join(dir, 'key.pem'), clientKey.privateKeyPem, { mode: 0o600 });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      const run = (extra: string[]): Promise<string> =>
        new Promise((resolve, reject) => {
          execFile(
            kubectl as string,
            [
              'version',
              '-o',
              'json',
              `--server=https://127.0.0.1:${port}`,
              `--certificate-authority=${join(dir, 'ca.pem')}`,
              `--client-certificate=${join(dir, 'cert.pem')}`,
              `--client-key=${join(dir, 'key.pem')}`,
              ...extra,
            ],
            { encoding: 'utf8', timeout: 20_000, env: { ...process.env, KUBECONFIG: join(dir, 'none') } },
            (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)),
          );
        });
      const byIp = JSON.parse(await run([])) as { serverVersion: { platform: string } };
      expect(byIp.serverVersion.platform).toBe('user=Zoë');
      const byName = JSON.parse(await run(['--tls-server-name=kube.keyway.test'])) as { serverVersion: { platform: string } };
      expect(byName.serverVersion.platform).toBe('user=Zoë');
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
