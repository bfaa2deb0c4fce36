import { X509Certificate, createPrivateKey, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, type SystemRole } from '@keyway/pki';
import { encodeRelayHeader, parseRelayHeader, type RelayHeader } from '@keyway/tunnel';
import { CertSigner, createCertAuthority } from '../ca/authority.js';
import { RELAY_HEADER_MAX_SKEW_MS, relayHeaderProblem } from './relay-listener.js';

const hostCa = createCertAuthority({ type: 'host', clusterName: 'acme' });
const caCert = new X509Certificate(hostCa.certPem);
const NOW = Date.now();

function host(systemRoles: SystemRole[], notAfter = new Date(NOW + 3600_000)) {
  const key = generateKeyPair();
  const { certPem } = new CertSigner({ certPem: hostCa.certPem, privateKey: hostCa.privateKeyPem }).signHostCertificate({
    publicKey: key.publicKeyPem,
    identity: { username: 'h1', roles: systemRoles, traits: {}, kubernetesUsers: [], kubernetesGroups: [], clusterName: 'acme', mfaVerified: false, systemRoles },
    dnsNames: [],
    ipAddresses: [],
    notAfter,
  });
  return { certDer: new X509Certificate(certPem).raw, key: createPrivateKey(key.privateKeyPem) };
}

function header(signer: ReturnType<typeof host>, time = NOW): RelayHeader {
  const bytes = encodeRelayHeader({
    source: { address: '203.0.113.1', port: 5000 },
    destination: { address: '10.0.0.1', port: 3080 },
    certDer: signer.certDer,
    sign: (d) => sign('sha256', d, signer.key),
    now: time,
  });
  const r = parseRelayHeader(bytes);
  if (!r.done || !r.header) throw new Error('no header');
  return r.header;
}

describe('relayHeaderProblem', () => {
  const proxy = host(['Proxy']);
  it('believes a proxy that signed just now, within the allowed skew', () => {
    expect(relayHeaderProblem(header(proxy), [caCert], NOW)).toBeUndefined();
    expect(relayHeaderProblem(header(proxy, NOW - RELAY_HEADER_MAX_SKEW_MS), [caCert], NOW)).toBeUndefined();
  });
  it('names why it does not believe a header', () => {
    expect(relayHeaderProblem(header(proxy, NOW - RELAY_HEADER_MAX_SKEW_MS - 1000), [caCert], NOW)).toMatch(/^its time is -121 s from/);
    expect(relayHeaderProblem(header(host(['Kube'])), [caCert], NOW)).toBe("its certificate (h1) is not a proxy's");
    expect(relayHeaderProblem(header(host(['Proxy'], new Date(NOW - 1000))), [caCert], NOW)).toMatch(/^its certificate is refused: certificate expired/);
    const other = new X509Certificate(createCertAuthority({ type: 'host', clusterName: 'other' }).certPem);
    expect(relayHeaderProblem(header(proxy), [other], NOW)).toMatch(/^its certificate is refused: certificate is not signed by/);
    const forged = { ...header(proxy), source: { address: '203.0.113.2', port: 5000 } };
    expect(relayHeaderProblem(forged, [caCert], NOW)).toBe('its signature does not match its certificate');
    expect(relayHeaderProblem({ ...header(proxy), signature: Buffer.from('junk') }, [caCert], NOW)).toBe('its signature does not match its certificate');
    expect(relayHeaderProblem({ ...header(proxy), certDer: Buffer.from('junk') }, [caCert], NOW)).toMatch(/^its certificate is refused/);
  });
});
