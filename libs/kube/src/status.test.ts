import { describe, expect, it } from 'vitest';
import { AccessDeniedError, BadParameterError, ConnectionProblemError, LimitExceededError, NotFoundError } from '@keyway/errors';
import { kubeStatus, kubeStatusFromError, statusReasonForCode } from './status.js';

describe('kubeStatus', () => {
  it('builds a Kubernetes Status', () => {
    expect(kubeStatus(403, 'Forbidden', 'keyway: no')).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'keyway: no',
      reason: 'Forbidden',
      code: 403,
    });
    expect(kubeStatus(404, 'NotFound', 'kubernetes cluster "x" not found', { name: 'x', kind: 'kube_cluster' })).toMatchObject({
      code: 404,
      reason: 'NotFound',
      details: { name: 'x', kind: 'kube_cluster' },
    });
  });

  it.each([
    [400, 'BadRequest'],
    [401, 'Unauthorized'],
    [403, 'Forbidden'],
    [404, 'NotFound'],
    [429, 'TooManyRequests'],
    [500, 'InternalError'],
    [502, 'InternalError'],
    [503, 'ServiceUnavailable'],
  ])('reason for %d is %s', (code, reason) => {
    expect(statusReasonForCode(code)).toBe(reason);
  });

  it('maps typed errors and hides untyped ones', () => {
    expect(kubeStatusFromError(new AccessDeniedError('denied'))).toMatchObject({ code: 403, reason: 'Forbidden', message: 'denied' });
    expect(kubeStatusFromError(new NotFoundError('gone'))).toMatchObject({ code: 404, reason: 'NotFound', message: 'gone' });
    expect(kubeStatusFromError(new BadParameterError('bad path'))).toMatchObject({ code: 400, reason: 'BadRequest', message: 'bad path' });
    expect(kubeStatusFromError(new LimitExceededError('slow down'))).toMatchObject({ code: 429, reason: 'TooManyRequests' });
    expect(kubeStatusFromError(new ConnectionProblemError('agent away'))).toMatchObject({ code: 503, reason: 'ServiceUnavailable' });
    expect(kubeStatusFromError(new Error('secret stack detail'))).toMatchObject({ code: 500, reason: 'InternalError', message: 'internal error' });
  });
});
