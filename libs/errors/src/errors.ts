/**
 * Typed errors, in the spirit of Teleport's trace package: code raises the kind that
 * describes the failure and one place (./status.ts) maps kinds to gRPC and HTTP status.
 * Each error carries structured data so callers and logs need not parse messages.
 */
export type ErrorKind =
  | 'BadParameter'
  | 'NotFound'
  | 'AlreadyExists'
  | 'AccessDenied'
  | 'CompareFailed'
  | 'LimitExceeded'
  | 'ConnectionProblem'
  | 'NotImplemented'
  | 'Internal';

export type ErrorData = Record<string, unknown>;

export class KeywayError extends Error {
  readonly kind: ErrorKind;
  readonly data: ErrorData;

  constructor(kind: ErrorKind, message: string, data: ErrorData = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.data = data;
    this.name = `${kind}Error`;
  }
}

export class BadParameterError extends KeywayError {
  constructor(message: string, data?: ErrorData, options?: { cause?: unknown }) {
    super('BadParameter', message, data, options);
  }
}
export class NotFoundError extends KeywayError {
  constructor(message: string, data?: ErrorData, options?: { cause?: unknown }) {
    super('NotFound', message, data, options);
  }
}
export class AlreadyExistsError extends KeywayError {
  constructor(message: string, data?: ErrorData, options?: { cause?: unknown }) {
    super('AlreadyExists', message, data, options);
  }
}
export class AccessDeniedError extends KeywayError {
  constructor(message: string, data?: ErrorData, options?: { cause?: unknown }) {
    super('AccessDenied', message, data, options);
  }
}
export class CompareFailedError extends KeywayError {
  constructor(message: string, data?: ErrorData, options?: { cause?: unknown }) {
    super('CompareFailed', message, data, options);
  }
}
export class LimitExceededError extends KeywayError {
  constructor(message: string, data?: ErrorData, options?: { cause?: unknown }) {
    super('LimitExceeded', message, data, options);
  }
}
export class ConnectionProblemError extends KeywayError {
  constructor(message: string, data?: ErrorData, options?: { cause?: unknown }) {
    super('ConnectionProblem', message, data, options);
  }
}
export class NotImplementedError extends KeywayError {
  constructor(message: string, data?: ErrorData, options?: { cause?: unknown }) {
    super('NotImplemented', message, data, options);
  }
}

const constructors: Record<ErrorKind, new (m: string, d?: ErrorData) => KeywayError> = {
  BadParameter: BadParameterError,
  NotFound: NotFoundError,
  AlreadyExists: AlreadyExistsError,
  AccessDenied: AccessDeniedError,
  CompareFailed: CompareFailedError,
  LimitExceeded: LimitExceededError,
  ConnectionProblem: ConnectionProblemError,
  NotImplemented: NotImplementedError,
  Internal: class InternalError extends KeywayError {
    constructor(m: string, d?: ErrorData) {
      super('Internal', m, d);
    }
  },
};

/** Rebuilds a typed error from its kind, e.g. after it crossed the wire. */
export function errorOfKind(kind: ErrorKind, message: string, data?: ErrorData): KeywayError {
  return new constructors[kind](message, data);
}

export function isKind(err: unknown, kind: ErrorKind): err is KeywayError {
  return err instanceof KeywayError && err.kind === kind;
}

export const isNotFound = (err: unknown): err is NotFoundError => isKind(err, 'NotFound');
export const isAlreadyExists = (err: unknown): err is AlreadyExistsError => isKind(err, 'AlreadyExists');
export const isAccessDenied = (err: unknown): err is AccessDeniedError => isKind(err, 'AccessDenied');
export const isBadParameter = (err: unknown): err is BadParameterError => isKind(err, 'BadParameter');
export const isCompareFailed = (err: unknown): err is CompareFailedError => isKind(err, 'CompareFailed');
