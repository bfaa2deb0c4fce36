import { verify, X509Certificate } from 'node:crypto';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { splitHostPort } from '@keyway/client';
import { BadParameterError } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import { verifyCertificate } from '@keyway/pki';
import { MAX_RELAY_HEADER_BYTES, parseRelayHeader, readConnectionStart, relayHeaderSignedBytes, type RelayHeader } from '@keyway/tunnel';

/** How far a relay header's time may be from auth's clock (network delay and clock skew). */
export const RELAY_HEADER_MAX_SKEW_MS = 120_000;

export interface RelayListenerOptions {
  listenAddr: string;
  /** The trusted host CA(s), current at the time of the call (CA rotation). */
  hostCas: () => readonly X509Certificate[];
  /** Hands a connection, its relay header consumed, to the TLS/gRPC server. */
  inject(socket: net.Socket): void;
  logger: Logger;
  /** How long a connection may take to send its first bytes (the header or its ClientHello). */
  headerTimeoutMs?: number;
  now?: () => number;
}

export interface RelayListener {
  port: number;
  /**
   * The client's address for a connection, given as grpc-js reports its peer
   * ("address:port" of the TCP connection): the relayed client's own address when a proxy
   * vouched for it, the TCP peer's otherwise.
   */
  clientAddress(peer: string): string | undefined;
  close(): Promise<void>;
}

/**
 * Why the header is not believed, or undefined when a Proxy host signed it just now. The
 * certificate must come from the host CA, be valid, and name the Proxy role: a Kube agent or
 * a user certificate cannot vouch for an address.
 */
export function relayHeaderProblem(h: RelayHeader, hostCas: readonly X509Certificate[], now: number): string | undefined {
  if (Math.abs(now - h.time) > RELAY_HEADER_MAX_SKEW_MS) return `its time is ${Math.round((h.time - now) / 1000)} s from this server's clock`;
  let cert: X509Certificate;
  try {
    const identity = verifyCertificate(h.certDer, hostCas, new Date(now));
    if (!identity.systemRoles.includes('Proxy')) return `its certificate (${identity.username}) is not a proxy's`;
    cert = new X509Certificate(h.certDer);
  } catch (err) {
    return `its certificate is refused: ${(err as Error).message}`;
  }
  let signed = false;
  try {
    signed = verify('sha256', relayHeaderSignedBytes(h), cert.publicKey, h.signature);
  } catch {
    signed = false;
  }
  return signed ? undefined : 'its signature does not match its certificate';
}

/**
 * Auth's listener. A connection may start with a PROXY v2 header from a Keyway proxy's relay
 * (the client's address, signed by the proxy); anything else is a direct client. The header
 * is bounded and checked before the connection reaches TLS; a header that is not believed
 * ends the connection, since it claims an address.
 */
export async function listenWithRelayHeaders(o: RelayListenerOptions): Promise<RelayListener> {
  const relayed = new Map<string, string>();
  const now = o.now ?? Date.now;
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    readConnectionStart(socket, {
      decide: (data) => {
        const parsed = parseRelayHeader(data);
        return parsed.done ? parsed : undefined;
      },
      maxBytes: MAX_RELAY_HEADER_BYTES,
      timeoutMs: o.headerTimeoutMs ?? 10_000,
      refused: (err) => o.logger.warn({ peer: socket.remoteAddress, err: err.message }, 'connection refused: bad relay header'),
      decided: (parsed, data) => {
        if (parsed.header) {
          const problem = relayHeaderProblem(parsed.header, o.hostCas(), now());
          if (problem) {
            o.logger.warn({ peer: socket.remoteAddress, claimed: parsed.header.source.address, problem }, 'connection refused: relay header not believed');
            socket.destroy();
            return;
          }
          const key = `${socket.remoteAddress}:${socket.remotePort}`;
          relayed.set(key, ipaddr.process(parsed.header.source.address).toString());
          socket.once('close', () => relayed.delete(key));
        }
        const rest = parsed.header ? data.subarray(parsed.length) : data;
        if (rest.length > 0) socket.unshift(rest);
        // The TLS server takes the handle over and reads what was put back first.
        o.inject(socket);
      },
    });
  });
  let host: string, port: number;
  try {
    ({ host, port } = splitHostPort(o.listenAddr));
  } catch {
    throw new BadParameterError(`listen address "${o.listenAddr}" is not host:port`, { listenAddr: o.listenAddr });
  }
  const bound = await new Promise<number>((resolve, reject) => {
    server.once('error', (err) => reject(new BadParameterError(`cannot listen on ${o.listenAddr}: ${err.message}`, { listenAddr: o.listenAddr })));
    server.listen({ host: host || '0.0.0.0', port }, () => resolve((server.address() as net.AddressInfo).port));
  });
  server.on('error', (err) => o.logger.error({ err: err.message }, 'auth listener failed'));
  return {
    port: bound,
    clientAddress(peer) {
      const claimed = relayed.get(peer);
      if (claimed) return claimed;
      const m = /^(?:ipv[46]:)?\[?([^\]]+?)\]?:\d+$/.exec(peer);
      if (!m?.[1]) return undefined;
      return ipaddr.isValid(m[1]) ? ipaddr.process(m[1]).toString() : m[1];
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
