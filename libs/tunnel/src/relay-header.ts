import ipaddr from 'ipaddr.js';

/**
 * The client's address, carried from the proxy's raw TLS relay to the auth server.
 *
 * The relay cannot add anything inside the client's TLS (auth terminates it), so it sends a
 * PROXY protocol v2 header (haproxy's format) in front of the client's bytes. Anyone able to
 * reach auth's port could send such a header, so Keyway's own TLVs make it a claim of a
 * Proxy host: its certificate and its signature over the addresses and the time. Auth checks
 * both before it believes the address (see apps/auth).
 *
 * Written here rather than taken from an npm PROXY protocol package: what matters is that
 * the header is bounded before it is parsed and that the signed TLVs are read exactly, and
 * the format itself is a fixed 16-byte prefix and a list of TLVs.
 */

/** The 12 bytes every PROXY v2 header starts with. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** A header longer than this is refused before it is read (a certificate is about 1 KiB). */
export const MAX_RELAY_HEADER_BYTES = 8 * 1024;

// Custom TLV types (0xE0–0xEF are the range PROXY v2 leaves to applications).
const TLV_TIME = 0xe0;
const TLV_CERT = 0xe1;
const TLV_SIGNATURE = 0xe2;

export interface RelayAddress {
  address: string;
  port: number;
}

export interface RelayHeader {
  source: RelayAddress;
  destination: RelayAddress;
  /** When the proxy wrote it (ms since the epoch). */
  time: number;
  /** The proxy's host certificate (DER). */
  certDer: Buffer;
  signature: Buffer;
}

export type RelayHeaderParse =
  | { done: false }
  /** The bytes do not start with a PROXY v2 header: a direct client. */
  | { done: true; header: undefined }
  | { done: true; header: RelayHeader; length: number };

export class RelayHeaderError extends Error {
  override readonly name = 'RelayHeaderError';
}

/** The bytes the proxy signs: addresses and time, independent of how the header is framed. */
export function relayHeaderSignedBytes(h: Pick<RelayHeader, 'source' | 'destination' | 'time'>): Buffer {
  return Buffer.from(`keyway-relay-v1\n${h.source.address}\n${h.source.port}\n${h.destination.address}\n${h.destination.port}\n${h.time}`);
}

/**
 * Encodes a signed header. Addresses are normalised (IPv4-mapped IPv6 becomes IPv4; a mixed
 * pair becomes IPv6), and the signature covers the normalised form.
 */
export function encodeRelayHeader(o: {
  source: RelayAddress;
  destination: RelayAddress;
  certDer: Buffer;
  sign: (data: Buffer) => Buffer;
  now?: number;
}): Buffer {
  let src = ipaddr.process(o.source.address);
  let dst = ipaddr.process(o.destination.address);
  if (src.kind() !== dst.kind()) {
    src = src.kind() === 'ipv4' ? (src as ipaddr.IPv4).toIPv4MappedAddress() : src;
    dst = dst.kind() === 'ipv4' ? (dst as ipaddr.IPv4).toIPv4MappedAddress() : dst;
  }
  const v6 = src.kind() === 'ipv6';
  const addresses = Buffer.alloc(v6 ? 36 : 12);
  const alen = v6 ? 16 : 4;
  Buffer.from(src.toByteArray()).copy(addresses, 0);
  Buffer.from(dst.toByteArray()).copy(addresses, alen);
  addresses.writeUInt16BE(o.source.port, 2 * alen);
  addresses.writeUInt16BE(o.destination.port, 2 * alen + 2);
  const time = o.now ?? Date.now();
  const signed = { source: { address: src.toString(), port: o.source.port }, destination: { address: dst.toString(), port: o.destination.port }, time };
  const timeBytes = Buffer.alloc(8);
  timeBytes.writeBigUInt64BE(BigInt(time));
  const tlvs = Buffer.concat([tlv(TLV_TIME, timeBytes), tlv(TLV_CERT, o.certDer), tlv(TLV_SIGNATURE, o.sign(relayHeaderSignedBytes(signed)))]);
  const fixed = Buffer.alloc(16);
  PROXY_V2_SIGNATURE.copy(fixed, 0);
  fixed[12] = 0x21; // version 2, PROXY command
  fixed[13] = v6 ? 0x21 : 0x11; // TCP over IPv6 / IPv4
  fixed.writeUInt16BE(addresses.length + tlvs.length, 14);
  const out = Buffer.concat([fixed, addresses, tlvs]);
  if (out.length > MAX_RELAY_HEADER_BYTES) throw new RelayHeaderError(`relay header of ${out.length} bytes is over ${MAX_RELAY_HEADER_BYTES}`);
  return out;
}

