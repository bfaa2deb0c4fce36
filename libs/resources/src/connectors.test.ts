import { describe, expect, it } from 'vitest';
import { parseResourceDocuments } from './documents.js';

// Connector YAML as Teleport users have it, including the seed's older GitHub form.
const SEED_GITHUB = `kind: github
version: v3
metadata: {name: github}
spec:
  client_id: abc
  client_secret: s3cret
  redirect_url: https://keyway.example.com/v1/webapi/github/callback
  teams_to_logins:
    - organization: acme
      team: admins
      logins: [access]
      kubernetes_groups: ["system:masters"]
`;

describe('connector resources', () => {
  it('accepts the seed GitHub connector with teams_to_logins', () => {
    const { docs } = parseResourceDocuments(SEED_GITHUB, 'github.yaml');
    expect(docs[0]?.spec).toMatchObject({ teams_to_logins: [{ organization: 'acme', team: 'admins', logins: ['access'], kubernetes_groups: ['system:masters'] }] });
  });
  it('refuses a GitHub connector that maps no team, naming the field', () => {
    expect(() => parseResourceDocuments(SEED_GITHUB.replace(/  teams_to_logins:[\s\S]*$/, ''), 'github.yaml')).toThrow(/teams_to_roles: must map at least one team/);
  });
  it('accepts max_age on OIDC and assertion_key_pair, allow_idp_initiated on SAML', () => {
    const oidc = `kind: oidc\nversion: v3\nmetadata: {name: okta}\nspec: {issuer_url: "https://idp.example.com", client_id: c, redirect_url: "https://k/v1/webapi/oidc/callback", max_age: 1h, claims_to_roles: [{claim: groups, value: devs, roles: [access]}]}\n`;
    expect(parseResourceDocuments(oidc, 'oidc.yaml').docs[0]?.spec).toMatchObject({ max_age: '1h' });
    const saml = `kind: saml\nversion: v2\nmetadata: {name: entra}\nspec: {acs: "https://k/v1/webapi/saml/acs", sso: "https://idp/sso", issuer: idp, cert: CERT, allow_idp_initiated: false, assertion_key_pair: {private_key: KEY, cert: CERT}, attributes_to_roles: [{name: groups, value: devs, roles: [access]}]}\n`;
    expect(parseResourceDocuments(saml, 'saml.yaml').docs[0]?.spec).toMatchObject({ allow_idp_initiated: false, assertion_key_pair: { cert: 'CERT' } });
  });
});
