import { formatIdentityFile, parseIdentityFile, type IdentityFile, type IdentityStore } from '@keyway/client';
import { kubeJsonClient } from './kube-json.js';
import { AccessDeniedError, KeywayError } from '@keyway/errors';
import type { ClusterCredentials } from './kubeconfig.js';

export interface SecretIdentityStoreOptions {
  /** The cluster the agent runs in (its service account, or a kubeconfig's credentials). */
  creds: ClusterCredentials;
  namespace: string;
  name: string;
}

/** Key in the Secret's data that holds the identity file (key, certificate, CAs; PEM). */
export const IDENTITY_SECRET_KEY = 'identity';
/** Writes that lose a race with another writer (409 Conflict) are tried this many times. */
const WRITE_ATTEMPTS = 3;

interface SecretObject {
  metadata?: { resourceVersion?: string };
  data?: Record<string, string>;
}

/**
 * The agent's credentials in a Kubernetes Secret, so that a pod that is rescheduled (and
 * loses its emptyDir) comes back as the same host without a new join token, as Teleport's
 * kube agent keeps its state in a Secret. The service account needs get, create and update
 * on that Secret (k8s/agent/serviceaccount.yaml).
 */
export function secretIdentityStore(o: SecretIdentityStoreOptions): IdentityStore {
  const { creds, namespace, name } = o;
  const location = `Secret ${namespace}/${name} in ${creds.server.origin}`;
  const collection = `${creds.server.pathname.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  const item = `${collection}/${encodeURIComponent(name)}`;
  // Paths below are absolute API paths; the client adds the server's own path prefix.
  const call = kubeJsonClient({ ...creds, server: new URL(creds.server.origin) }, { where: `the Kubernetes API for ${location}` });

  const refused = (status: number, json: Record<string, unknown>, doing: string): KeywayError => {
    const message = typeof json['message'] === 'string' ? json['message'] : `HTTP ${status}`;
    if (status === 401 || status === 403) {
      return new AccessDeniedError(`the agent may not ${doing} ${location}: ${message} (its service account needs get, create and update on that Secret)`, { location, status });
    }
    return new KeywayError('Internal', `could not ${doing} ${location}: ${message}`, { location, status });
  };

  const read = async (): Promise<SecretObject | undefined> => {
    const { status, json } = await call('GET', item);
    if (status === 404) return undefined;
    if (status !== 200) throw refused(status, json, 'read');
    return json as SecretObject;
  };

  return {
    location,
    async load(): Promise<IdentityFile | undefined> {
      const encoded = (await read())?.data?.[IDENTITY_SECRET_KEY];
      if (!encoded) return undefined;
      return parseIdentityFile(Buffer.from(encoded, 'base64').toString('utf8'), location);
    },
    async save(identity: IdentityFile): Promise<void> {
      for (let attempt = 1; ; attempt++) {
        const current = await read();
        const secret = {
          apiVersion: 'v1',
          kind: 'Secret',
          type: 'Opaque',
          metadata: {
            name,
            namespace,
            labels: { 'app.kubernetes.io/managed-by': 'keyway', 'app.kubernetes.io/component': 'kube-agent' },
            // Replaces exactly the version read: a concurrent writer makes this a 409, not a lost update.
            ...(current?.metadata?.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
          },
          data: { [IDENTITY_SECRET_KEY]: Buffer.from(formatIdentityFile(identity)).toString('base64') },
        };
        const { status, json } = current ? await call('PUT', item, secret) : await call('POST', collection, secret);
        if (status === 200 || status === 201) return;
        if (status !== 409 || attempt >= WRITE_ATTEMPTS) throw refused(status, json, current ? 'update' : 'create');
      }
    },
  };
}
