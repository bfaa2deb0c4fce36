/**
 * Minimal DER (X.690) writer and reader: only what X.509 certificates and the Keyway
 * identity extension need. The writer sizes each TLV exactly and copies children once
 * per nesting level, because certificate issuance runs thousands of times per second.
 * Only low tag numbers (< 31) and definite lengths up to 2^32-1 are supported.
 */
import { BadParameterError } from '@keyway/errors';

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Tag byte of a context-specific primitive ([n] IMPLICIT of a primitive type). */
export const contextPrimitiveTag = (n: number): number => 0x80 | n;
/** Tag byte of a context-specific constructed ([n] EXPLICIT, or IMPLICIT of a SEQUENCE). */
export const contextConstructedTag = (n: number): number => 0xa0 | n;

// ---------------------------------------------------------------------------------------
// Writer

function headerLength(len: number): number {
  return len < 0x80 ? 2 : len < 0x100 ? 3 : len < 0x10000 ? 4 : len < 0x1000000 ? 5 : 6;
}

function writeHeader(out: Buffer, pos: number, tag: number, len: number): number {
  out[pos++] = tag;
  if (len < 0x80) {
    out[pos++] = len;
  } else if (len < 0x100) {
    out[pos++] = 0x81;
    out[pos++] = len;
  } else if (len < 0x10000) {
    out[pos++] = 0x82;
    out[pos++] = len >>> 8;
    out[pos++] = len & 0xff;
  } else if (len < 0x1000000) {
    out[pos++] = 0x83;
    out[pos++] = len >>> 16;
    out[pos++] = (len >>> 8) & 0xff;
    out[pos++] = len & 0xff;
  } else {
    out[pos++] = 0x84;
    out.writeUInt32BE(len, pos);
    pos += 4;
  }
  return pos;
}

/** One TLV with the given tag and content bytes. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(headerLength(content.length) + content.length);
  out.set(content, writeHeader(out, 0, tag, content.length));
  return out;
}

/** A constructed TLV whose content is the concatenation of already-encoded children. */
export function constructed(tag: number, children: readonly Uint8Array[]): Buffer {
  let len = 0;
  for (const c of children) len += c.length;
  const out = Buffer.allocUnsafe(headerLength(len) + len);
  let pos = writeHeader(out, 0, tag, len);
  for (const c of children) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

export const sequence = (...children: Uint8Array[]): Buffer => constructed(Tag.SEQUENCE, children);
/** SEQUENCE OF; `tag` overrides the tag for an IMPLICIT context tag (contextConstructedTag). */
export const sequenceOf = (children: readonly Uint8Array[], tag: number = Tag.SEQUENCE): Buffer =>
  constructed(tag, children);

/** SET OF: DER requires the elements sorted by their encodings (X.690 11.6). */
export function setOf(children: readonly Uint8Array[]): Buffer {
  if (children.length < 2) return constructed(Tag.SET, children);
  return constructed(Tag.SET, [...children].sort((a, b) => Buffer.compare(a, b)));
}
export const set = (...children: Uint8Array[]): Buffer => setOf(children);

/** [n] EXPLICIT wrapper around one encoded element. */
export const explicit = (n: number, inner: Uint8Array): Buffer => constructed(contextConstructedTag(n), [inner]);

/** INTEGER from a JS number or bigint (two's complement, minimal). */
export function integer(value: number | bigint): Buffer {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new BadParameterError('DER integer must be a safe integer', { value });
    if (value >= 0 && value < 0x80) return Buffer.from([Tag.INTEGER, 1, value]);
    value = BigInt(value);
  }
  const bytes: number[] = [];
  let v = value;
  // Emit little-endian bytes until the remaining value is pure sign extension.
  for (;;) {
    const byte = Number(v & 0xffn);
    bytes.push(byte);
    v >>= 8n;
    if ((v === 0n && (byte & 0x80) === 0) || (v === -1n && (byte & 0x80) !== 0)) break;
  }
  return tlv(Tag.INTEGER, Uint8Array.from(bytes.reverse()));
}

