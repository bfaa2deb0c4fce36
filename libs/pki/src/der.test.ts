import { BadParameterError } from '@keyway/errors';
import { describe, expect, it } from 'vitest';
import * as der from './der.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('DER writer', () => {
  it('encodes integers minimally in two’s complement', () => {
    expect(hex(der.integer(0))).toBe('020100');
    expect(hex(der.integer(127))).toBe('02017f');
    expect(hex(der.integer(128))).toBe('02020080');
    expect(hex(der.integer(256))).toBe('02020100');
    expect(hex(der.integer(-1))).toBe('0201ff');
    expect(hex(der.integer(-128))).toBe('020180');
    expect(hex(der.integer(-129))).toBe('0202ff7f');
    expect(hex(der.integer(2n ** 64n))).toBe('0209010000000000000000');
    expect(() => der.integer(1.5)).toThrow(BadParameterError);
  });

  it('encodes unsigned magnitudes as positive minimal integers', () => {
    expect(hex(der.unsignedInteger(Buffer.from([0x80])))).toBe('02020080');
    expect(hex(der.unsignedInteger(Buffer.from([0, 0, 1])))).toBe('020101');
    expect(hex(der.unsignedInteger(Buffer.from([0, 0x80])))).toBe('02020080');
    expect(hex(der.unsignedInteger(Buffer.alloc(0)))).toBe('020100');
  });

  it('encodes OIDs and reads them back', () => {
    expect(hex(der.oid('1.2.840.10045.4.3.2'))).toBe('06082a8648ce3d040302');
    expect(hex(der.oid('2.5.29.19'))).toBe('0603551d13');
    for (const o of ['1.3.6.1.4.1.65536.1.1', '2.999.3', '2.25.329800735698586629295641978511506172918', '0.0']) {
      const enc = der.oid(o);
      expect(der.readOid(enc, der.readAll(enc))).toBe(o);
    }
    expect(() => der.oid('1.2.x')).toThrow(BadParameterError);
    expect(() => der.oid('1.40')).toThrow(BadParameterError);
    expect(() => der.oid('3.1')).toThrow(BadParameterError);
  });

  it('uses short and long length forms', () => {
    for (const [n, header] of [
      [0, '0400'],
      [127, '047f'],
      [128, '048180'],
      [255, '0481ff'],
      [256, '04820100'],
      [70000, '0483011170'],
    ] as const) {
      const enc = der.octetString(Buffer.alloc(n, 7));
      expect(hex(enc.subarray(0, header.length / 2))).toBe(header);
      const t = der.readAll(enc);
      expect(t.end - t.start).toBe(n);
    }
  });

  it('writes strings, booleans, null, bit strings and context tags', () => {
    expect(hex(der.utf8String('é'))).toBe('0c02c3a9');
    expect(hex(der.printableString('Ab 1'))).toBe('130441622031');
    expect(() => der.printableString('a@b')).toThrow(BadParameterError);
    expect(hex(der.ia5String('a@b'))).toBe('1603614062');
    expect(() => der.ia5String('é')).toThrow(BadParameterError);
    expect(hex(der.boolean(true))).toBe('0101ff');
    expect(hex(der.boolean(false))).toBe('010100');
    expect(hex(der.nul())).toBe('0500');
    expect(hex(der.bitString(Buffer.from([0x80]), 7))).toBe('03020780');
    expect(hex(der.explicit(3, der.nul()))).toBe('a3020500');
    expect(hex(der.utf8String('x', der.contextPrimitiveTag(1)))).toBe('810178');
    expect(hex(der.sequenceOf([der.nul()], der.contextConstructedTag(2)))).toBe('a2020500');
  });

  it('sorts SET OF elements', () => {
    expect(hex(der.set(der.integer(2), der.integer(1)))).toBe('3106020101020102');
  });

  it('encodes times as RFC 5280 asks', () => {
    const d = new Date('2024-01-02T03:04:05.678Z');
    expect(der.utcTime(d).subarray(2).toString('latin1')).toBe('240102030405Z');
    expect(der.generalizedTime(d).subarray(2).toString('latin1')).toBe('20240102030405Z');
    expect(der.time(d)[0]).toBe(der.Tag.UTC_TIME);
    expect(der.time(new Date('2050-01-01T00:00:00Z'))[0]).toBe(der.Tag.GENERALIZED_TIME);
    expect(der.time(new Date('1949-12-31T23:59:59Z'))[0]).toBe(der.Tag.GENERALIZED_TIME);
    for (const iso of ['2024-01-02T03:04:05Z', '1999-12-31T23:59:59Z', '2049-06-01T00:00:00Z', '2100-02-28T12:00:00Z']) {
      const enc = der.time(new Date(iso));
      expect(der.readTime(enc, der.readAll(enc)).toISOString()).toBe(iso.replace('Z', '.000Z'));
    }
    expect(() => der.time(new Date(NaN))).toThrow(BadParameterError);
  });
});

