import { X509Certificate, createPrivateKey, sign } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, splitHostPort, type IdentityFile } from '@keyway/client';
import { generateKeyPair } from '@keyway/pki';
import { encodeRelayHeader, PROXY_V2_SIGNATURE } from '@keyway/tunnel';
import { CertSigner, createCertAuthority } from '../ca/authority.js';
import { failure, joinHost, signUp, start, stop, type Harness } from './attack-harness.js';

// Per-address limits behind a proxy: the proxy's relay vouches for the client's address with a
// signed PROXY v2 header. An attacker who reaches auth's port directly tries to claim other
// addresses with headers of its own making (unsigned, signed by a non-proxy, stale, forged).

const SAME = { kind: 'AccessDenied', message: 'invalid username, password or second factor', data: {} };

/**
 * A stand-in for a proxy's relay: for each connection, writes `header()` to auth, then the
 * client's bytes. The AuthClient dials it as if it were auth.
 */
async function relay(authAddress: string, header: () => Buffer): Promise<{ address: string; close(): void }> {
  const { host, port } = splitHostPort(authAddress);
  const server = net.createServer((client) => {
    const upstream = net.connect({ host, port }, () => {
      upstream.write(header());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, close: () => server.close() };
}

function signedBy(identity: IdentityFile, source: string, o: { now?: number; tamper?: (b: Buffer) => void } = {}): () => Buffer {
  const key = createPrivateKey(identity.privateKeyPem);
  const certDer = new X509Certificate(identity.certPem).raw;
  return () => {
    const header = encodeRelayHeader({
      source: { address: source, port: 40000 },
      destination: { address: '10.0.0.1', port: 3080 },
      certDer,
      sign: (d) => sign('sha256', d, key),
      ...(o.now !== undefined ? { now: o.now } : {}),
    });
    o.tamper?.(header);
    return header;
  };
}

describe('client addresses relayed by a proxy', () => {
  let h: Harness;
  let proxy: IdentityFile;
  let agent: IdentityFile;
  const open: { close(): void }[] = [];
  const clients: AuthClient[] = [];
  const { publicKeyPem } = generateKeyPair();

  async function via(header: () => Buffer): Promise<AuthClient> {
    const r = await relay(h.address, header);
    open.push(r);
    const c = new AuthClient({ address: r.address, caPems: h.caPems, timeoutMs: 5_000 });
    clients.push(c);
    return c;
  }
  const login = (c: AuthClient, user: string) => c.call('login', { user, password: 'wrong password!!', totpCode: '000000', publicKeyPem, ttlSeconds: 0, kubernetesCluster: '' });

  beforeAll(async () => {
    h = await start({
      KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_ADDRESS__BURST: '3',
      KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_ADDRESS__PERIOD: '1h',
      KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_USER__BURST: '1000',
    });
    proxy = (await joinHost(h, 'Proxy')).identity;
    agent = (await joinHost(h, 'Kube')).identity;
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const r of open) r.close();
    await stop(h);
  });

  it('limits each relayed client by its own address, not by the proxy it came through', async () => {
    const a = await via(signedBy(proxy, '203.0.113.7'));
    const b = await via(signedBy(proxy, '2001:db8::9'));
    for (let i = 0; i < 3; i++) expect(await failure(login(a, `a${i}`))).toEqual(SAME);
    expect(await failure(login(a, 'a3'))).toMatchObject({ kind: 'LimitExceeded', message: expect.stringContaining('from this address') });
    // Another client behind the same proxy still has its own tokens.
    expect(await failure(login(b, 'b0'))).toEqual(SAME);
    // An IPv4-mapped IPv6 address is the same client as its IPv4 form.
    const mapped = await via(signedBy(proxy, '::ffff:203.0.113.7'));
    expect(await failure(login(mapped, 'a4'))).toMatchObject({ kind: 'LimitExceeded' });
  });

  it('records the relayed address in the login audit event', async () => {
    const c = await via(signedBy(proxy, '198.51.100.20'));
    await signUp(h, 'audited');
    expect(await failure(login(c, 'audited'))).toEqual(SAME);
    // The audit log is written behind the answer: wait until the event is stored.
    let addresses: unknown[] = [];
    for (let i = 0; i < 100 && addresses.length === 0; i++) {
      const { events } = await h.admin.call('searchEvents', { from: '', to: '', event: 'user.login', user: 'audited', cluster: '', namespace: '', limit: 10, beforeId: '' });
      addresses = events.map((e) => (JSON.parse(e.json) as Record<string, unknown>)['addr.remote']);
      if (addresses.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(addresses).toEqual(['198.51.100.20']);
  });

  const refused: [string, () => () => Buffer][] = [
    ['an unsigned PROXY v2 header', () => () => unsignedHeader('192.0.2.1')],
    ['a header signed by a Kube agent', () => signedBy(agent, '192.0.2.2')],
    ['a header with a stale time', () => signedBy(proxy, '192.0.2.3', { now: Date.now() - 10 * 60_000 })],
    ['a header from the future', () => signedBy(proxy, '192.0.2.4', { now: Date.now() + 10 * 60_000 })],
    // The source address's last byte changed after signing: a proxy's header replayed with another address.
    ['a header whose address was changed after signing', () => signedBy(proxy, '192.0.2.5', { tamper: (b) => (b[19] = 6) })],
    ['a header with a certificate of another cluster', () => signedBy(foreignProxy(), '192.0.2.7')],
    ['a PROXY v1 text header', () => () => Buffer.from('PROXY TCP4 192.0.2.8 10.0.0.1 40000 3080\r\n')],
    ['a PROXY v2 header that claims 60 KiB', () => () => Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xf0, 0x00])])],
  ];
  it.each(refused)('refuses the connection for %s, and the service goes on', async (_name, make) => {
    const c = await via(make());
    const err = await failure(login(c, 'anyone'));
    expect(err.kind).toBe('ConnectionProblem');
    const good = await via(signedBy(proxy, '198.51.100.99'));
    expect(await good.call('ping', {})).toMatchObject({ clusterName: expect.any(String) });
  });

  it('still serves direct clients, limited by their TCP address', async () => {
    expect(await h.anon.call('ping', {})).toMatchObject({ clusterName: expect.any(String) });
    expect(await failure(login(h.anon, 'direct'))).toEqual(SAME);
  });
});

function unsignedHeader(source: string): Buffer {
  const [a, b, c, d] = source.split('.').map(Number) as [number, number, number, number];
  const body = Buffer.from([a, b, c, d, 10, 0, 0, 1, 0x9c, 0x40, 0x0c, 0x08]);
  return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, 0, body.length]), body]);
}

/** A Proxy-looking identity whose certificate no CA of this cluster signed. */
function foreignProxy(): IdentityFile {
  const key = generateKeyPair();
  const other = createCertAuthority({ type: 'host', clusterName: 'other' });
  const { certPem } = new CertSigner({ certPem: other.certPem, privateKey: other.privateKeyPem }).signHostCertificate({
    publicKey: key.publicKeyPem,
    identity: { username: 'proxy-x', roles: ['Proxy'], traits: {}, kubernetesUsers: [], kubernetesGroups: [], clusterName: 'other', mfaVerified: false, systemRoles: ['Proxy'] },
    dnsNames: [],
    ipAddresses: [],
    notAfter: new Date(Date.now() + 3600_000),
  });
  return { privateKeyPem: key.privateKeyPem, certPem, caPems: [] };
}
