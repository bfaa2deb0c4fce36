export { peekClientHello, type ClientHelloInfo, type PeekResult } from './client-hello.js';
export { GRPC_ALPN, H, INFO_PATH, PROXY_SERVER_NAME, TUNNEL_ALPN, endToEndHeaders, type TunnelInfo } from './protocol.js';
export type { Headers, KubeBackend, KubeRequestHead, KubeResponse, KubeResponseHead } from './backend.js';
export { TunnelClosedError, TunnelSession, serveTunnel } from './session.js';
export { pump, pumpBody, splice } from './pump.js';
export {
  MAX_RELAY_HEADER_BYTES,
  PROXY_V2_SIGNATURE,
  RelayHeaderError,
  encodeRelayHeader,
  parseRelayHeader,
  relayHeaderSignedBytes,
  type RelayAddress,
  type RelayHeader,
  type RelayHeaderParse,
} from './relay-header.js';
export { readConnectionStart, type ConnectionStartOptions } from './connection-start.js';
