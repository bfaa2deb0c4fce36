import { Readable } from 'node:stream';
import { KeywayError } from '@keyway/errors';
import { kubeStatus, type KubeStatus } from '@keyway/kube';
import type { KubeResponse } from '@keyway/tunnel';

/** What went wrong between the forwarder and an API server, in words that name no address. */
export interface UpstreamFailure {
  status: KubeStatus;
  /** Retry-After for the client, in seconds. */
  retryAfterSeconds?: number;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL']);
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'KEYWAY_UPSTREAM_TIMEOUT']);
const CLOSED = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

/**
 * The Kubernetes Status for a request that failed before its response began. The message
 * says which cluster and what kind of failure; the API server's address, the TLS library's
 * text and the like stay in the agent's log (the caller logs `err`), never in the answer.
 */
export function upstreamFailure(err: unknown, cluster: string): UpstreamFailure {
  if (err instanceof KeywayError && err.kind === 'LimitExceeded') {
    return { status: kubeStatus(429, 'TooManyRequests', `keyway: cluster "${cluster}": ${err.message}`, { retryAfterSeconds: 1 }), retryAfterSeconds: 1 };
  }
  const code = errorCode(err);
  const name = `the Kubernetes API server of cluster "${cluster}"`;
  if (code !== undefined && UNREACHABLE.has(code)) {
    // No Retry-After header: client-go would retry silently for up to 50 s before saying anything.
    return { status: kubeStatus(503, 'ServiceUnavailable', `keyway: ${name} is not reachable from its agent (${describe(code)}); try again shortly`, { retryAfterSeconds: 5 }) };
  }
  if (code !== undefined && TIMEOUTS.has(code)) {
    return { status: kubeStatus(504, 'Timeout', `keyway: ${name} did not answer in time (${describe(code)})`) };
  }
  if (isTlsError(err, code)) {
    return { status: kubeStatus(502, 'InternalError', `keyway: the agent could not set up a trusted TLS connection to ${name}; its log names the reason`) };
  }
  if (code !== undefined && CLOSED.has(code)) {
    return { status: kubeStatus(502, 'InternalError', `keyway: ${name} closed the connection before answering`) };
  }
  return { status: kubeStatus(502, 'InternalError', `keyway: the request to ${name} failed; the agent's log names the reason`) };
}

/** A whole-body response carrying the failure, as the tunnel and the kube handler expect one. */
export function failureResponse(failure: UpstreamFailure): KubeResponse {
  const body = Buffer.from(JSON.stringify(failure.status));
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(body.length) };
  if (failure.retryAfterSeconds !== undefined) headers['retry-after'] = String(failure.retryAfterSeconds);
  return {
    head: { status: failure.status.code, headers },
    takeWhole: () => body,
    get body() {
      return Readable.from([body]);
    },
  };
}

/** The error a response body ends with when the API server breaks off mid-response: no internals. */
export function truncatedResponseError(cluster: string): Error {
  return new Error(`the Kubernetes API server of cluster "${cluster}" ended the response early`);
}

/** An error raised by the forwarder's own deadline (upgrades). */
export function upstreamTimeoutError(): Error {
  return Object.assign(new Error('no answer from the API server in time'), { code: 'KEYWAY_UPSTREAM_TIMEOUT' });
}

function errorCode(err: unknown): string | undefined {
  // undici wraps the socket's error as `cause`; an AggregateError (happy eyeballs) holds several.
  for (let e = err as { code?: unknown; cause?: unknown; errors?: unknown[] } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string') return e.code;
    if (Array.isArray(e.errors) && e.errors.length > 0) return errorCode(e.errors[0]);
  }
  return undefined;
}

function isTlsError(err: unknown, code: string | undefined): boolean {
  if (code && (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|HOSTNAME/.test(code))) return true;
  const message = err instanceof Error ? err.message : '';
  return /SSL routines|wrong version number|alert|certificate/i.test(message);
}

function describe(code: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'its name does not resolve';
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connecting timed out';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'KEYWAY_UPSTREAM_TIMEOUT':
      return 'no response headers';
    case 'UND_ERR_BODY_TIMEOUT':
      return 'the response stalled';
    default:
      return 'network unreachable';
  }
}
