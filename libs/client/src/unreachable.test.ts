import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { KeywayError } from '@keyway/errors';
import { THE_AUTH_SERVICE, THE_PROXY, callFailure } from './unreachable.js';

const grpcError = (code: status, details: string, kind?: string) => {
  const metadata = new Metadata();
  if (kind) metadata.set('keyway-error-kind', kind);
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
};

describe('callFailure', () => {
  it('keeps what the server said when it answered with a typed error', () => {
    const err = callFailure(grpcError(status.UNAVAILABLE, 'the auth service cannot reach its database (Postgres at db:5432): connection refused', 'ConnectionProblem'), THE_PROXY, 'p:3080', 15_000);
    expect(err).toBeInstanceOf(KeywayError);
    expect(err.message).toBe('the auth service cannot reach its database (Postgres at db:5432): connection refused');
  });

  it('never says a bare "internal error"', () => {
    const err = callFailure(grpcError(status.INTERNAL, 'internal error', 'Internal'), THE_PROXY, 'p:3080', 15_000);
    expect(err.kind).toBe('Internal');
    expect(err.message).toMatch(/^the auth service failed on this call \(an unexpected error, recorded in its log\); try again/);
  });

  it('turns grpc-js transport text into one sentence naming the server', () => {
    const refused = grpcError(status.UNAVAILABLE, 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:3080. Resolution note: ');
    expect(callFailure(refused, THE_PROXY, 'localhost:3080', 15_000).message).toBe(
      'cannot reach the Keyway proxy at localhost:3080: connection refused; check that it is running and that the address is right, then try again',
    );
    const cert = grpcError(status.UNAVAILABLE, 'No connection established. Last error: Error: the server presents a certificate of a Proxy, not of the auth service. Resolution note: ');
    expect(callFailure(cert, THE_AUTH_SERVICE, 'a:3025', 15_000).message).toBe(
      'cannot verify the auth service at a:3025: the server presents a certificate of a Proxy, not of the auth service; check the address and the CA pin',
    );
    const slow = grpcError(status.DEADLINE_EXCEEDED, 'Deadline exceeded after 15.001s');
    expect(callFailure(slow, THE_AUTH_SERVICE, 'a:3025', 15_000).message).toBe('the auth service at a:3025 did not answer within 15s: it may be overloaded or unreachable; try again shortly');
    for (const e of [refused, cert, slow]) expect(callFailure(e, THE_PROXY, 'x:1', 1000).kind).toBe('ConnectionProblem');
  });

  it('never shows the raw gRPC text for any transport failure', () => {
    for (const details of ['Connection dropped', 'Client network socket disconnected before secure TLS connection was established', 'read ECONNRESET', 'getaddrinfo ENOTFOUND nope']) {
      const msg = callFailure(grpcError(status.UNAVAILABLE, `No connection established. Last error: Error: ${details}. Resolution note: `), THE_PROXY, 'p:1', 1000).message;
      expect(msg).not.toMatch(/No connection established|Resolution note|Last error/);
      expect(msg).toMatch(/the Keyway proxy at p:1/);
    }
  });
});
