import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedRsaCert, startTestSamlIdp, type RespondOverrides, type TestSamlIdp } from '@keyway/testing/sso';
import { SsoLoginError, type ConnectorResource, type SsoDriver } from './driver.js';
import { createSamlDriver } from './saml.js';

const acs = 'https://proxy.example.com/v1/webapi/saml/acs';
const spKeys = createSelfSignedRsaCert('keyway-sp-assertions');
const users = {
  alice: { attributes: { groups: ['devs', 'team-payments'], email: ['alice@example.com'] } },
  bob: { attributes: { groups: ['visitors'] } },
};
const mapping = [
  { name: 'groups', value: 'devs', roles: ['access'] },
  { name: 'groups', value: 'team-*', roles: ['$1-dev'] },
];

let idp: TestSamlIdp;
let otherIdp: TestSamlIdp;
let otherAcsIdp: TestSamlIdp;
beforeAll(async () => {
  idp = await startTestSamlIdp({ sp: { entityId: acs, acs, encryptFor: spKeys.certPem }, users });
  otherIdp = await startTestSamlIdp({ sp: { entityId: acs, acs }, users });
  // Right audience, but the assertion is addressed to another ACS (Recipient).
  otherAcsIdp = await startTestSamlIdp({ sp: { entityId: acs, acs: 'https://elsewhere.example.com/acs' }, users });
});
afterAll(async () => {
  await idp?.close();
  await otherIdp?.close();
  await otherAcsIdp?.close();
});

function connector(spec: Record<string, unknown> = {}, name = 'okta'): ConnectorResource {
  return { kind: 'saml', version: 'v2', metadata: { name }, spec: { acs, entity_descriptor: idp.metadataXml, attributes_to_roles: mapping, ...spec } };
}

/** A replay store as auth would keep it, with what it was asked. */
function replayStore(): { seen: Map<string, Date>; assertionSeen(id: string, notOnOrAfter: Date): Promise<boolean> } {
  const seen = new Map<string, Date>();
  return {
    seen,
    assertionSeen: (id, notOnOrAfter) => {
      const had = seen.has(id);
      seen.set(id, notOnOrAfter);
      return Promise.resolve(had);
    },
  };
}

function driver(): SsoDriver {
  return createSamlDriver(replayStore());
}

/** begin, the IdP's answer for `user`, and complete with (by default) what the browser posts. */
async function login(d: SsoDriver, conn: ConnectorResource, user = 'alice', ov: RespondOverrides = {}, from: TestSamlIdp = idp) {
  const requestId = randomBytes(16).toString('hex');
  const begun = await d.begin({ connector: conn, requestId, callbackUrl: acs });
  const post = await from.respond(begun.url, user, { encrypt: false, ...ov });
  const complete = (params: Record<string, string> = post, other: { requestId?: string; keep?: Record<string, string> } = {}) =>
    d.complete({ connector: conn, requestId: other.requestId ?? requestId, callbackUrl: acs, keep: other.keep ?? begun.keep, params });
  return { requestId, begun, post, complete };
}

async function refusal(p: Promise<unknown>): Promise<SsoLoginError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SsoLoginError);
  return err as SsoLoginError;
}

function editXml(samlResponse: string, edit: (xml: string) => string): string {
  return Buffer.from(edit(Buffer.from(samlResponse, 'base64').toString('utf8'))).toString('base64');
}

