import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BadParameterError } from '@keyway/errors';
import type { IdentityFile } from './identity-file.js';

/**
 * A person's `kw login`, read from the files kw writes under $KW_HOME (default ~/.kw):
 * `current-profile` names the proxy, and `profiles/<proxy>/` holds profile.json, key.pem,
 * cert.pem and cas.pem. Other tools (kwctl, as tctl uses tsh's profile) read it here rather
 * than through kw, because apps never import apps.
 */
export interface KwLogin {
  /** host:port of the proxy the person logged in through. */
  proxy: string;
  user: string;
  identity: IdentityFile;
  expires: Date;
  dir: string;
}

export function kwHomeDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['KW_HOME'] || join(homedir(), '.kw');
}

/** The directory name kw gives a proxy's profile. */
export function kwProfileKey(proxy: string): string {
  return proxy.replace(/[^A-Za-z0-9._-]/g, '_');
}

/**
 * The current kw login, or undefined when there is none (no current-profile, or its profile
 * was removed by `kw logout`). Files that exist but cannot be read are an error naming the
 * file, so a broken profile is not silently passed over.
 */
export function readKwLogin(env: NodeJS.ProcessEnv = process.env): KwLogin | undefined {
  const home = kwHomeDir(env);
  const current = join(home, 'current-profile');
  if (!existsSync(current)) return undefined;
  const proxy = readFileSync(current, 'utf8').trim();
  if (!proxy) return undefined;
  const dir = join(home, 'profiles', kwProfileKey(proxy));
  if (!existsSync(join(dir, 'profile.json'))) return undefined;
  const read = (file: string) => {
    try {
      return readFileSync(join(dir, file), 'utf8');
    } catch (err) {
      throw new BadParameterError(`the kw profile in ${dir} is incomplete (${file}: ${(err as Error).message}); run \`kw login --proxy=${proxy}\` again`, { dir, file });
    }
  };
  let profile: { proxy?: unknown; user?: unknown };
  try {
    profile = JSON.parse(read('profile.json')) as { proxy?: unknown; user?: unknown };
  } catch (err) {
    if (err instanceof BadParameterError) throw err;
    throw new BadParameterError(`${join(dir, 'profile.json')} is not valid JSON; run \`kw login --proxy=${proxy}\` again`, { dir });
  }
  const certPem = read('cert.pem');
  let expires: Date;
  try {
    expires = new Date(new X509Certificate(certPem).validTo);
  } catch {
    throw new BadParameterError(`${join(dir, 'cert.pem')} is not a certificate; run \`kw login --proxy=${proxy}\` again`, { dir });
  }
  return {
    proxy: typeof profile.proxy === 'string' && profile.proxy ? profile.proxy : proxy,
    user: typeof profile.user === 'string' ? profile.user : '',
    identity: { privateKeyPem: read('key.pem'), certPem, caPems: read('cas.pem').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [] },
    expires,
    dir,
  };
}
