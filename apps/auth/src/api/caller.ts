import { X509Certificate } from 'node:crypto';
import { AccessDeniedError, KeywayError } from '@keyway/errors';
import { verifyCertificate, type Identity } from '@keyway/pki';

/** Who is calling the API, as proven by the TLS client certificate (or nobody). */
export type Caller =
  | { kind: 'anonymous' }
  /** A person, with a certificate from the user CA. */
  | { kind: 'user'; identity: Identity }
  /** A Keyway component or the local admin, with a certificate from the host CA. */
  | { kind: 'host'; identity: Identity };

export interface CallerCas {
  userCa: X509Certificate;
  hostCa: X509Certificate;
}

/**
 * Identifies the caller from the DER client certificate the TLS layer saw. The TLS layer
 * requests but does not require a certificate (login and join have none), so the chain,
 * validity and CA are checked here.
 */
export function callerFromCertificate(der: Buffer | undefined, cas: CallerCas, now = new Date()): Caller {
  if (!der || der.length === 0) return { kind: 'anonymous' };
  try {
    if (new X509Certificate(der).checkIssued(cas.userCa)) {
      return { kind: 'user', identity: verifyCertificate(der, [cas.userCa], now) };
    }
    return { kind: 'host', identity: verifyCertificate(der, [cas.hostCa], now) };
  } catch (err) {
    if (err instanceof KeywayError) throw err;
    // A certificate this cluster cannot read is refused like one it did not issue.
    throw new AccessDeniedError('client certificate is not valid for this cluster', { reason: 'bad_certificate' }, { cause: err });
  }
}

export function requireAuthenticated(caller: Caller): Exclude<Caller, { kind: 'anonymous' }> {
  if (caller.kind === 'anonymous') {
    throw new AccessDeniedError('this call needs a client certificate: log in first, or pass --identity', { reason: 'no_certificate' });
  }
  return caller;
}

export function describeCaller(caller: Caller): string {
  switch (caller.kind) {
    case 'anonymous':
      return 'anonymous';
    case 'user':
      return `user "${caller.identity.username}"`;
    case 'host':
      return `${caller.identity.systemRoles.join(',') || 'host'} "${caller.identity.username}"`;
  }
}
