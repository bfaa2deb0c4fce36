import { X509Certificate, randomBytes } from 'node:crypto';
import { BadParameterError } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import { fingerprint } from '@keyway/pki';
import { listAuditKeyRecords, startKeyedAuditChain, useAuditKeys, type AuditKey, type Store } from '@keyway/store';
import { CertSigner, createCertAuthority, decryptCaKey, encryptCaKey, type CertAuthorityType } from './ca/index.js';

export interface LoadedAuthority {
  type: CertAuthorityType;
  certPem: string;
  cert: X509Certificate;
  signer: CertSigner;
}

export interface CertAuthorities {
  user: LoadedAuthority;
  host: LoadedAuthority;
}

/**
 * Loads the user and host CAs, creating them on first start. The private keys are stored
 * encrypted with caKey; a wrong key stops start-up with a message that says so.
 */
export async function loadOrCreateAuthorities(o: {
  store: Store;
  clusterName: string;
  caKey: string;
  logger: Logger;
  clock?: () => Date;
}): Promise<CertAuthorities> {
  const load = async (type: CertAuthorityType): Promise<LoadedAuthority> => {
    const context = `${type} CA`;
    let row = await o.store.db.selectFrom('cert_authorities').selectAll().where('type', '=', type).executeTakeFirst();
    if (!row) {
      const ca = createCertAuthority({ type, clusterName: o.clusterName });
      const encrypted = await encryptCaKey(ca.privateKeyPem, o.caKey, { context });
      // Two auth servers may start on a fresh database at once: the first insert wins and
      // both go on with what is stored.
      await o.store.db
        .insertInto('cert_authorities')
        .values({ type, cluster_name: o.clusterName, cert_pem: ca.certPem, encrypted_key: encrypted })
        .onConflict((oc) => oc.column('type').doNothing())
        .execute();
      row = await o.store.db.selectFrom('cert_authorities').selectAll().where('type', '=', type).executeTakeFirstOrThrow();
      if (row.cert_pem === ca.certPem) o.logger.info({ type, fingerprint: fingerprint(ca.certPem) }, 'created certificate authority');
    }
    if (row.cluster_name !== o.clusterName) {
      throw new BadParameterError(
        `the store belongs to cluster "${row.cluster_name}", but this server is configured as "${o.clusterName}"; fix cluster_name (KEYWAY_CLUSTER_NAME)`,
        { stored: row.cluster_name, configured: o.clusterName },
      );
    }
    const privateKeyPem = await decryptCaKey(row.encrypted_key, o.caKey, { context });
    return {
      type,
      certPem: row.cert_pem,
      cert: new X509Certificate(row.cert_pem),
      signer: new CertSigner({ certPem: row.cert_pem, privateKey: privateKeyPem }, o.clock ? { now: o.clock } : {}),
    };
  };
  return { user: await load('user'), host: await load('host') };
}

const AUDIT_KEY_BYTES = 32;
const auditKeyContext = (id: string) => `audit key ${id}`;

/**
 * Loads the audit keys, creating the first on first start, and hands them to the store's
 * chain writer and verifier. Like the CA keys they are random, sealed with caKey at rest and
 * never leave this process; each has an id so a later key can take over (rotation) while
 * older links stay verifiable.
 */
export async function loadOrCreateAuditKeys(o: { store: Store; caKey: string; logger: Logger }): Promise<AuditKey[]> {
  let records = await listAuditKeyRecords(o.store);
  if (records.length === 0) {
    const key: AuditKey = { id: `ak-${randomBytes(8).toString('hex')}`, key: randomBytes(AUDIT_KEY_BYTES) };
    const sealed = await encryptCaKey(key.key.toString('base64url'), o.caKey, { context: auditKeyContext(key.id) });
    // Two servers starting at once: the store records one key; both load what it recorded.
    const created = await startKeyedAuditChain(o.store, key, sealed);
    records = await listAuditKeyRecords(o.store);
    const first = records[0];
    if (created && first && first.startSeq > 1) {
      // An upgrade, or someone deleted the key record to pass rewritten events off as unkeyed.
      o.logger.warn(
        { keyId: key.id, keyedFrom: first.startSeq },
        `created the audit key: the ${first.startSeq - 1} event(s) stored before it are linked without a key; expected once, on the upgrade that introduced keyed linking`,
      );
    } else if (created) {
      o.logger.info({ keyId: key.id }, 'created the audit key');
    }
  }
  const keys = await Promise.all(
    records.map(async (r): Promise<AuditKey> => {
      const key = Buffer.from(await decryptCaKey(r.encryptedKey, o.caKey, { context: auditKeyContext(r.id) }), 'base64url');
      if (key.length !== AUDIT_KEY_BYTES) throw new BadParameterError(`stored audit key ${r.id} is not a ${AUDIT_KEY_BYTES}-byte key`, { keyId: r.id });
      return { id: r.id, key };
    }),
  );
  useAuditKeys(o.store, keys);
  return keys;
}
