import { X509Certificate } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { AccessDeniedError } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import { decodeIdentity, generateKeyPair, type Identity, type SystemRole } from '@keyway/pki';
import { AuthClient, trustOnPin } from './auth-client.js';
import type { IdentityFile } from './identity-file.js';
import type { IdentityStore } from './identity-store.js';
import { untilReachable } from './wait.js';

/** A host's (proxy's, agent's) certificate, key, and the cluster's CA certificates. */
export interface HostCredentials {
  privateKeyPem: string;
  certPem: string;
  hostCaPems: string[];
  userCaPems: string[];
  identity: Identity;
}

export interface HostJoinOptions {
  /** host:port of the auth server, or of a proxy that relays to it. */
  authAddr: string;
  token: string;
  role: Extract<SystemRole, 'Kube' | 'Proxy'>;
  /** Where the credentials are kept between restarts. */
  store: IdentityStore;
  /** Accepted host CA pins (sha256:<hex>); with none, the first contact is trusted, with a warning. */
  caPins: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  logger: Logger;
  /** What the wait for an unreachable auth service names (default "the auth service at <authAddr>"); an agent joins through a proxy. */
  waitFor?: string;
  /** Ends the wait (SIGTERM while still waiting). */
  signal?: AbortSignal;
}

const CA_ORG = { host: 'keyway host CA', user: 'keyway user CA' };

/**
 * Loads the host's stored credentials, or joins the cluster with the token to get them (and
 * stores them). Stored credentials that expire within a minute, or are for another role,
 * are replaced by joining again.
 */
export async function loadOrJoin(o: HostJoinOptions): Promise<HostCredentials> {
  const stored = await o.store.load();
  let previous: HostCredentials | undefined;
  if (stored) {
    const creds = fromIdentityFile(stored);
    const sameRole = creds.identity.systemRoles.includes(o.role);
    if (sameRole && creds.identity.expires.getTime() > Date.now() + 60_000) {
      o.logger.info({ hostId: creds.identity.username, expires: creds.identity.expires, from: o.store.location }, 'loaded host credentials');
      return creds;
    }
    // A certificate that is still valid proves the host id: the join call presents it.
    if (sameRole && creds.identity.expires.getTime() > Date.now() + 5_000) previous = creds;
    o.logger.warn(
      { from: o.store.location, hostId: creds.identity.username, keepsId: previous !== undefined },
      previous ? 'stored host credentials expire soon: joining again with them, to keep the host id' : 'stored host credentials are expired or for another role: joining again under a new host id',
    );
  }
  // A host may start before the auth service (or while it restarts): it waits, saying so.
  return untilReachable(() => join(o, previous), { what: o.waitFor ?? `the auth service at ${o.authAddr}`, logger: o.logger, ...(o.signal ? { signal: o.signal } : {}) });
}

/** Joins with the token; with still-valid previous credentials presented, auth keeps their host id. */
async function join(o: HostJoinOptions, previous: HostCredentials | undefined): Promise<HostCredentials> {
  const caPems = await learnCas(o);
  const client = new AuthClient({ address: o.authAddr, caPems, ...(previous ? { identity: toIdentityFile(previous) } : {}) });
  try {
    const key = generateKeyPair();
    const joined = await client.call('join', {
      token: o.token,
      publicKeyPem: key.publicKeyPem,
      role: o.role,
      hostId: previous?.identity.username ?? '',
      nodeName: osHostname(),
      dnsNames: o.dnsNames ?? [],
      ipAddresses: o.ipAddresses ?? [],
    });
    const creds = build(key.privateKeyPem, joined.certPem, joined.hostCaPems, joined.userCaPems);
    await o.store.save(toIdentityFile(creds));
    o.logger.info({ hostId: creds.identity.username, role: o.role, expires: creds.identity.expires }, 'joined the cluster');
    return creds;
  } finally {
    client.close();
  }
}

async function learnCas(o: HostJoinOptions): Promise<string[]> {
  if (o.caPins.length > 0) {
    for (const pin of o.caPins) {
      try {
        return await trustOnPin(o.authAddr, pin);
      } catch (err) {
        if (!(err instanceof AccessDeniedError)) throw err;
      }
    }
    throw new AccessDeniedError(`the auth server at ${o.authAddr} presents none of the pinned CAs`);
  }
  const bootstrap = new AuthClient({ address: o.authAddr, insecureSkipVerify: true });
  try {
    const ping = await bootstrap.call('ping', {});
    o.logger.warn({ authAddr: o.authAddr }, 'no ca_pin configured: trusting the CA the server presented on first contact');
    return ping.certAuthorities.map((ca) => ca.certPem);
  } finally {
    bootstrap.close();
  }
}

/** Renews the credentials through the auth server, keeping the same host id. */
export async function renewHostCredentials(
  authAddr: string,
  current: HostCredentials,
  opts: { store?: IdentityStore; dnsNames?: string[]; ipAddresses?: string[] } = {},
): Promise<HostCredentials> {
  const client = new AuthClient({ address: authAddr, identity: toIdentityFile(current), caPems: current.hostCaPems });
  try {
    const key = generateKeyPair();
    const r = await client.call('renewHostCert', { publicKeyPem: key.publicKeyPem, dnsNames: opts.dnsNames ?? [], ipAddresses: opts.ipAddresses ?? [] });
    const creds = build(key.privateKeyPem, r.certPem, r.hostCaPems, r.userCaPems);
    await opts.store?.save(toIdentityFile(creds));
    return creds;
  } finally {
    client.close();
  }
}

/** When to renew: once two thirds of the certificate's life have passed. */
export function renewalDelayMs(creds: HostCredentials, now = Date.now()): number {
  const notBefore = creds.identity.issuedAt?.getTime() ?? now;
  const lifetime = creds.identity.expires.getTime() - notBefore;
  return Math.max(0, notBefore + (lifetime * 2) / 3 - now);
}

export function toIdentityFile(c: HostCredentials): IdentityFile {
  return { privateKeyPem: c.privateKeyPem, certPem: c.certPem, caPems: [...c.hostCaPems, ...c.userCaPems] };
}

export function fromIdentityFile(f: IdentityFile): HostCredentials {
  const orgOf = (pem: string) => new X509Certificate(pem).subject;
  return build(
    f.privateKeyPem,
    f.certPem,
    f.caPems.filter((p) => orgOf(p).includes(`O=${CA_ORG.host}`)),
    f.caPems.filter((p) => orgOf(p).includes(`O=${CA_ORG.user}`)),
  );
}

function build(privateKeyPem: string, certPem: string, hostCaPems: string[], userCaPems: string[]): HostCredentials {
  return { privateKeyPem, certPem, hostCaPems, userCaPems, identity: decodeIdentity(certPem) };
}
