import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { BadParameterError } from '@keyway/errors';
import type { Logger } from '@keyway/log';

/**
 * Reads proxy_service.https_keypairs: each certificate (with its chain) and its key, checked to
 * belong together, so a wrong file is refused at start with its name instead of failing TLS later.
 */
export interface HttpsKeyPairFiles {
  cert_file: string;
  key_file: string;
}

export interface HttpsKeyPair {
  certPem: string;
  keyPem: string;
}

export function readHttpsKeyPairs(entries: readonly HttpsKeyPairFiles[]): HttpsKeyPair[] {
  return entries.map(({ cert_file, key_file }) => {
    const read = (file: string) => {
      try {
        return readFileSync(file, 'utf8');
      } catch (err) {
        throw new BadParameterError(`https_keypairs: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file });
      }
    };
    const certPem = read(cert_file);
    const keyPem = read(key_file);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch {
      throw new BadParameterError(`https_keypairs: ${cert_file} is not a PEM certificate`, { file: cert_file });
    }
    let key;
    try {
      key = createPrivateKey(keyPem);
    } catch {
      throw new BadParameterError(`https_keypairs: ${key_file} is not a PEM private key`, { file: key_file });
    }
    if (!cert.checkPrivateKey(key)) throw new BadParameterError(`https_keypairs: ${key_file} is not the key of ${cert_file}`, { cert_file, key_file });
    return { certPem, keyPem };
  });
}

/**
 * The web route's certificate by the name the client asks for (SNI): a publicly trusted
 * https_keypairs entry whose certificate covers the name, else the cluster's own host
 * certificate (kw and agents dialling an address, or an internal name, verify that one).
 * Replaceable while serving: a renewed certificate applies to the next handshake.
 */
export class WebCertificates {
  private contexts: { cert: X509Certificate; context: tls.SecureContext }[] = [];

  constructor(pairs: readonly HttpsKeyPair[]) {
    this.set(pairs);
  }

  set(pairs: readonly HttpsKeyPair[]): void {
    this.contexts = pairs.map((p) => ({ cert: new X509Certificate(p.certPem), context: tls.createSecureContext({ cert: p.certPem, key: p.keyPem }) }));
  }

  readonly sniCallback = (name: string, done: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    const match = this.contexts.find((c) => c.cert.checkHost(name) !== undefined);
    done(null, match?.context);
  };
}

/**
 * Teleport's https_keypairs_reload_interval: the files are read again every interval, so a
 * certificate renewed on disk (cert-manager, certbot) is served without a restart. A file that
 * cannot be read, or a key that is not its certificate's, keeps the pairs already served and
 * says so once per distinct problem. Returns the stop.
 */
export function reloadHttpsKeyPairs(o: { files: readonly HttpsKeyPairFiles[]; intervalMs: number; apply(pairs: HttpsKeyPair[]): void; logger: Logger; initial: readonly HttpsKeyPair[] }): () => void {
  if (o.intervalMs <= 0 || o.files.length === 0) return () => undefined;
  let served = JSON.stringify(o.initial);
  let lastProblem = '';
  const timer = setInterval(() => {
    let pairs: HttpsKeyPair[];
    try {
      pairs = readHttpsKeyPairs(o.files);
    } catch (err) {
      const problem = (err as Error).message;
      if (problem !== lastProblem) o.logger.warn({ problem }, 'https_keypairs not reloaded; still serving the certificates read before');
      lastProblem = problem;
      return;
    }
    lastProblem = '';
    const text = JSON.stringify(pairs);
    if (text === served) return;
    try {
      o.apply(pairs);
    } catch (err) {
      o.logger.warn({ problem: (err as Error).message }, 'https_keypairs not reloaded; still serving the certificates read before');
      return;
    }
    served = text;
    o.logger.info({ files: o.files.map((f) => f.cert_file) }, 'https_keypairs reloaded');
  }, o.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
