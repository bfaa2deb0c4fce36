import { generateKeyPairSync, sign, verify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_RELAY_HEADER_BYTES, PROXY_V2_SIGNATURE, RelayHeaderError, encodeRelayHeader, parseRelayHeader, relayHeaderSignedBytes } from './relay-header.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const certDer = Buffer.from('not really a certificate, the parser does not read it');
const encode = (source: string, destination: string, now = 1_700_000_000_000) =>
  encodeRelayHeader({ source: { address: source, port: 51234 }, destination: { address: destination, port: 3080 }, certDer, sign: (d) => sign('sha256', d, privateKey), now });

function parsed(buf: Buffer) {
  const r = parseRelayHeader(buf);
  if (!r.done || !r.header) throw new Error('expected a header');
  return r;
}

describe('relay header', () => {
  it.each([
    ['198.51.100.7', '10.0.0.1', '198.51.100.7', '10.0.0.1'],
    ['2001:db8::7', '2001:db8::1', '2001:db8::7', '2001:db8::1'],
    // Node reports IPv4 clients of a dual-stack listener as IPv4-mapped IPv6.
    ['::ffff:198.51.100.7', '::ffff:10.0.0.1', '198.51.100.7', '10.0.0.1'],
    ['198.51.100.7', '2001:db8::1', '::ffff:c633:6407', '2001:db8::1'],
  ])('carries %s → %s and a signature over what it says', (src, dst, wantSrc, wantDst) => {
    const bytes = Buffer.concat([encode(src, dst), Buffer.from('client hello follows')]);
    const { header, length } = parsed(bytes);
    expect(header.source).toEqual({ address: wantSrc, port: 51234 });
    expect(header.destination).toEqual({ address: wantDst, port: 3080 });
    expect(header.time).toBe(1_700_000_000_000);
    expect(header.certDer).toEqual(certDer);
    expect(bytes.subarray(length).toString()).toBe('client hello follows');
    expect(verify('sha256', relayHeaderSignedBytes(header), publicKey, header.signature)).toBe(true);
    expect(verify('sha256', relayHeaderSignedBytes({ ...header, source: { ...header.source, port: 1 } }), publicKey, header.signature)).toBe(false);
  });

  it('says a TLS ClientHello is no header after one byte', () => {
    expect(parseRelayHeader(Buffer.from([0x16]))).toEqual({ done: true, header: undefined });
    expect(parseRelayHeader(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual({ done: true, header: undefined });
  });

  it('asks for more bytes for every cut-short prefix of a header', () => {
    const whole = encode('198.51.100.7', '10.0.0.1');
    for (let n = 1; n < whole.length; n++) expect(parseRelayHeader(whole.subarray(0, n))).toEqual({ done: false });
  });

  it('refuses a header that claims more than the bound before reading it', () => {
    const claim = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
    expect(() => parseRelayHeader(claim)).toThrow(`over ${MAX_RELAY_HEADER_BYTES}`);
  });

  it('refuses an unsigned header, a LOCAL command, a UDP or unix family and a repeated TLV', () => {
    const body = Buffer.from([198, 51, 100, 7, 10, 0, 0, 1, 0, 80, 0, 81]);
    const v2 = (cmd: number, fam: number, b: Buffer) => Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([cmd, fam, b.length >> 8, b.length & 255]), b]);
    expect(() => parseRelayHeader(v2(0x21, 0x11, body))).toThrow('not signed by a Keyway proxy');
    expect(() => parseRelayHeader(v2(0x20, 0x11, body))).toThrow('PROXY command');
    expect(() => parseRelayHeader(v2(0x21, 0x12, body))).toThrow('TCP over IPv4 or IPv6');
    expect(() => parseRelayHeader(v2(0x21, 0x31, body))).toThrow('TCP over IPv4 or IPv6');
    const twice = Buffer.concat([body, Buffer.from([0xe0, 0, 1, 0]), Buffer.from([0xe0, 0, 1, 0])]);
    expect(() => parseRelayHeader(v2(0x21, 0x11, twice))).toThrow('appears twice');
  });

  it('never throws anything but RelayHeaderError, whatever follows the signature', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (tail, withSignature) => {
        const bytes = withSignature ? Buffer.concat([PROXY_V2_SIGNATURE, tail]) : Buffer.from(tail);
        try {
          const r = parseRelayHeader(bytes);
          if (r.done && r.header) expect(r.length).toBeLessThanOrEqual(bytes.length);
        } catch (err) {
          expect(err).toBeInstanceOf(RelayHeaderError);
        }
      }),
      { seed: 10, numRuns: 2000 },
    );
  });

  it('never throws anything but RelayHeaderError when a valid header is mutated', () => {
    const whole = encode('2001:db8::7', '2001:db8::1');
    fc.assert(
      fc.property(fc.nat(whole.length - 1), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const bytes = Buffer.from(whole);
        bytes[at] = value;
        try {
          parseRelayHeader(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(RelayHeaderError);
        }
      }),
      { seed: 11, numRuns: 2000 },
    );
  });
});