describe('SAML driver: a good login', () => {
  it('sends the browser to the IdP with an AuthnRequest and RelayState = request id, and keeps the request id', async () => {
    const { requestId, begun } = await login(driver(), connector());
    const url = new URL(begun.url);
    expect(`${url.origin}${url.pathname}`).toBe(idp.ssoUrl);
    expect(url.searchParams.get('RelayState')).toBe(requestId);
    expect(url.searchParams.get('SAMLRequest')).toBeTruthy();
    expect(url.searchParams.get('Signature')).toBeNull();
    expect(begun.keep['authnRequestId']).toMatch(/^_[0-9a-f]{40}$/);
  });

  it('maps a signed assertion to user, roles and traits, and records the assertion for replay', async () => {
    const store = replayStore();
    const { complete } = await login(createSamlDriver(store), connector());
    const who = await complete();
    expect(who.username).toBe('alice');
    expect(who.subject).toBe('alice');
    expect(who.roles).toEqual(['access', 'payments-dev']);
    expect(who.traits).toEqual({ groups: ['devs', 'team-payments'], email: ['alice@example.com'] });
    expect(who.received).toEqual({ groups: ['devs', 'team-payments'], email: ['alice@example.com'] });
    expect(store.seen.size).toBe(1);
    const [expiry] = [...store.seen.values()];
    expect(expiry!.getTime()).toBeGreaterThan(Date.now());
  });

  it('decrypts an encrypted assertion with assertion_key_pair', async () => {
    const conn = connector({ assertion_key_pair: { private_key: spKeys.keyPem, cert: spKeys.certPem } });
    const { post, complete } = await login(driver(), conn, 'alice', { encrypt: true });
    expect(Buffer.from(post.SAMLResponse, 'base64').toString()).toContain('EncryptedAssertion');
    expect((await complete()).roles).toEqual(['access', 'payments-dev']);
  });

  it('refuses an encrypted assertion when the connector has no assertion_key_pair', async () => {
    const { complete } = await login(driver(), connector(), 'alice', { encrypt: true });
    expect((await refusal(complete())).reason).toBe('assertion undecryptable');
  });

  it('signs the AuthnRequest when signing_key_pair is set', async () => {
    const sp = createSelfSignedRsaCert('keyway-sp-signing');
    const { begun, complete } = await login(driver(), connector({ signing_key_pair: { private_key: sp.keyPem, cert: sp.certPem } }));
    const url = new URL(begun.url);
    expect(url.searchParams.get('Signature')).toBeTruthy();
    expect(url.searchParams.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    expect((await complete()).username).toBe('alice');
  });

  it('takes the IdP from sso + cert + issuer', async () => {
    const conn = connector({ entity_descriptor: undefined, sso: idp.ssoUrl, cert: idp.certPem, issuer: idp.issuer });
    expect((await (await login(driver(), conn)).complete()).username).toBe('alice');
  });

  it('uses service_provider_issuer as the audience, or audience when set', async () => {
    const conn = connector({ service_provider_issuer: 'keyway-sp' });
    const { complete } = await login(driver(), conn, 'alice', { audience: 'keyway-sp' });
    expect((await complete()).username).toBe('alice');
    const withAudience = connector({ service_provider_issuer: 'keyway-sp', audience: 'urn:keyway' });
    expect((await (await login(driver(), withAudience, 'alice', { audience: 'urn:keyway' })).complete()).username).toBe('alice');
  });
});

describe('SAML driver: what an attacker would try', () => {
  it('refuses an assertion whose attribute was changed after signing', async () => {
    const { post, complete } = await login(driver(), connector());
    const tampered = editXml(post.SAMLResponse, (xml) => {
      expect(xml).toContain('>devs<');
      return xml.replace('>devs<', '>admins<');
    });
    expect((await refusal(complete({ ...post, SAMLResponse: tampered }))).reason).toBe('signature invalid');
  });

  it('refuses an unsigned response', async () => {
    const { complete } = await login(driver(), connector(), 'alice', { sign: false });
    expect((await refusal(complete())).reason).toBe('signature invalid');
  });

  it("refuses a response signed by another connector's IdP", async () => {
    const { complete } = await login(driver(), connector(), 'alice', {}, otherIdp);
    expect((await refusal(complete())).reason).toBe('signature invalid');
  });

  it('refuses an assertion for another audience', async () => {
    const { complete } = await login(driver(), connector(), 'alice', { audience: 'https://other.example.com/acs' });
    const err = await refusal(complete());
    expect(err.reason).toBe('audience mismatch');
    expect(err.message).not.toContain('SAMLResponse=');
  });

  it('refuses an expired assertion (NotOnOrAfter beyond the clock skew)', async () => {
    const { complete } = await login(driver(), connector(), 'alice', { notOnOrAfter: new Date(Date.now() - 5 * 60 * 1000) });
    expect((await refusal(complete())).reason).toBe('assertion expired');
  });

  it('refuses the same response twice (replay store shared by replicas)', async () => {
    const store = replayStore();
    const replicaA = createSamlDriver(store);
    const replicaB = createSamlDriver(store);
    const conn = connector();
    const { begun, post, requestId } = await login(replicaA, conn);
    const input = { connector: conn, requestId, callbackUrl: acs, keep: begun.keep, params: post };
    expect((await replicaA.complete(input)).username).toBe('alice');
    expect((await refusal(replicaB.complete(input))).reason).toBe('assertion replayed');
  });

  it('refuses a response to another login request, even with its RelayState swapped in', async () => {
    const d = driver();
    const conn = connector();
    const mine = await login(d, conn);
    const theirs = await login(d, conn);
    const err = await refusal(mine.complete({ ...theirs.post, RelayState: mine.requestId }));
    expect(err.reason).toBe('unsolicited response');
    const forged = await login(d, conn, 'alice', { inResponseTo: '_not-this-request' });
    expect((await refusal(forged.complete())).reason).toBe('unsolicited response');
  });

  it('refuses an unsolicited (IdP-initiated) response unless allow_idp_initiated is set', async () => {
    const { complete } = await login(driver(), connector(), 'alice', { inResponseTo: null });
    expect((await refusal(complete())).reason).toBe('unsolicited response');
    const allowed = await login(driver(), connector({ allow_idp_initiated: true }), 'alice', { inResponseTo: null });
    expect((await allowed.complete()).username).toBe('alice');
  });

  it('refuses a RelayState that is not this request', async () => {
    const { post, complete } = await login(driver(), connector());
    expect((await refusal(complete({ ...post, RelayState: 'f'.repeat(32) }))).reason).toBe('relay state mismatch');
    expect((await refusal(complete({ SAMLResponse: post.SAMLResponse }))).reason).toBe('relay state mismatch');
  });

  it('refuses a huge SAMLResponse before decoding it', async () => {
    const { post, complete } = await login(driver(), connector());
    // A real, valid response padded past the bound: only the size can refuse it.
    const huge = post.SAMLResponse + '\n'.repeat(600 * 1024);
    expect((await refusal(complete({ ...post, SAMLResponse: huge }))).reason).toBe('response too large');
    expect((await refusal(complete({ ...post, SAMLResponse: '' }))).reason).toBe('response missing');
  });

  it('refuses an assertion from another issuer than the connector names', async () => {
    const { complete } = await login(driver(), connector({ issuer: 'https://idp.other.example.com' }));
    expect((await refusal(complete())).reason).toBe('issuer mismatch');
  });

  it('refuses an assertion addressed to another ACS', async () => {
    const conn = connector({ entity_descriptor: otherAcsIdp.metadataXml });
    const { complete } = await login(driver(), conn, 'alice', {}, otherAcsIdp);
    expect((await refusal(complete())).reason).toBe('recipient mismatch');
  });

  it('refuses a second, unsigned assertion wrapped around the signed one', async () => {
    const { post, complete } = await login(driver(), connector());
    const wrapped = editXml(post.SAMLResponse, (xml) => {
      const start = xml.indexOf('<saml:Assertion');
      const end = xml.indexOf('</saml:Assertion>') + '</saml:Assertion>'.length;
      expect(start).toBeGreaterThan(0);
      const evil = xml.slice(start, end).replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '').replace('>alice<', '>mallory<').replace(/ID="[^"]+"/, 'ID="_evil"');
      return xml.slice(0, start) + evil + xml.slice(start);
    });
    expect((await refusal(complete({ ...post, SAMLResponse: wrapped }))).reason).toBe('signature invalid');
  });

  it('never yields another identity for a response changed anywhere (property)', async () => {
    const { post, requestId, begun } = await login(driver(), connector());
    const xml = Buffer.from(post.SAMLResponse, 'base64').toString('utf8');
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: xml.length - 1 }), fc.constantFrom('x', '0', ' ', '<', '"'), async (at, ch) => {
        const changed = Buffer.from(xml.slice(0, at) + ch + xml.slice(at + 1)).toString('base64');
        const d = driver();
        const out = await d.complete({ connector: connector(), requestId, callbackUrl: acs, keep: begun.keep, params: { ...post, SAMLResponse: changed } }).then(
          (who) => who,
          (e: unknown) => {
            expect(e).toBeInstanceOf(SsoLoginError);
            return undefined;
          },
        );
        // Only the unsigned Response wrapper (its ID, IssueInstant, Destination) may change and pass.
        if (out) expect({ username: out.username, roles: out.roles, traits: out.traits }).toEqual({ username: 'alice', roles: ['access', 'payments-dev'], traits: users.alice.attributes });
      }),
      { seed: 11, numRuns: 60 },
    );
  });

  it('refuses when no attribute maps to a role, naming the connector and the attributes seen', async () => {
    const { complete } = await login(driver(), connector(), 'bob');
    const err = await refusal(complete());
    expect(err.reason).toBe('no role matched');
    expect(err.message).toContain('okta');
    expect(err.message).toContain('groups');
  });
});

