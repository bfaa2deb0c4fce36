import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { BadParameterError, NotFoundError } from '@keyway/errors';

/**
 * An identity file holds, as PEM blocks in this order: the private key, the certificate,
 * and the CA certificates that the holder trusts (the host CA at least), like the identity
 * files Teleport's tctl and tsh use.
 */
export interface IdentityFile {
  privateKeyPem: string;
  certPem: string;
  caPems: string[];
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----\r?\n?/g;

export function parseIdentityFile(text: string, source = 'identity file'): IdentityFile {
  let privateKeyPem: string | undefined;
  const certs: string[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const label = match[1] as string;
    const block = match[0].endsWith('\n') ? match[0] : `${match[0]}\n`;
    if (label.endsWith('PRIVATE KEY')) privateKeyPem ??= block;
    else if (label === 'CERTIFICATE') certs.push(block);
  }
  const [certPem, ...caPems] = certs;
  if (!privateKeyPem || !certPem) {
    throw new BadParameterError(`${source} must hold a private key and a certificate in PEM form`, { source });
  }
  try {
    new X509Certificate(certPem);
  } catch (err) {
    throw new BadParameterError(`${source}: certificate does not parse: ${(err as Error).message}`, { source });
  }
  return { privateKeyPem, certPem, caPems };
}

export function readIdentityFile(path: string): IdentityFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`identity file ${path} does not exist`, { path });
    }
    throw new BadParameterError(`cannot read identity file ${path}: ${(err as Error).message}`, { path });
  }
  return parseIdentityFile(text, path);
}

export function formatIdentityFile(identity: IdentityFile): string {
  return [identity.privateKeyPem, identity.certPem, ...identity.caPems].map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
}

/** Writes a secret file readable by its owner only, atomically. */
export function writeSecretFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function writeIdentityFile(path: string, identity: IdentityFile): void {
  writeSecretFile(path, formatIdentityFile(identity));
}
