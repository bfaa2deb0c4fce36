import { KeywayError } from '@keyway/errors';

/** `Status.reason` values Keyway answers with (metav1.StatusReason). */
export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'Conflict'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Timeout';

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** metav1.StatusDetails. */
export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** A Kubernetes `Status` as the API server sends it with an error response. */
export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  details?: StatusDetails;
  code: number;
}

/** The reason kube-apiserver uses for an HTTP status code. */
export function statusReasonForCode(code: number): StatusReason {
  switch (code) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 409:
      return 'Conflict';
    case 429:
      return 'TooManyRequests';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'Timeout';
    default:
      return 'InternalError';
  }
}

/**
 * Builds the `Status` object kubectl prints as `Error from server (<reason>): <message>`.
 * Send it as `application/json` with the same HTTP status as `code`.
 */
export function kubeStatus(code: number, reason: StatusReason, message: string, details?: StatusDetails): KubeStatus {
  const status: KubeStatus = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details !== undefined) status.details = details;
  return status;
}

/**
 * A `Status` for any thrown value: typed Keyway errors keep their message (AccessDenied → 403
 * Forbidden, NotFound → 404, BadParameter → 400, LimitExceeded → 429, ConnectionProblem → 503
 * ServiceUnavailable); anything else is a generic 500 so internals do not leak.
 */
export function kubeStatusFromError(err: unknown): KubeStatus {
  if (!(err instanceof KeywayError)) return kubeStatus(500, 'InternalError', 'internal error');
  const code = (
    {
      BadParameter: 400,
      NotFound: 404,
      AlreadyExists: 409,
      AccessDenied: 403,
      CompareFailed: 409,
      LimitExceeded: 429,
      ConnectionProblem: 503,
      NotImplemented: 501,
      Internal: 500,
    } as const
  )[err.kind];
  return kubeStatus(code, statusReasonForCode(code), code === 500 ? 'internal error' : err.message);
}