describe('SAML test IdP: the login page a browser would use', () => {
  it('serves a login form at ssoUrl whose answer auto-posts a response the driver accepts', async () => {
    const d = driver();
    // The page encrypts for the SP, as this IdP was given the SP's encryption certificate.
    const conn = connector({ assertion_key_pair: { private_key: spKeys.keyPem, cert: spKeys.certPem } });
    const requestId = randomBytes(16).toString('hex');
    const begun = await d.begin({ connector: conn, requestId, callbackUrl: acs });
    const page = await (await fetch(begun.url)).text();
    expect(page).toContain('<form method="post" action="/sso/login">');
    const answer = await (await fetch(new URL('/sso/login', idp.ssoUrl), { method: 'POST', body: new URLSearchParams({ request: begun.url, user: 'alice' }) })).text();
    expect(answer).toContain(`action="${acs}"`);
    expect(answer).toContain('document.forms[0].submit()');
    const field = (name: string): string => {
      const at = answer.indexOf(`name="${name}" value="`) + `name="${name}" value="`.length;
      return answer.slice(at, answer.indexOf('"', at));
    };
    const who = await d.complete({ connector: conn, requestId, callbackUrl: acs, keep: begun.keep, params: { SAMLResponse: field('SAMLResponse'), RelayState: field('RelayState') } });
    expect(who.username).toBe('alice');
  });
});