/** INTEGER from an unsigned big-endian magnitude (serial numbers): minimal and positive. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  if (magnitude.length === 0) return Buffer.from([Tag.INTEGER, 1, 0]);
  const body = magnitude.subarray(i);
  const pad = (body[0] as number) & 0x80 ? 1 : 0;
  const len = body.length + pad;
  const out = Buffer.allocUnsafe(headerLength(len) + len);
  let pos = writeHeader(out, 0, Tag.INTEGER, len);
  if (pad) out[pos++] = 0;
  out.set(body, pos);
  return out;
}

const oidCache = new Map<string, Buffer>();
const OID_RE = /^[0-2](\.(0|[1-9]\d*))+$/;

/** OBJECT IDENTIFIER from dotted form. Encodings are cached: the set of OIDs is small. */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  if (!OID_RE.test(dotted)) throw new BadParameterError(`invalid OID "${dotted}"`);
  const arcs = dotted.split('.').map(BigInt);
  const [a = 0n, b = 0n] = arcs;
  if (a < 2n && b > 39n) throw new BadParameterError(`invalid OID "${dotted}"`);
  const bytes: number[] = [];
  for (const arc of [a * 40n + b, ...arcs.slice(2)]) {
    const chunk: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) chunk.push(Number(v & 0x7fn) | 0x80);
    bytes.push(...chunk.reverse());
  }
  const out = tlv(Tag.OID, Uint8Array.from(bytes));
  oidCache.set(dotted, out);
  return out;
}

function stringTlv(tag: number, value: string, encoding: 'utf8' | 'latin1'): Buffer {
  const len = encoding === 'utf8' ? Buffer.byteLength(value, 'utf8') : value.length;
  const out = Buffer.allocUnsafe(headerLength(len) + len);
  out.write(value, writeHeader(out, 0, tag, len), len, encoding);
  return out;
}

/** UTF8String; `tag` overrides the tag for an IMPLICIT context tag (contextPrimitiveTag). */
export const utf8String = (value: string, tag: number = Tag.UTF8_STRING): Buffer => stringTlv(tag, value, 'utf8');

const PRINTABLE_RE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
export function printableString(value: string): Buffer {
  if (!PRINTABLE_RE.test(value)) throw new BadParameterError('value is not a PrintableString', { value });
  return stringTlv(Tag.PRINTABLE_STRING, value, 'latin1');
}

const IA5_RE = /^[\x00-\x7f]*$/;
export function ia5String(value: string): Buffer {
  if (!IA5_RE.test(value)) throw new BadParameterError('value is not an IA5String (ASCII only)', { value });
  return stringTlv(Tag.IA5_STRING, value, 'latin1');
}

function put2(out: Buffer, pos: number, n: number): void {
  out[pos] = 0x30 + ((n / 10) | 0);
  out[pos + 1] = 0x30 + (n % 10);
}

function timeTlv(date: Date, generalized: boolean): Buffer {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new BadParameterError('invalid date');
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw new BadParameterError('date out of range', { date: date.toISOString() });
  const out = Buffer.allocUnsafe(generalized ? 17 : 15);
  out[0] = generalized ? Tag.GENERALIZED_TIME : Tag.UTC_TIME;
  out[1] = generalized ? 15 : 13;
  let pos = 2;
  if (generalized) {
    put2(out, pos, (year / 100) | 0);
    pos += 2;
  }
  put2(out, pos, year % 100);
  put2(out, pos + 2, date.getUTCMonth() + 1);
  put2(out, pos + 4, date.getUTCDate());
  put2(out, pos + 6, date.getUTCHours());
  put2(out, pos + 8, date.getUTCMinutes());
  put2(out, pos + 10, date.getUTCSeconds());
  out[pos + 12] = 0x5a; // 'Z'
  return out;
}

/** UTCTime (YYMMDDHHMMSSZ); fractional seconds are truncated as DER requires. */
export const utcTime = (date: Date): Buffer => timeTlv(date, false);
/** GeneralizedTime (YYYYMMDDHHMMSSZ). */
export const generalizedTime = (date: Date): Buffer => timeTlv(date, true);

