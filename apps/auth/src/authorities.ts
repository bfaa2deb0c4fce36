import { X509Certificate } from 'node:crypto';
import { BadParameterError } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import { fingerprint } from '@keyway/pki';
import type { Store } from '@keyway/store';
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