function tlv(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(value.length, 1);
  return Buffer.concat([head, value]);
}

/**
 * Reads a header from the start of a stream. Asks for more bytes (`done: false`) until it can
 * decide; throws RelayHeaderError for a header that is malformed, too long, or lacks the
 * signed TLVs (an unsigned PROXY header is refused, not ignored: it claims an address).
 */
export function parseRelayHeader(data: Buffer): RelayHeaderParse {
  const prefix = Math.min(data.length, PROXY_V2_SIGNATURE.length);
  if (!data.subarray(0, prefix).equals(PROXY_V2_SIGNATURE.subarray(0, prefix))) return { done: true, header: undefined };
  if (data.length < 16) return { done: false };
  if (data[12] !== 0x21) throw new RelayHeaderError('PROXY header: only version 2 with the PROXY command is accepted');
  const family = data[13];
  const bodyLength = data.readUInt16BE(14);
  if (16 + bodyLength > MAX_RELAY_HEADER_BYTES) throw new RelayHeaderError(`PROXY header of ${16 + bodyLength} bytes is over ${MAX_RELAY_HEADER_BYTES}`);
  if (data.length < 16 + bodyLength) return { done: false };
  const body = data.subarray(16, 16 + bodyLength);
  const alen = family === 0x11 ? 4 : family === 0x21 ? 16 : 0;
  if (alen === 0) throw new RelayHeaderError('PROXY header: only TCP over IPv4 or IPv6 is accepted');
  if (body.length < 2 * alen + 4) throw new RelayHeaderError('PROXY header: address block is cut short');
  const source = { address: ipaddr.fromByteArray([...body.subarray(0, alen)]).toString(), port: body.readUInt16BE(2 * alen) };
  const destination = { address: ipaddr.fromByteArray([...body.subarray(alen, 2 * alen)]).toString(), port: body.readUInt16BE(2 * alen + 2) };
  const values = new Map<number, Buffer>();
  let p = 2 * alen + 4;
  while (p < body.length) {
    if (p + 3 > body.length) throw new RelayHeaderError('PROXY header: TLV is cut short');
    const type = body[p] as number;
    const len = body.readUInt16BE(p + 1);
    if (p + 3 + len > body.length) throw new RelayHeaderError('PROXY header: TLV runs past the header');
    if (values.has(type)) throw new RelayHeaderError(`PROXY header: TLV 0x${type.toString(16)} appears twice`);
    values.set(type, body.subarray(p + 3, p + 3 + len));
    p += 3 + len;
  }
  const time = values.get(TLV_TIME);
  const certDer = values.get(TLV_CERT);
  const signature = values.get(TLV_SIGNATURE);
  if (!time || time.length !== 8 || !certDer || certDer.length === 0 || !signature || signature.length === 0) {
    throw new RelayHeaderError('PROXY header is not signed by a Keyway proxy');
  }
  const millis = time.readBigUInt64BE();
  if (millis > BigInt(Number.MAX_SAFE_INTEGER)) throw new RelayHeaderError('PROXY header: time is out of range');
  return { done: true, length: 16 + bodyLength, header: { source, destination, time: Number(millis), certDer: Buffer.from(certDer), signature: Buffer.from(signature) } };
}