/** X.509 Time (RFC 5280 4.1.2.5): UTCTime for 1950..2049, GeneralizedTime otherwise. */
export function time(date: Date): Buffer {
  const y = date.getUTCFullYear();
  return timeTlv(date, !(y >= 1950 && y < 2050));
}

/** BIT STRING with the given number of unused bits in the last byte. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  const len = bytes.length + 1;
  const out = Buffer.allocUnsafe(headerLength(len) + len);
  const pos = writeHeader(out, 0, Tag.BIT_STRING, len);
  out[pos] = unusedBits;
  out.set(bytes, pos + 1);
  return out;
}

export const octetString = (bytes: Uint8Array): Buffer => tlv(Tag.OCTET_STRING, bytes);

const TRUE = Buffer.from([Tag.BOOLEAN, 1, 0xff]);
const FALSE = Buffer.from([Tag.BOOLEAN, 1, 0x00]);
export const boolean = (value: boolean): Buffer => (value ? TRUE : FALSE);

const NULL = Buffer.from([Tag.NULL, 0]);
export const nul = (): Buffer => NULL;

// ---------------------------------------------------------------------------------------
// Reader

/** Position of one TLV inside a buffer: header at `offset`, content in [start, end). */
export interface Tlv {
  tag: number;
  offset: number;
  start: number;
  end: number;
}

function malformed(what: string, offset: number): BadParameterError {
  return new BadParameterError(`malformed DER: ${what} at offset ${offset}`, { offset });
}

/** Reads the TLV header at `offset`; the element must end at or before `limit`. */
export function read(buf: Uint8Array, offset = 0, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw malformed('truncated header', offset);
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw malformed('high tag numbers are not supported', offset);
  let len = buf[offset + 1] as number;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw malformed('indefinite length', offset);
    if (n > 4) throw malformed('length too large', offset);
    if (start + n > limit) throw malformed('truncated length', offset);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[start + i] as number);
    start += n;
  }
  const end = start + len;
  if (end > limit) throw malformed('content runs past its container', offset);
  return { tag, offset, start, end };
}

/** Reads the single TLV that must fill the whole buffer. */
export function readAll(buf: Uint8Array): Tlv {
  const t = read(buf, 0, buf.length);
  if (t.end !== buf.length) throw malformed('trailing bytes', t.end);
  return t;
}

/** The elements inside a constructed TLV. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.start; pos < parent.end; ) {
    const t = read(buf, pos, parent.end);
    out.push(t);
    pos = t.end;
  }
  return out;
}

/** Throws unless the element has the expected tag; `what` names it in the error. */
export function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t) throw new BadParameterError(`malformed DER: missing ${what}`);
  if (t.tag !== tag) {
    throw new BadParameterError(
      `malformed DER: ${what} has tag 0x${t.tag.toString(16)}, want 0x${tag.toString(16)}`,
      { offset: t.offset },
    );
  }
  return t;
}

/** Content bytes (a view, not a copy). */
export const content = (buf: Uint8Array, t: Tlv): Buffer =>
  Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start);

/** The whole TLV, header included (a view, not a copy). */
export const element = (buf: Uint8Array, t: Tlv): Buffer =>
  Buffer.from(buf.buffer, buf.byteOffset + t.offset, t.end - t.offset);

export function readOid(buf: Uint8Array, t: Tlv): string {
  if (t.tag !== Tag.OID || t.end === t.start) throw malformed('bad OID', t.offset);
  const arcs: string[] = [];
  let v = 0;
  let big: bigint | undefined;
  for (let i = t.start; i < t.end; i++) {
    const b = buf[i] as number;
    if (v === 0 && big === undefined && b === 0x80) throw malformed('non-minimal OID arc', t.offset);
    // Switch to bigint only for arcs that do not fit a safe integer.
    if (big === undefined && v > 2 ** 45) big = BigInt(v);
    if (big !== undefined) big = (big << 7n) | BigInt(b & 0x7f);
    else v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = big ?? BigInt(v);
        const a = first < 40n ? 0n : first < 80n ? 1n : 2n;
        arcs.push(String(a), String(first - a * 40n));
      } else {
        arcs.push(big !== undefined ? big.toString() : String(v));
      }
      v = 0;
      big = undefined;
    } else if (i === t.end - 1) {
      throw malformed('truncated OID', t.offset);
    }
  }
  return arcs.join('.');
}

