import { X509Certificate, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import type net from 'node:net';
import type { HostCredentials } from '@keyway/client';
import { encodeRelayHeader } from '@keyway/tunnel';

/**
 * Writes the signed header the auth relay sends ahead of a client's bytes, so auth's rate
 * limits and audit see the client's address, not this proxy's. Signs with the proxy's current
 * host identity; the parsed key is kept until the credentials are renewed.
 */
export function relayHeaderSigner(credentials: () => HostCredentials): (client: net.Socket) => Buffer {
  let cached: { certPem: string; certDer: Buffer; key: KeyObject } | undefined;
  return (client) => {
    const creds = credentials();
    if (cached?.certPem !== creds.certPem) {
      cached = { certPem: creds.certPem, certDer: new X509Certificate(creds.certPem).raw, key: createPrivateKey(creds.privateKeyPem) };
    }
    const { certDer, key } = cached;
    if (!client.remoteAddress || client.remotePort === undefined || !client.localAddress || client.localPort === undefined) {
      throw new Error('auth relay: the client connection has no address (it closed)');
    }
    return encodeRelayHeader({
      source: { address: client.remoteAddress, port: client.remotePort },
      destination: { address: client.localAddress, port: client.localPort },
      certDer,
      sign: (data) => sign('sha256', data, key),
    });
  };
}
