import { Metadata, status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BadParameterError, KeywayError, NotFoundError, errorOfKind, type ErrorKind } from './errors.js';
import { ERROR_DATA_HEADER, MAX_ERROR_DATA_BYTES, MAX_ERROR_MESSAGE_WIRE_BYTES, fromGrpcError, toGrpcError } from './status.js';

const KINDS: ErrorKind[] = ['BadParameter', 'NotFound', 'AlreadyExists', 'AccessDenied', 'CompareFailed', 'LimitExceeded', 'ConnectionProblem', 'NotImplemented', 'Internal'];

/** What grpc-js does to an error's status on its way out and back in: headers, then parsed again. */
function overTheWire(err: ReturnType<typeof toGrpcError>) {
  const headers = { 'grpc-message': encodeURI(err.details), ...(err.metadata as Metadata).toHttp2Headers() };
  const metadata = Metadata.fromHttp2Headers(headers as Parameters<typeof Metadata.fromHttp2Headers>[0]);
  return { code: err.code, details: decodeURI(headers['grpc-message']), metadata, size: Object.entries(headers).reduce((n, [k, v]) => n + k.length + String(v).length, 0) };
}

describe('error encoding', () => {
  it('carries non-ASCII data and messages (the kind of value that used to throw inside the callback)', () => {
    const wire = toGrpcError(new BadParameterError('unknown kind "rôle" ✓ 👾', { kind: 'rôle', emoji: '👾' }));
    expect(wire.metadata?.get('keyway-error-kind')).toEqual(['BadParameter']);
    expect(Buffer.isBuffer(wire.metadata?.get(ERROR_DATA_HEADER)[0])).toBe(true);
    const back = fromGrpcError(overTheWire(wire));
    expect(back.kind).toBe('BadParameter');
    expect(back.message).toBe('unknown kind "rôle" ✓ 👾');
    expect(back.data).toEqual({ kind: 'rôle', emoji: '👾' });
  });

  it('encodes lone surrogates, cycles, BigInt and huge data without throwing, within the trailer bound', () => {
    const cyclic: Record<string, unknown> = { name: 'x' };
    cyclic['self'] = cyclic;
    const cases: KeywayError[] = [
      new NotFoundError('\uD800 lone \uDFFF', { s: '\uDBFF' }),
      new BadParameterError('cyclic', cyclic),
      new BadParameterError('bigint', { n: 10n } as unknown as Record<string, unknown>),
      new BadParameterError('x'.repeat(1_000_000), { problems: Array.from({ length: 10_000 }, (_, i) => ({ i, message: 'é'.repeat(50) })), source: 'input' }),
      new BadParameterError('€'.repeat(100_000)),
    ];
    for (const err of cases) {
      const wire = toGrpcError(err);
      expect(wire.code).not.toBe(status.INTERNAL);
      const back = overTheWire(wire);
      expect(encodeURI(back.details).length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_WIRE_BYTES);
      expect(back.size).toBeLessThan(8192);
      expect(fromGrpcError(back).kind).toBe(err.kind);
    }
    const huge = fromGrpcError(overTheWire(toGrpcError(cases[3] as KeywayError)));
    expect(huge.data).toMatchObject({ truncated: true, source: 'input' });
    expect(huge.message).toMatch(/…\(truncated\)$/);
  });

  it('a kind that is not in the table (a prototype key) becomes INTERNAL, not a throw', () => {
    const odd = new KeywayError('toString' as ErrorKind, 'odd');
    expect(toGrpcError(odd).code).toBe(status.INTERNAL);
  });

  it('reads garbage metadata back as a plain error of the status code', () => {
    for (const value of [Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('[1,2]'), Buffer.from('null'), Buffer.from('"s"')]) {
      const metadata = new Metadata();
      metadata.set(ERROR_DATA_HEADER, value);
      metadata.set('keyway-error-kind', 'constructor');
      const back = fromGrpcError({ code: status.NOT_FOUND, details: 'gone', metadata });
      expect(back.kind).toBe('NotFound');
      expect(back.data).toEqual({});
    }
  });

  it('property: any kind, message and JSON data survive encoding, or are bounded, and never throw', () => {
    fc.assert(
      fc.property(fc.constantFrom(...KINDS), fc.string({ unit: 'binary', maxLength: 3000 }), fc.dictionary(fc.string({ unit: 'binary', maxLength: 20 }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 8 }), (kind, message, data) => {
        const wire = toGrpcError(errorOfKind(kind, message, data));
        const back = overTheWire(wire);
        expect(back.size).toBeLessThan(8192);
        const err = fromGrpcError(back);
        expect(err.kind).toBe(kind);
        if (encodeURI(message.replace(/[\uD800-\uDFFF]/g, '')).length < 1000 && !/[\uD800-\uDFFF]/.test(message)) {
          expect(err.message).toBe(message || 'unknown error');
        }
        if (Buffer.byteLength(JSON.stringify(data)) < MAX_ERROR_DATA_BYTES / 2 && !/[\uD800-\uDFFF]/.test(JSON.stringify(data))) {
          expect(err.data).toEqual(JSON.parse(JSON.stringify(data)));
        }
      }),
      { seed: 1010, numRuns: 300 },
    );
  });
});