describe('SAML driver: IdP metadata', () => {
  it('fetches entity_descriptor_url and reuses it for a while', async () => {
    const d = driver();
    const conn = connector({ entity_descriptor: undefined, entity_descriptor_url: idp.metadataUrl });
    const before = idp.metadataFetches();
    expect((await (await login(d, conn)).complete()).username).toBe('alice');
    expect((await (await login(d, conn)).complete()).username).toBe('alice');
    expect(idp.metadataFetches() - before).toBe(1);
  });

  it('says metadata unreachable for a closed port, an error status, or a body over 1 MiB', async () => {
    const big = await serve((_req, res) => res.end(`<x>${' '.repeat(1024 * 1024 + 10)}</x>`));
    const bigChunked = await serve((_req, res) => {
      res.write(' '.repeat(700 * 1024));
      res.end(' '.repeat(700 * 1024));
    });
    const missing = await serve((_req, res) => res.writeHead(404).end());
    const closed = await serve(() => undefined);
    const closedUrl = closed.url;
    await new Promise((r) => closed.server.close(r));
    try {
      for (const url of [closedUrl, missing.url, big.url, bigChunked.url]) {
        const err = await refusal(driver().begin({ connector: connector({ entity_descriptor: undefined, entity_descriptor_url: url }), requestId: 'r', callbackUrl: acs }));
        expect(err.reason).toBe('metadata unreachable');
      }
    } finally {
      for (const s of [big, bigChunked, missing]) s.server.close();
    }
  });

  it('refuses metadata that is not XML, has a DOCTYPE, or has no IdP descriptor', async () => {
    for (const md of ['not xml <', `<!DOCTYPE x [<!ENTITY a "b">]>${idp.metadataXml.replace(/^<\?xml[^>]*\?>/, '')}`, '<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>']) {
      const err = await refusal(driver().begin({ connector: connector({ entity_descriptor: md }), requestId: 'r', callbackUrl: acs }));
      expect(err.reason).toBe('metadata invalid');
    }
  });
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metadata` };
}
