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
const DATA_HEADER = 'keyway-error-data';

export function httpStatusOf(err: unknown): number {
  return err instanceof KeywayError ? table[err.kind].http : 500;
}

export function grpcStatusOf(err: unknown): GrpcStatus {
  return err instanceof KeywayError ? table[err.kind].grpc : GrpcStatus.INTERNAL;
}

/**
 * Turns any thrown value into a gRPC error. Unknown errors become INTERNAL with a generic
 * message so internals do not leak to callers; the caller's log keeps the original.
 */
export function toGrpcError(err: unknown): Partial<ServiceError> & { code: GrpcStatus; details: string } {
  const metadata = new Metadata();
  if (err instanceof KeywayError) {
    metadata.set(KIND_HEADER, err.kind);
    if (Object.keys(err.data).length > 0) metadata.set(DATA_HEADER, JSON.stringify(err.data));
    return { code: table[err.kind].grpc, details: err.message, message: err.message, metadata };
  }
  metadata.set(KIND_HEADER, 'Internal');
  return { code: GrpcStatus.INTERNAL, details: 'internal error', message: 'internal error', metadata };
}

const kindByGrpc = new Map<GrpcStatus, ErrorKind>(
  (Object.entries(table) as [ErrorKind, { grpc: GrpcStatus }][]).map(([kind, v]) => [v.grpc, kind]),
);

/** Rebuilds a typed error on the client side of a gRPC call. */
export function fromGrpcError(err: unknown): KeywayError {
  if (err instanceof KeywayError) return err;
  const e = err as Partial<ServiceError>;
  if (typeof e?.code !== 'number') {
    return errorOfKind('Internal', err instanceof Error ? err.message : String(err));
  }
  const header = e.metadata?.get(KIND_HEADER)[0];
  const kind: ErrorKind =
    typeof header === 'string' && header in table
      ? (header as ErrorKind)
      : e.code === GrpcStatus.UNAVAILABLE || e.code === GrpcStatus.DEADLINE_EXCEEDED
        ? 'ConnectionProblem'
        : (kindByGrpc.get(e.code) ?? 'Internal');
  let data: ErrorData | undefined;
  const raw = e.metadata?.get(DATA_HEADER)[0];
  if (typeof raw === 'string') {
    try {
      data = JSON.parse(raw) as ErrorData;
    } catch {
      data = undefined;
    }
  }
  const message = e.details || e.message || 'unknown error';
  return errorOfKind(kind, message, data);
}
