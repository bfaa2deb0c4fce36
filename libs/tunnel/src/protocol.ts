/** ALPN an agent offers when it dials a proxy for a tunnel. */
export const TUNNEL_ALPN = 'keyway-tunnel/1';
/** ALPN (or SNI, see AUTH_SERVER_NAME in @keyway/client) that the proxy relays to the auth server. */
export const GRPC_ALPN = 'keyway-grpc';
/** Name in every proxy certificate that agents check, wherever they dialled. */
export const PROXY_SERVER_NAME = 'proxy.keyway.cluster.local';

/**
 * Headers the proxy adds to a request it sends through a tunnel. The agent trusts them
 * only because the tunnel was opened by the agent to a proxy it verified.
 */
export const H = {
  cluster: 'x-keyway-kube-cluster',
  user: 'x-keyway-kube-user',
  groups: 'x-keyway-kube-groups',
  upgrade: 'x-keyway-upgrade',
  upgradeStatus: 'x-keyway-upgrade-status',
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
 * HTTP/2 pseudo-headers, or whatever `drop` says.
 */
export function endToEndHeaders(
  headers: Record<string, string | string[] | undefined>,
  drop: (name: string) => boolean = () => false,
): Record<string, string | string[]> {
  const connectionNamed = new Set(
    String(headers['connection'] ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: Record<string, string | string[]> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (name.startsWith(':') || HOP_BY_HOP.has(name) || connectionNamed.has(name) || name.startsWith('x-keyway-') || drop(name)) continue;
    out[name] = value;
  }
  return out;
}