describe('DER reader', () => {
  it('walks children', () => {
    const enc = der.sequence(der.integer(5), der.utf8String('hi'), der.sequence(der.boolean(true)));
    const top = der.readAll(enc);
    const kids = der.children(enc, top);
    expect(kids.map((k) => k.tag)).toEqual([der.Tag.INTEGER, der.Tag.UTF8_STRING, der.Tag.SEQUENCE]);
    expect(der.readSmallInteger(enc, kids[0] as der.Tlv)).toBe(5);
    expect(der.readString(enc, kids[1] as der.Tlv)).toBe('hi');
    expect(der.readBoolean(enc, der.children(enc, kids[2] as der.Tlv)[0] as der.Tlv)).toBe(true);
    expect(hex(der.element(enc, kids[1] as der.Tlv))).toBe('0c026869');
  });

  it('reads signed and unsigned integers', () => {
    const neg = der.integer(-129);
    expect(der.readSmallInteger(neg, der.readAll(neg))).toBe(-129);
    const pos = der.unsignedInteger(Buffer.from([0xff, 0x01]));
    expect(hex(der.readUnsignedInteger(pos, der.readAll(pos)))).toBe('ff01');
    expect(() => der.readUnsignedInteger(neg, der.readAll(neg))).toThrow(BadParameterError);
  });

  it('decodes BMPString and UniversalString', () => {
    const bmp = der.tlv(der.Tag.BMP_STRING, Buffer.from([0x00, 0x41, 0x5c, 0x71]));
    expect(der.readString(bmp, der.readAll(bmp))).toBe('A山');
    const uni = der.tlv(der.Tag.UNIVERSAL_STRING, Buffer.from([0, 1, 0xf6, 0x00]));
    expect(der.readString(uni, der.readAll(uni))).toBe('😀');
  });

  it('rejects malformed input with BadParameterError', () => {
    const cases: [string, string][] = [
      ['30', 'truncated header'],
      ['3080', 'indefinite length'],
      ['3004020101', 'runs past'],
      ['30030201010000', 'trailing bytes'],
      ['1f0100', 'high tag'],
      ['3085ffffffffff', 'length too large'],
      ['3082', 'truncated length'],
    ];
    for (const [input, msg] of cases) {
      expect(() => der.readAll(Buffer.from(input, 'hex')), input).toThrow(msg);
      expect(() => der.readAll(Buffer.from(input, 'hex'))).toThrow(BadParameterError);
    }
    const nested = Buffer.from('3003020201', 'hex');
    expect(() => der.children(nested, der.readAll(nested))).toThrow('runs past its container');
    const badOid = Buffer.from('06028001', 'hex');
    expect(() => der.readOid(badOid, der.readAll(badOid))).toThrow('non-minimal');
    const truncOid = Buffer.from('06022b81', 'hex');
    expect(() => der.readOid(truncOid, der.readAll(truncOid))).toThrow('truncated OID');
    const badTime = der.tlv(der.Tag.UTC_TIME, Buffer.from('241301000000Z', 'latin1'));
    expect(() => der.readTime(badTime, der.readAll(badTime))).toThrow('out of range');
    const localTime = der.tlv(der.Tag.UTC_TIME, Buffer.from('2401010000000', 'latin1'));
    expect(() => der.readTime(localTime, der.readAll(localTime))).toThrow('not in UTC');
    const fractional = der.tlv(der.Tag.GENERALIZED_TIME, Buffer.from('20240101000000.5Z', 'latin1'));
    expect(() => der.readTime(fractional, der.readAll(fractional))).toThrow(BadParameterError);
    expect(() => der.expect(undefined, der.Tag.SEQUENCE, 'thing')).toThrow('missing thing');
  });
});
