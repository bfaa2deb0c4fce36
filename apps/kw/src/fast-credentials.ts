/**
 * The hot path of `kw kube credentials`, which kubectl runs on every call: a cached
 * certificate with more than a minute left is printed without loading anything but
 * node:fs. Everything else (issuing, locking, errors) is in commands/kube.ts.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface CachedKubeCert {
  certPem: string;
  /** NotAfter, ms since the epoch. */
  expires: number;
}

export const REFRESH_MARGIN_MS = 60_000;

export function kubeCachePath(home: string, proxy: string, kubeCluster: string): string {
  return join(home, 'profiles', proxy.replace(/[^A-Za-z0-9._-]/g, '_'), 'kube', `${kubeCluster.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
}

export function execCredential(certPem: string, keyPem: string, expires: number, env: NodeJS.ProcessEnv = process.env): string {
  let apiVersion = 'client.authentication.k8s.io/v1beta1';
  const info = env['KUBERNETES_EXEC_INFO'];
  if (info) {
    try {
      apiVersion = (JSON.parse(info) as { apiVersion?: string }).apiVersion ?? apiVersion;
    } catch {
      // kubectl always sends valid JSON; anything else keeps the default
    }
  }
  return `${JSON.stringify({
    apiVersion,
    kind: 'ExecCredential',
    spec: { interactive: false },
    status: {
      clientCertificateData: certPem,
      clientKeyData: keyPem,
      expirationTimestamp: new Date(expires - REFRESH_MARGIN_MS).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    },
  })}\n`;
}

/** Prints the cached credential and returns true, or returns false when it must be issued. */
export function tryCachedCredentials(argv: string[], env: NodeJS.ProcessEnv = process.env): boolean {
  const flag = (name: string) => {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i] as string;
      if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
      if (a === `--${name}`) return argv[i + 1];
    }
    return undefined;
  };
  const kubeCluster = flag('kube-cluster');
  const proxy = flag('proxy');
  if (!kubeCluster || !proxy) return false;
  const home = env['KW_HOME'] ?? join(homedir(), '.kw');
  try {
    const cached = JSON.parse(readFileSync(kubeCachePath(home, proxy, kubeCluster), 'utf8')) as CachedKubeCert;
    if (cached.expires - Date.now() <= REFRESH_MARGIN_MS) return false;
    const keyPem = readFileSync(join(home, 'profiles', proxy.replace(/[^A-Za-z0-9._-]/g, '_'), 'key.pem'), 'utf8');
    process.stdout.write(execCredential(cached.certPem, keyPem, cached.expires, env));
    return true;
  } catch {
    return false;
  }
}
