import { describe, expect, it } from 'vitest';
import { formatResources, parseResourceDocuments } from './documents.js';
import { KIND_NAMES } from './kinds.js';
import { SECRET_FIELDS, redactSecrets } from './secrets.js';
import type { GithubConnectorResource, KubeClusterResource, OidcConnectorResource, Resource, SamlConnectorResource } from './types.js';

const CONNECTORS = `kind: github
version: v3
metadata: {name: github}
spec:
  client_id: Iv1.abc
  client_secret: gh-s3cr3t
  teams_to_roles:
    - {organization: acme, team: devs, roles: [junior-devs]}
---
kind: oidc
version: v3
metadata: {name: okta}
spec:
  issuer_url: https://acme.okta.com
  client_id: "0oa1"
  client_secret: oidc-s3cr3t
  redirect_url: https://keyway.example.com/v1/webapi/oidc/callback
  claims_to_roles:
    - {claim: groups, value: devs, roles: [junior-devs]}
---
kind: oidc
version: v3
metadata: {name: public-client}
spec:
  issuer_url: https://acme.okta.com
  client_id: "0oa2"
  redirect_url: https://keyway.example.com/v1/webapi/oidc/callback
  claims_to_roles:
    - {claim: groups, value: devs, roles: [junior-devs]}
---
kind: saml
version: v2
metadata: {name: adfs}
spec:
  acs: https://keyway.example.com/v1/webapi/saml/acs/adfs
  entity_descriptor_url: https://adfs.example.com/metadata.xml
  signing_key_pair:
    private_key: "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n"
    cert: "-----BEGIN CERTIFICATE-----\\nMIIC\\n-----END CERTIFICATE-----\\n"
  attributes_to_roles:
    - {name: groups, value: devs, roles: [junior-devs]}
---
kind: kube_cluster
version: v3
metadata: {name: prod}
spec: {kubeconfig: YXBpVmVyc2lvbjogdjEK}
---
kind: role
version: v7
metadata: {name: dev}
spec:
  allow:
    kubernetes_groups: [view]
`;

const docs = parseResourceDocuments(CONNECTORS).docs;
const byName = <R extends Resource>(name: string) => docs.find((d) => d.metadata.name === name) as R;

describe('redactSecrets', () => {
  it('blanks connector secrets as tctl get does without --with-secrets', () => {
    const gh = redactSecrets(byName<GithubConnectorResource>('github'));
    expect(gh.spec).toEqual({ ...byName<GithubConnectorResource>('github').spec, client_secret: '' });

    const oidc = redactSecrets(byName<OidcConnectorResource>('okta'));
    expect(oidc.spec).toEqual({ ...byName<OidcConnectorResource>('okta').spec, client_secret: '' });

    const saml = redactSecrets(byName<SamlConnectorResource>('adfs'));
    expect(saml.spec.signing_key_pair).toEqual({ private_key: '', cert: '-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n' });
    expect({ ...saml.spec, signing_key_pair: undefined }).toEqual({ ...byName<SamlConnectorResource>('adfs').spec, signing_key_pair: undefined });

    const kube = redactSecrets(byName<KubeClusterResource>('prod'));
    expect(kube.spec).toEqual({ kubeconfig: '' });
  });

  it('leaves unset secrets absent, other kinds unchanged, and the input alone', () => {
    const publicClient = byName<OidcConnectorResource>('public-client');
    expect(Object.hasOwn(redactSecrets(publicClient).spec, 'client_secret')).toBe(false);
    expect(redactSecrets(publicClient)).toEqual(publicClient);

    const role = byName('dev');
    const copy = redactSecrets(role);
    expect(copy).toEqual(role);
    expect(copy).not.toBe(role);

    const before = structuredClone(docs);
    const redacted = docs.map(redactSecrets);
    expect(docs).toEqual(before);
    expect(JSON.stringify(redacted)).not.toMatch(/s3cr3t|PRIVATE KEY|YXBpVmVyc2lvbjogdjEK/);
  });

  it('prints the blanked key, so it is visible that a secret was left out', () => {
    const yaml = formatResources(docs.map(redactSecrets), 'yaml');
    expect(yaml).toContain('  client_id: Iv1.abc\n  client_secret: ""\n');
    expect(yaml).toContain('  signing_key_pair:\n    private_key: ""\n    cert: |');
    expect(yaml).not.toMatch(/s3cr3t|PRIVATE KEY/);
    // Not meant to be created again: the required secrets are missing.
    expect(() => parseResourceDocuments(formatResources([redactSecrets(byName('github'))], 'yaml'))).toThrow(
      /spec\.client_secret: must not be empty/,
    );
  });

  it('lists the secret fields of every kind', () => {
    expect(Object.keys(SECRET_FIELDS).sort()).toEqual([...KIND_NAMES].sort());
    expect(SECRET_FIELDS.github).toEqual(['spec.client_secret']);
    expect(SECRET_FIELDS.oidc).toEqual(['spec.client_secret']);
    expect(SECRET_FIELDS.saml).toEqual(['spec.signing_key_pair.private_key', 'spec.assertion_key_pair.private_key']);
  });
});
