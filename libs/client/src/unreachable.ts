import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { ConnectionProblemError, errorOfKind, fromGrpcError, type KeywayError } from '@keyway/errors';

/** What grpc-js puts in `details` when a connection failed, and what to tell the user. */
const TRANSPORT: [RegExp, string, (server: string, address: string) => string][] = [
  [/ECONNREFUSED/, 'connection refused', (s, a) => `cannot reach ${s} at ${a}: connection refused; check that it is running and that the address is right, then try again`],
  [/ENOTFOUND|EAI_AGAIN/, 'host not found', (s, a) => `cannot reach ${s} at ${a}: the host name does not resolve; check the address`],
  [/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/, 'network unreachable', (s, a) => `cannot reach ${s} at ${a}: the network does not get through; check the address and the network`],
  [
    /socket disconnected before secure TLS|Connection dropped|ECONNRESET|Socket closed|EPIPE|Premature close|socket hang up/i,
    'connection closed before an answer',
    (s, a) =>
      s === THE_PROXY
        ? `the Keyway proxy at ${a} is up but could not pass the call on to the auth service (down or restarting); try again shortly, or ask your Keyway administrator to check the auth service`
        : `${s} at ${a} closed the connection before answering: it may be restarting; try again shortly`,
  ],
];

/**
 * The same sentences for a plain socket or HTTPS request that failed (kw's calls to the
 * proxy's web API): undefined when the error is not a transport failure. `server` is named as
 * the one that answers itself, so a reset is not blamed on a service behind it.
 */
export function transportFailure(err: unknown, server: string, address: string): ConnectionProblemError | undefined {
  const e = err as { message?: unknown; code?: unknown };
  const text = `${String(e?.code ?? '')} ${String(e?.message ?? '')}`;
  for (const [re, reason, say] of TRANSPORT) {
    if (re.test(text)) return new ConnectionProblemError(say(server === THE_PROXY && reason === 'connection closed before an answer' ? 'the Keyway proxy (web API)' : server, address), { address, reason });
  }
  return undefined;
}

/** How kw names the server it talks to (its calls are relayed by the proxy to auth). */
export const THE_PROXY = 'the Keyway proxy';
export const THE_AUTH_SERVICE = 'the auth service';

/**
 * A failed call as the user should read it: an error the server raised keeps its typed
 * message; a call that never reached a server (refused, reset, timed out) becomes one
 * sentence that names the server it could not reach and what to do, instead of grpc-js's
 * "No connection established. Last error: …".
 */
export function callFailure(err: unknown, server: string, address: string, timeoutMs: number): KeywayError {
  const e = err as Partial<ServiceError>;
  // The server answered with a typed error: its message is already meant for the user.
  const kind = e?.metadata?.get('keyway-error-kind')[0];
  if (kind === 'Internal') {
    // An unexpected failure on the server, whose message is kept from callers on purpose.
    return errorOfKind(
      'Internal',
      "the auth service failed on this call (an unexpected error, recorded in its log); try again, or ask your Keyway administrator to check the auth service's log",
    );
  }
  if (kind !== undefined) return fromGrpcError(err);
  const details = `${e?.details ?? ''} ${e?.message ?? ''}`;
  if (e?.code === GrpcStatus.UNAVAILABLE || e?.code === GrpcStatus.INTERNAL || e?.code === GrpcStatus.UNKNOWN) {
    for (const [re, reason, say] of TRANSPORT) if (re.test(details)) return new ConnectionProblemError(say(server, address), { address, reason });
    if (e.code === GrpcStatus.UNAVAILABLE) {
      const reason = lastError(e.details ?? '');
      if (/certificate|self[- ]signed|unable to verify|not of the auth service|does not match|handshake/i.test(reason)) {
        return new ConnectionProblemError(`cannot verify ${server} at ${address}: ${reason}; check the address and the CA pin`, { address, reason });
      }
      return new ConnectionProblemError(`cannot reach ${server} at ${address}: ${reason || 'unavailable'}; try again shortly`, { address, reason: reason || 'unavailable' });
    }
  }
  if (e?.code === GrpcStatus.DEADLINE_EXCEEDED) {
    return new ConnectionProblemError(`${server} at ${address} did not answer within ${Math.round(timeoutMs / 1000)}s: it may be overloaded or unreachable; try again shortly`, {
      address,
      reason: 'no answer in time',
    });
  }
  return fromGrpcError(err);
}

/** grpc-js's "No connection established. Last error: Error: X. Resolution note: …" → "X". */
function lastError(details: string): string {
  const m = /Last error: (?:\w*Error: )?(.*?)(?:\.? Resolution note:.*)?$/s.exec(details);
  return (m?.[1] ?? details).trim();
}
