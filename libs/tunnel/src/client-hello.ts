/**
 * Reads SNI and ALPN from a TLS ClientHello without terminating TLS, so one listener can
 * route by them: relay untouched (the auth server's own TLS) or terminate with the
 * settings the route needs (which CA a client certificate must come from).
 */
export interface ClientHelloInfo {
  serverName?: string;
  alpn: string[];
}

export type PeekResult = { done: true; hello: ClientHelloInfo } | { done: false; need: number } | { done: true; hello: undefined };

const MAX_HELLO = 64 * 1024;

/**
 * Parses as much of the stream start as is there. `done:false` asks for more bytes; a
 * stream that is not TLS gives `hello: undefined`.
 */
export function peekClientHello(data: Buffer): PeekResult {
  // Reassemble the handshake payload across records (a post-quantum key share can push
  // the ClientHello past one TCP segment, rarely past one record).
  const handshake: Buffer[] = [];
  let offset = 0;
  let total = 0;
  while (true) {
    if (data.length < offset + 5) return { done: false, need: offset + 5 };
    if (data[offset] !== 0x16 || data[offset + 1] !== 0x03) return { done: true, hello: undefined };
    const len = data.readUInt16BE(offset + 3);
    if (data.length < offset + 5 + len) {
      if (offset + 5 + len > MAX_HELLO) return { done: true, hello: undefined };
      return { done: false, need: offset + 5 + len };
    }
    handshake.push(data.subarray(offset + 5, offset + 5 + len));
    total += len;
    offset += 5 + len;
    const hs = Buffer.concat(handshake, total);
    if (hs.length >= 4) {
      if (hs[0] !== 0x01) return { done: true, hello: undefined };
      const bodyLen = hs.readUIntBE(1, 3);
      if (bodyLen + 4 > MAX_HELLO) return { done: true, hello: undefined };
      if (hs.length >= bodyLen + 4) return { done: true, hello: parseHello(hs.subarray(4, 4 + bodyLen)) };
    }
    if (offset >= MAX_HELLO) return { done: true, hello: undefined };
  }
}

function parseHello(b: Buffer): ClientHelloInfo | undefined {
  try {
    let p = 2 + 32; // client_version, random
    p += 1 + b.readUInt8(p); // session_id
    p += 2 + b.readUInt16BE(p); // cipher_suites
    p += 1 + b.readUInt8(p); // compression_methods
    const info: ClientHelloInfo = { alpn: [] };
    if (p >= b.length) return info; // no extensions
    const end = p + 2 + b.readUInt16BE(p);
    p += 2;
    while (p + 4 <= end) {
      const type = b.readUInt16BE(p);
      const len = b.readUInt16BE(p + 2);
      const ext = b.subarray(p + 4, p + 4 + len);
      p += 4 + len;
      if (type === 0) info.serverName = parseSni(ext);
      else if (type === 16) info.alpn = parseAlpn(ext);
    }
    return info;
  } catch {
    return undefined;
  }
}

function parseSni(ext: Buffer): string | undefined {
  let p = 2;
  while (p + 3 <= ext.length) {
    const nameType = ext.readUInt8(p);
    const len = ext.readUInt16BE(p + 1);
    if (nameType === 0) return ext.subarray(p + 3, p + 3 + len).toString('ascii').toLowerCase();
    p += 3 + len;
  }
  return undefined;
}

function parseAlpn(ext: Buffer): string[] {
  const out: string[] = [];
  let p = 2;
  while (p < ext.length) {
    const len = ext.readUInt8(p);
    out.push(ext.subarray(p + 1, p + 1 + len).toString('ascii'));
    p += 1 + len;
  }
  return out;
}
