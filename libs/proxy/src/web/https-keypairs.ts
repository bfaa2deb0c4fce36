import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BadParameterError } from '@keyway/errors';

/**
 * Reads proxy_service.https_keypairs: each certificate (with its chain) and its key, checked to
 * belong together, so a wrong file is refused at start with its name instead of failing TLS later.
 */
export function readHttpsKeyPairs(entries: readonly { cert_file: string; key_file: string }[]): { certPem: string; keyPem: string }[] {
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
