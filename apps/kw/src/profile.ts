import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeSecretFile } from '@keyway/client';
import { NotFoundError } from '@keyway/errors';

/**
 * What `kw login` keeps, per proxy, under $KW_HOME (default ~/.kw), as tsh does under ~/.tsh:
 *   current-profile                     the proxy of the active profile
 *   profiles/<proxy>/profile.json       proxy, user, Keyway cluster, kubeconfig bookkeeping
 *   profiles/<proxy>/key.pem            private key (0600)
 *   profiles/<proxy>/cert.pem           login certificate (0600)
 *   profiles/<proxy>/cas.pem            the host CA that signs the proxy's certificate
 *   profiles/<proxy>/kube/<name>.json   cached certificate routed to one kube cluster (0600)
 * The layout of the kube cache is also read by fast-credentials.ts, which must stay light.
 */
export interface Profile {
  proxy: string;
  user: string;
  cluster: string;
  insecure: boolean;
  caPin?: string;
  /** How the person logged in (`local` or the SSO connector's name), to log in again the same way. */
  auth?: string;
  /** The --browser of an SSO login, when it was not the default (e.g. `none`). */
  browser?: string;
  /** kubeconfig entries `kw kube login` wrote, and the context that was current before. */
  kubeconfig?: { path: string; clusters: string[]; contexts: string[]; users: string[]; previousContext?: string | null; createdFile?: boolean };
}

export function kwHome(env: NodeJS.ProcessEnv = process.env): string {
  return env['KW_HOME'] ?? join(homedir(), '.kw');
}

export function profileKey(proxy: string): string {
  return proxy.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function profileDir(proxy: string, env?: NodeJS.ProcessEnv): string {
  return join(kwHome(env), 'profiles', profileKey(proxy));
}

export function currentProxy(env?: NodeJS.ProcessEnv): string | undefined {
  const file = join(kwHome(env), 'current-profile');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined;
}

export interface LoadedProfile {
  profile: Profile;
  dir: string;
  keyPem: string;
  certPem: string;
  caPems: string[];
  expires: Date;
}

/** The profile for --proxy, or the current one; NotFound says to log in. */
export function loadProfile(proxy?: string, env?: NodeJS.ProcessEnv): LoadedProfile {
  const target = proxy ?? currentProxy(env);
  if (!target) throw new NotFoundError('not logged in: run `kw login --proxy=HOST:PORT --user=NAME`');
  const dir = profileDir(target, env);
  if (!existsSync(join(dir, 'profile.json'))) throw new NotFoundError(`not logged in to ${target}: run \`kw login --proxy=${target}\``);
  const profile = JSON.parse(readFileSync(join(dir, 'profile.json'), 'utf8')) as Profile;
  const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
  return {
    profile,
    dir,
    keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'),
    certPem,
    caPems: splitPems(readFileSync(join(dir, 'cas.pem'), 'utf8')),
    expires: new Date(new X509Certificate(certPem).validTo),
  };
}

export function saveProfile(p: { profile: Profile; keyPem?: string; certPem?: string; caPems?: string[] }, env?: NodeJS.ProcessEnv): string {
  const dir = profileDir(p.profile.proxy, env);
  // A new key (a new login) makes every cached kube certificate useless: they are for the old
  // key, and kubectl would be handed a certificate that does not match its key.
  if (p.keyPem) rmSync(join(dir, 'kube'), { recursive: true, force: true });
  mkdirSync(join(dir, 'kube'), { recursive: true, mode: 0o700 });
  writeSecretFile(join(dir, 'profile.json'), `${JSON.stringify(p.profile, null, 2)}\n`);
  if (p.keyPem) writeSecretFile(join(dir, 'key.pem'), p.keyPem);
  if (p.certPem) writeSecretFile(join(dir, 'cert.pem'), p.certPem);
  if (p.caPems) writeSecretFile(join(dir, 'cas.pem'), p.caPems.join(''));
  writeSecretFile(join(kwHome(env), 'current-profile'), `${p.profile.proxy}\n`);
  return dir;
}

export function removeProfile(proxy: string, env?: NodeJS.ProcessEnv): void {
  rmSync(profileDir(proxy, env), { recursive: true, force: true });
  if (currentProxy(env) === proxy) rmSync(join(kwHome(env), 'current-profile'), { force: true });
}

function splitPems(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
}
