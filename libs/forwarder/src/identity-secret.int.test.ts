import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IdentityFile } from '@keyway/client';
import { AccessDeniedError } from '@keyway/errors';
import { loadKubeconfig, type ClusterCredentials } from './kubeconfig.js';
import { startTestKubeApiServer, type TestKubeApiServer } from '@keyway/testing';
import { IDENTITY_SECRET_KEY, secretIdentityStore } from './identity-secret.js';

describe('secretIdentityStore', () => {
  let api: TestKubeApiServer;
  let creds: ClusterCredentials;
  let other: IdentityFile;
  let identity: IdentityFile;

  beforeAll(async () => {
    api = await startTestKubeApiServer({ namespaces: ['keyway'] });
    // What k8s/agent/serviceaccount.yaml grants the agent's service account.
    api.setRbac([{ users: ['agent-sa'], verbs: ['get', 'create', 'update'], resources: ['secrets'], namespaces: ['keyway'] }]);
    [creds] = loadKubeconfig(await api.writeKubeconfig('agent-sa', { user: 'agent-sa' })) as [ClusterCredentials];
    // Any PEM blocks do: the store keeps the identity file as it is.
    const a = api.issueClientCertificate('a');
    const b = api.issueClientCertificate('b');
    identity = { privateKeyPem: a.keyPem, certPem: a.certPem, caPems: [api.caPem] };
    other = { privateKeyPem: b.keyPem, certPem: b.certPem, caPems: [api.caPem] };
  });
  afterAll(async () => {
    await api?.close();
  });

  it('has nothing before the first save, then gives back what was saved', async () => {
    const store = secretIdentityStore({ creds, namespace: 'keyway', name: 'agent-0-identity' });
    expect(await store.load()).toBeUndefined();
    await store.save(identity);
    const secret = api.getObject('secrets', 'keyway', 'agent-0-identity') as { type?: string; metadata: { labels?: Record<string, string> }; data?: Record<string, string> };
    expect(secret.type).toBe('Opaque');
    expect(secret.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'keyway' });
    expect(Buffer.from(secret.data?.[IDENTITY_SECRET_KEY] ?? '', 'base64').toString()).toContain(identity.certPem.trim());
    expect(await store.load()).toEqual(identity);
  });

  it('replaces the stored identity on renewal, and a new store (a new pod) reads it', async () => {
    const store = secretIdentityStore({ creds, namespace: 'keyway', name: 'agent-1-identity' });
    await store.save(identity);
    await store.save(other);
    expect(await secretIdentityStore({ creds, namespace: 'keyway', name: 'agent-1-identity' }).load()).toEqual(other);
  });

  it('says which Secret and which rights when the service account may not use it', async () => {
    const store = secretIdentityStore({ creds, namespace: 'default', name: 'agent-0-identity' });
    const err = await store.load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AccessDeniedError);
    expect((err as Error).message).toMatch(/Secret default\/agent-0-identity/);
    expect((err as Error).message).toMatch(/get, create and update/);
  });

  it('refuses a Secret whose content is not an identity', async () => {
    api.createObject('secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'garbage' }, data: { [IDENTITY_SECRET_KEY]: Buffer.from('not pem').toString('base64') } } as never, { namespace: 'keyway' });
    await expect(secretIdentityStore({ creds, namespace: 'keyway', name: 'garbage' }).load()).rejects.toThrow(/garbage/);
  });
});
