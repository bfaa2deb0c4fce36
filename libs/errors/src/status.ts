import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { KeywayError, errorOfKind, type ErrorData, type ErrorKind } from './errors.js';

/** The one table that maps error kinds to wire status codes. */
const table: Record<ErrorKind, { grpc: GrpcStatus; http: number }> = {
  BadParameter: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400 },
  NotFound: { grpc: GrpcStatus.NOT_FOUND, http: 404 },
  AlreadyExists: { grpc: GrpcStatus.ALREADY_EXISTS, http: 409 },
  AccessDenied: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403 },
  CompareFailed: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 412 },
  LimitExceeded: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 429 },
  ConnectionProblem: { grpc: GrpcStatus.UNAVAILABLE, http: 502 },
  NotImplemented: { grpc: GrpcStatus.UNIMPLEMENTED, http: 501 },
  Internal: { grpc: GrpcStatus.INTERNAL, http: 500 },
};

const KIND_HEADER = 'keyway-error-kind';
/**
 * Error data travels as UTF-8 JSON in binary metadata: ASCII-only text metadata would refuse
 * (by throwing) any name or value an attacker chose. `-bin` values are base64 on the wire.
 */
export const ERROR_DATA_HEADER = 'keyway-error-data-bin';
/** The text header older servers sent; still read, never written. */
const LEGACY_DATA_HEADER = 'keyway-error-data';

/**
 * Bounds on what an error carries, so its trailers always fit a client's header list
 * (grpc-js and Go clients refuse trailers of more than 8 KiB by default, and a refused
 * trailer leaves the call hanging until its deadline). The message is bounded after
 * percent-encoding, which is how grpc-message travels.
 */
export const MAX_ERROR_MESSAGE_WIRE_BYTES = 4096;
export const MAX_ERROR_DATA_BYTES = 2048;

export function httpStatusOf(err: unknown): number {
  return err instanceof KeywayError && Object.hasOwn(table, err.kind) ? table[err.kind].http : 500;
}

export function grpcStatusOf(err: unknown): GrpcStatus {
  return err instanceof KeywayError && Object.hasOwn(table, err.kind) ? table[err.kind].grpc : GrpcStatus.INTERNAL;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** The string with lone surrogates replaced by U+FFFD (String#toWellFormed, ES2024). */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD');
}

/**
 * A message safe for grpc-message: well-formed UTF-16 (grpc-js percent-encodes it with
 * encodeURI, which throws on a lone surrogate) and bounded once encoded.
 */
export function wireSafeMessage(message: unknown): string {
  let text = wellFormed(typeof message === 'string' ? message : String(message));
  if (encodeURI(text).length <= MAX_ERROR_MESSAGE_WIRE_BYTES) return text;
  const suffix = ' …(truncated)';
  // Each UTF-16 unit encodes to at most 9 bytes (a 3-byte UTF-8 character); halve until it fits.
  let keep = Math.min(text.length, MAX_ERROR_MESSAGE_WIRE_BYTES);
  while (keep > 0 && encodeURI(wellFormed(text.slice(0, keep)) + suffix).length > MAX_ERROR_MESSAGE_WIRE_BYTES) {
    keep = Math.floor(keep / 2);
  }
  text = wellFormed(text.slice(0, keep));
  return text + suffix;
}

/**
 * The data as bounded JSON bytes: whole when it fits; else its short scalar fields (the ones
 * that name what failed) and `truncated: true`; never throws (cycles, BigInt, getters).
 */
export function encodeErrorData(data: ErrorData): Buffer | undefined {
  const tryJson = (v: unknown): Buffer | undefined => {
    try {
      const s = JSON.stringify(v);
      return typeof s === 'string' ? Buffer.from(wellFormed(s), 'utf8') : undefined;
    } catch {
      return undefined;
    }
  };
  let entries: [string, unknown][];
  try {
    entries = Object.entries(data ?? {});
  } catch {
    return undefined;
  }
  if (entries.length === 0) return undefined;
  const whole = tryJson(data);
  if (whole && whole.length <= MAX_ERROR_DATA_BYTES) return whole;
  const small: Record<string, unknown> = { truncated: true };
  for (const [k, v] of entries) {
    if (k.length > 64) continue;
    if (typeof v === 'number' || typeof v === 'boolean') small[k] = v;
    else if (typeof v === 'string') small[k] = v.length > 256 ? `${v.slice(0, 256)}…` : v;
  }
  const reduced = tryJson(small);
  return reduced && reduced.length <= MAX_ERROR_DATA_BYTES ? reduced : Buffer.from('{"truncated":true}');
}

/**
 * Turns any thrown value into a gRPC error, and never throws itself: an error of any content
 * (unicode, lone surrogates, huge or cyclic data) is encoded safely. Unknown errors become
 * INTERNAL with a generic message so internals do not leak to callers; the caller's log
 * keeps the original.
 */
export function toGrpcError(err: unknown): Partial<ServiceError> & { code: GrpcStatus; details: string } {
  try {
    if (err instanceof KeywayError && Object.hasOwn(table, err.kind)) {
      const metadata = new Metadata();
      metadata.set(KIND_HEADER, err.kind);
      const data = encodeErrorData(err.data);
      if (data) metadata.set(ERROR_DATA_HEADER, data);
      const details = wireSafeMessage(err.message);
      return { code: table[err.kind].grpc, details, message: details, metadata };
    }
  } catch {
    // Fall through to the generic answer: whatever went wrong above must not reach the caller.
  }
  const metadata = new Metadata();
  metadata.set(KIND_HEADER, 'Internal');
  return { code: GrpcStatus.INTERNAL, details: 'internal error', message: 'internal error', metadata };
}

const kindByGrpc = new Map<GrpcStatus, ErrorKind>(
  (Object.entries(table) as [ErrorKind, { grpc: GrpcStatus }][]).map(([kind, v]) => [v.grpc, kind]),
);

function decodeErrorData(raw: unknown): ErrorData | undefined {
  try {
    const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : typeof raw === 'string' ? raw : undefined;
    if (text === undefined || text.length > 4 * MAX_ERROR_DATA_BYTES) return undefined;
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as ErrorData) : undefined;
  } catch {
    return undefined;
  }
}

/** Rebuilds a typed error on the client side of a gRPC call; garbage metadata is ignored. */
export function fromGrpcError(err: unknown): KeywayError {
  if (err instanceof KeywayError) return err;
  const e = err as Partial<ServiceError>;
  if (typeof e?.code !== 'number') {
    return errorOfKind('Internal', err instanceof Error ? err.message : String(err));
  }
  const first = (key: string): unknown => {
    try {
      return e.metadata?.get(key)[0];
    } catch {
      return undefined;
    }
  };
  const header = first(KIND_HEADER);
  const kind: ErrorKind =
    typeof header === 'string' && Object.hasOwn(table, header)
      ? (header as ErrorKind)
      : e.code === GrpcStatus.UNAVAILABLE || e.code === GrpcStatus.DEADLINE_EXCEEDED
        ? 'ConnectionProblem'
        : (kindByGrpc.get(e.code) ?? 'Internal');
  const data = decodeErrorData(first(ERROR_DATA_HEADER)) ?? decodeErrorData(first(LEGACY_DATA_HEADER));
  const message = (typeof e.details === 'string' && e.details) || (typeof e.message === 'string' && e.message) || 'unknown error';
  return errorOfKind(kind, message, data);
}
