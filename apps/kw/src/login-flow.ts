import { AuthClient, THE_PROXY } from '@keyway/client';
import { BadParameterError } from '@keyway/errors';
import { generateKeyPair } from '@keyway/pki';
import { anonymousClient } from './connect.js';
import { loadProfile, saveProfile, type LoadedProfile, type Profile } from './profile.js';
import type { Prompter } from './prompt.js';
import { resolveConnector, ssoLogin } from './sso-login.js';

export interface LoginRequest {
  proxy: string;
  /** Local logins: the user name (default $USER). */
  user?: string;
  /** `local`, a connector name or kind, or undefined for the cluster's default. */
  auth?: string;
  /** SSO: `default`, a browser command, or `none` to print the URL. */
  browser: string;
  ttlSeconds: number;
  insecure: boolean;
  caPin?: string;
  /** The cluster's CAs from an earlier login: trusted as they are, no pin or --insecure needed. */
  knownCaPems?: string[];
}

export interface LoginIo {
  /** Where kw talks to the person (stderr: stdout may be kubectl's credential). */
  say(text: string): void;
  prompter(): Prompter;
}

/**
 * One login, as `kw login` does it and as `kw kube credentials` repeats it when a login has
 * expired: password + OTP against the proxy, or SSO through the browser. The key, certificate
 * and how the person logged in (to do it again the same way) are stored as the proxy's profile.
 */
export async function logIn(req: LoginRequest, io: LoginIo): Promise<LoadedProfile> {
  const connected = req.knownCaPems?.length
    ? { client: new AuthClient({ address: req.proxy, caPems: req.knownCaPems, serverName: THE_PROXY }), caPems: req.knownCaPems }
    : await anonymousClient(req.proxy, { insecure: req.insecure, ...(req.caPin ? { caPin: req.caPin } : {}) });
  const { client, caPems } = connected;
  const trust = { insecure: req.insecure, ...(caPems ? { caPems } : {}) };
  let connector: Awaited<ReturnType<typeof resolveConnector>>;
  try {
    connector = await resolveConnector(req.proxy, req.auth, trust);
  } catch (err) {
    client.close();
    throw err;
  }
  if (connector.kind !== 'local') {
    client.close();
    const key = generateKeyPair();
    const certs = await ssoLogin({
      proxy: req.proxy,
      trust,
      kind: connector.kind,
      connector: connector.name,
      publicKeyPem: key.publicKeyPem,
      ttlMs: req.ttlSeconds * 1000,
      browser: req.browser,
      say: (line) => io.say(line),
    });
    saveLogin(req, { auth: connector.name, browser: req.browser }, certs, key.privateKeyPem, caPems ?? [...certs.hostCaPems, ...certs.userCaPems]);
    return loadProfile(req.proxy);
  }
  const user = req.user ?? process.env['USER'];
  if (!user) {
    client.close();
    throw new BadParameterError('--user is required');
  }
  const prompter = io.prompter();
  try {
    const ping = await client.call('ping', {});
    const password = await prompter.ask(`Enter password for Keyway user ${user}:\n`, { secret: true });
    const totpCode = ping.secondFactor === 'otp' ? (await prompter.ask('Enter your OTP token:\n')).trim() : '';
    const key = generateKeyPair();
    const certs = await client.call('login', { user, password, totpCode, publicKeyPem: key.publicKeyPem, ttlSeconds: req.ttlSeconds, kubernetesCluster: '' });
    saveLogin(req, { auth: 'local' }, certs, key.privateKeyPem, caPems ?? [...certs.hostCaPems, ...certs.userCaPems]);
    return loadProfile(req.proxy);
  } finally {
    prompter.close();
    client.close();
  }
}

function existingKubeconfigRecord(proxy: string): Profile['kubeconfig'] {
  try {
    return loadProfile(proxy).profile.kubeconfig;
  } catch {
    return undefined;
  }
}

/** Stores a login's key and certificate as the proxy's profile. */
function saveLogin(req: LoginRequest, how: { auth: string; browser?: string }, certs: { username: string; clusterName: string; certPem: string }, keyPem: string, caPems: string[]): void {
  // Logging in again keeps the record of the kubeconfig entries kw wrote, for logout.
  const kubeconfig = existingKubeconfigRecord(req.proxy);
  saveProfile({
    profile: {
      proxy: req.proxy,
      user: certs.username,
      cluster: certs.clusterName,
      insecure: req.insecure,
      auth: how.auth,
      ...(how.browser && how.browser !== 'default' ? { browser: how.browser } : {}),
      ...(req.caPin ? { caPin: req.caPin } : {}),
      ...(kubeconfig ? { kubeconfig } : {}),
    },
    keyPem,
    certPem: certs.certPem,
    caPems,
  });
}