/** INTEGER content as an unsigned magnitude (leading zero bytes stripped). Rejects negatives. */
export function readUnsignedInteger(buf: Uint8Array, t: Tlv): Buffer {
  if (t.tag !== Tag.INTEGER || t.end === t.start) throw malformed('bad INTEGER', t.offset);
  if ((buf[t.start] as number) & 0x80) throw malformed('negative INTEGER', t.offset);
  let i = t.start;
  while (i < t.end - 1 && buf[i] === 0) i++;
  return content(buf, { ...t, start: i });
}

/** INTEGER as a JS number; throws if it does not fit a safe integer. */
export function readSmallInteger(buf: Uint8Array, t: Tlv): number {
  if (t.end === t.start || t.end - t.start > 6) throw malformed('INTEGER out of range', t.offset);
  // Seeding with -1 for negative values folds the two's complement in as bytes are added.
  let v = (buf[t.start] as number) & 0x80 ? -1 : 0;
  for (let i = t.start; i < t.end; i++) v = v * 256 + (buf[i] as number);
  return v;
}

export function readBoolean(buf: Uint8Array, t: Tlv): boolean {
  if (t.end - t.start !== 1) throw malformed('bad BOOLEAN', t.offset);
  return buf[t.start] !== 0;
}

/** Decodes any of the X.509 directory string types by tag. */
export function readString(buf: Uint8Array, t: Tlv): string {
  const c = content(buf, t);
  switch (t.tag & 0x1f) {
    case Tag.UTF8_STRING:
      return c.toString('utf8');
    case Tag.PRINTABLE_STRING:
    case Tag.IA5_STRING:
    case Tag.T61_STRING:
      return c.toString('latin1');
    case Tag.BMP_STRING: {
      if (c.length % 2) throw malformed('odd-length BMPString', t.offset);
      return Buffer.from(c).swap16().toString('utf16le');
    }
    case Tag.UNIVERSAL_STRING: {
      if (c.length % 4) throw malformed('bad UniversalString', t.offset);
      let s = '';
      for (let i = 0; i < c.length; i += 4) s += String.fromCodePoint(c.readUInt32BE(i));
      return s;
    }
    default:
      throw malformed(`tag 0x${t.tag.toString(16)} is not a string`, t.offset);
  }
}

function digits(buf: Uint8Array, pos: number, n: number, t: Tlv): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = (buf[pos + i] as number) - 0x30;
    if (d < 0 || d > 9) throw malformed('bad time', t.offset);
    v = v * 10 + d;
  }
  return v;
}

/** UTCTime or GeneralizedTime in the RFC 5280 profile (seconds, 'Z'). */
export function readTime(buf: Uint8Array, t: Tlv): Date {
  const len = t.end - t.start;
  let pos = t.start;
  let year: number;
  if (t.tag === Tag.UTC_TIME && len === 13) {
    year = digits(buf, pos, 2, t);
    year += year < 50 ? 2000 : 1900;
    pos += 2;
  } else if (t.tag === Tag.GENERALIZED_TIME && len === 15) {
    year = digits(buf, pos, 4, t);
    pos += 4;
  } else {
    throw malformed('unsupported time encoding', t.offset);
  }
  if (buf[t.end - 1] !== 0x5a) throw malformed('time is not in UTC', t.offset);
  const month = digits(buf, pos, 2, t);
  const day = digits(buf, pos + 2, 2, t);
  const hour = digits(buf, pos + 4, 2, t);
  const minute = digits(buf, pos + 6, 2, t);
  const second = digits(buf, pos + 8, 2, t);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    throw malformed('time out of range', t.offset);
  }
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second));
}
