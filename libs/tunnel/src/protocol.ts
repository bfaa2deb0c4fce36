/** ALPN an agent offers when it dials a proxy for a tunnel (/2: the framing in mux.ts; /1 was HTTP/2). */
export const TUNNEL_ALPN = 'keyway-tunnel/2';
/** ALPN (or SNI, see AUTH_SERVER_NAME in @keyway/client) that the proxy relays to the auth server. */
export const GRPC_ALPN = 'keyway-grpc';
/** Name in every proxy certificate that agents check, wherever they dialled. */
export const PROXY_SERVER_NAME = 'proxy.keyway.cluster.local';

/**
 * Keyway's own headers. Every x-keyway-* header is dropped whenever headers cross a hop
 * (endToEndHeaders), so a client can never pass one off as Keyway's. The identity the proxy
 * computed travels in the tunnel's request head (see session.ts), not in headers.
 */
export const H = {
  /** On a response the agent made up itself (the API server could not be reached). */
  error: 'x-keyway-error',
} as const;

/** Path on which the proxy asks an agent what it serves. */
export const INFO_PATH = '/.keyway/tunnel/info';

export interface TunnelInfo {
  hostId: string;
  hostname: string;
  version: string;
  clusters: { name: string; labels: Record<string, string> }[];
}

/** Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1, RFC 9113 §8.2.2). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'http2-settings',
]);

/**
 * The end-to-end headers of a request or response, lower-cased, without hop-by-hop headers,
 * HTTP/2 pseudo-headers, or whatever `drop` says. Runs on every request and response, so it
 * walks the object once and builds the Connection-named set only when there is one.
 */
export function endToEndHeaders(
  headers: Record<string, string | string[] | undefined>,
  drop?: (name: string) => boolean,
): Record<string, string | string[]> {
  const connection = headers['connection'];
  let connectionNamed: Set<string> | undefined;
  if (connection !== undefined) {
    connectionNamed = new Set();
    for (const v of Array.isArray(connection) ? connection : [connection]) {
      for (const part of v.split(',')) {
        const name = part.trim().toLowerCase();
        if (name) connectionNamed.add(name);
      }
    }
  }
  const out: Record<string, string | string[]> = {};
  for (const rawName in headers) {
    const value = headers[rawName];
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (name.charCodeAt(0) === 58 /* : */ || HOP_BY_HOP.has(name) || name.startsWith('x-keyway-') || connectionNamed?.has(name) || drop?.(name)) continue;
    out[name] = value;
  }
  return out;
}
