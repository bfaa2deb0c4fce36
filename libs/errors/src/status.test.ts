import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AccessDeniedError, CompareFailedError, KeywayError, NotFoundError } from './errors.js';
import { fromGrpcError, grpcStatusOf, httpStatusOf, toGrpcError } from './status.js';

describe('error status mapping', () => {
  it('maps kinds to gRPC and HTTP codes', () => {
    expect(grpcStatusOf(new NotFoundError('x'))).toBe(status.NOT_FOUND);
    expect(httpStatusOf(new AccessDeniedError('x'))).toBe(403);
    expect(httpStatusOf(new CompareFailedError('x'))).toBe(412);
    expect(grpcStatusOf(new Error('boom'))).toBe(status.INTERNAL);
  });

  it('round-trips kind, message and data across the wire', () => {
    const wire = toGrpcError(new CompareFailedError('role changed', { name: 'dev', revision: 3 }));
    const back = fromGrpcError(wire);
    expect(back).toBeInstanceOf(KeywayError);
    expect(back.kind).toBe('CompareFailed');
    expect(back.message).toBe('role changed');
    expect(back.data).toEqual({ name: 'dev', revision: 3 });
  });

  it('hides the message of unexpected errors', () => {
    const wire = toGrpcError(new Error('password=hunter2 in stack'));
    expect(wire.details).toBe('internal error');
  });

  it('treats transport failures as connection problems', () => {
    expect(fromGrpcError({ code: status.UNAVAILABLE, details: 'No connection established' }).kind).toBe('ConnectionProblem');
  });
});
