import { AuthClient, THE_PROXY, trustOnPin } from '@keyway/client';
import { BadParameterError } from '@keyway/errors';
import type { LoadedProfile } from './profile.js';

/**
 * The auth API through the proxy (it relays the auth server's own TLS, so the auth server
 * sees kw's client certificate). Before login, the proxy's cluster is trusted by its CA
 * pin, or not verified at all with --insecure, as tsh --insecure.
 */
export async function anonymousClient(proxy: string, opts: { insecure: boolean; caPin?: string }): Promise<{ client: AuthClient; caPems?: string[] }> {
  if (opts.caPin) {
    const caPems = await trustOnPin(proxy, opts.caPin, THE_PROXY);
    return { client: new AuthClient({ address: proxy, caPems, serverName: THE_PROXY }), caPems };
  }
  if (opts.insecure) return { client: new AuthClient({ address: proxy, insecureSkipVerify: true, serverName: THE_PROXY }) };
  throw new BadParameterError(
    `cannot verify ${proxy}: pass --ca-pin=sha256:… (kwctl status prints the host CA pin) or --insecure to skip verification`,
  );
}

export function profileClient(p: LoadedProfile): AuthClient {
  return new AuthClient({ address: p.profile.proxy, identity: { privateKeyPem: p.keyPem, certPem: p.certPem, caPems: p.caPems }, serverName: THE_PROXY });
}
