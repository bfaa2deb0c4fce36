/**
 * A real SAML identity provider for tests, built on samlify in its IdP role: it parses the
 * service provider's AuthnRequest, builds, signs and encrypts the Response with samlify, and
 * serves its metadata and a login page on 127.0.0.1. `respond` returns what a browser would POST
 * to the ACS, so driver tests need no browser; the login page does the same for a real one.
 */
import { generateKeyPairSync, randomBytes, sign as signBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import * as samlify from 'samlify';
import { certificate, der, spkiDer, subjectName, tbsCertificate, toPem } from '@keyway/pki';

// samlify refuses to parse anything until a schema validator is set. This is the test IdP and
// only ever parses the SP's AuthnRequest; the SP side (node-saml) does the real checks on what
// this IdP sends, so a validator that accepts everything is enough here.
samlify.setSchemaValidator({ validate: () => Promise.resolve('skipped: test IdP') });

const SHA256_WITH_RSA = der.sequence(der.oid('1.2.840.113549.1.1.11'), der.nul());
const ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const { binding, format, statusCode, authnContextClassRef } = samlify.Constants.namespace;

export interface RsaCertAndKey {
  certPem: string;
  keyPem: string;
}

/** An RSA key and a self-signed certificate for it (XML signatures and encryption want RSA). */
export function createSelfSignedRsaCert(commonName: string): RsaCertAndKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const name = subjectName(commonName);
  const now = Date.now();
  const tbs = tbsCertificate({
    serialNumber: randomBytes(16),
    signatureAlgorithm: SHA256_WITH_RSA,
    issuer: name,
    notBefore: new Date(now - 60 * 60 * 1000),
    notAfter: new Date(now + 7 * 24 * 60 * 60 * 1000),
    subject: name,
    subjectPublicKeyInfo: spkiDer(publicKey),
    extensions: [],
  });
  return {
    certPem: toPem(certificate(tbs, SHA256_WITH_RSA, signBytes('sha256', tbs, privateKey))),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

export interface TestSamlIdpOptions {
  sp: { entityId: string; acs: string; encryptFor?: string };
  users: Record<string, { attributes: Record<string, string[]> }>;
}

export interface RespondOverrides {
  audience?: string;
  /** Conditions and SubjectConfirmationData NotOnOrAfter (default: 5 minutes from now). */
  notOnOrAfter?: Date;
  /** null: an unsolicited response (no InResponseTo anywhere). */
  inResponseTo?: string | null;
  /** false: no signature at all. Default true (the assertion is signed). */
  sign?: boolean;
  /** Default: whether the SP gave an encryption certificate. */
  encrypt?: boolean;
}

export interface TestSamlIdp {
  metadataXml: string;
  /** Where the metadata is served (for entity_descriptor_url). */
  metadataUrl: string;
  /** HTTP-Redirect SingleSignOnService: a login page that POSTs the response to the ACS. */
  ssoUrl: string;
  issuer: string;
  certPem: string;
  respond(authnRequestUrl: string, user: string, overrides?: RespondOverrides): Promise<{ SAMLResponse: string; RelayState: string }>;
  /** How many times the metadata was fetched (to see caching). */
  metadataFetches(): number;
  close(): Promise<void>;
}

export async function startTestSamlIdp(o: TestSamlIdpOptions): Promise<TestSamlIdp> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ssoUrl = `${base}/sso`;
  const issuer = `${base}/metadata`;
  const keys = createSelfSignedRsaCert('keyway-test-saml-idp');

  const idpSettings = {
    entityID: issuer,
    privateKey: keys.keyPem,
    signingCert: keys.certPem,
    nameIDFormat: [format.unspecified],
    singleSignOnService: [{ Binding: binding.redirect, Location: ssoUrl }],
    // samlify warns without one; Keyway does not do single logout, so nothing serves it.
    singleLogoutService: [{ Binding: binding.redirect, Location: `${base}/slo` }],
    wantAuthnRequestsSigned: false,
  };
  const idp = samlify.IdentityProvider(idpSettings);
  const idpEncrypting = samlify.IdentityProvider({ ...idpSettings, isAssertionEncrypted: true });
  const sp = samlify.ServiceProvider({
    entityID: o.sp.entityId,
    assertionConsumerService: [{ Binding: binding.post, Location: o.sp.acs }],
    wantAssertionsSigned: true,
    ...(o.sp.encryptFor ? { encryptCert: o.sp.encryptFor } : {}),
  });
  const metadataXml = idp.getMetadata();

  function buildResponse(requestId: string, user: string, ov: RespondOverrides): { id: string; xml: string } {
    const who = o.users[user];
    if (!who) throw new Error(`test IdP: no user ${user}`);
    const now = new Date();
    const notOnOrAfter = (ov.notOnOrAfter ?? new Date(now.getTime() + 5 * 60 * 1000)).toISOString();
    const id = `_${randomBytes(16).toString('hex')}`;
    const inResponseTo = ov.inResponseTo === undefined ? requestId : ov.inResponseTo;
    const raw = samlify.SamlLib.replaceTagsByValue(samlify.SamlLib.defaultLoginResponseTemplate.context, {
      ID: id,
      AssertionID: `_${randomBytes(16).toString('hex')}`,
      Destination: o.sp.acs,
      Audience: ov.audience ?? o.sp.entityId,
      SubjectRecipient: o.sp.acs,
      Issuer: issuer,
      IssueInstant: now.toISOString(),
      StatusCode: statusCode.success,
      ConditionsNotBefore: new Date(now.getTime() - 1000).toISOString(),
      ConditionsNotOnOrAfter: notOnOrAfter,
      SubjectConfirmationDataNotOnOrAfter: notOnOrAfter,
      NameIDFormat: format.unspecified,
      NameID: user,
      // null leaves the attribute out (samlify drops attributes whose value is null).
      InResponseTo: inResponseTo,
      AuthnStatement: '',
      AttributeStatement: '',
    });
    // The statements go in through the DOM: multi-valued attributes, escaped by the serializer.
    const doc = new DOMParser().parseFromString(raw, 'text/xml');
    const assertion = doc.getElementsByTagNameNS(ASSERTION_NS, 'Assertion').item(0);
    if (!assertion) throw new Error('test IdP: the response template has no Assertion');
    const el = (name: string, attrs: Record<string, string> = {}, text?: string): Element => {
      const e = doc.createElementNS(ASSERTION_NS, `saml:${name}`);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.appendChild(doc.createTextNode(text));
      return e;
    };
    const authn = el('AuthnStatement', { AuthnInstant: now.toISOString(), SessionIndex: id });
    const context = el('AuthnContext');
    context.appendChild(el('AuthnContextClassRef', {}, authnContextClassRef.passwordProtectedTransport));
    authn.appendChild(context);
    assertion.appendChild(authn);
    const statement = el('AttributeStatement');
    for (const [name, values] of Object.entries(who.attributes)) {
      const attr = el('Attribute', { Name: name, NameFormat: 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic' });
      for (const v of values) attr.appendChild(el('AttributeValue', {}, v));
      statement.appendChild(attr);
    }
    assertion.appendChild(statement);
    return { id, xml: new XMLSerializer().serializeToString(doc) };
  }

  async function respond(authnRequestUrl: string, user: string, ov: RespondOverrides = {}): Promise<{ SAMLResponse: string; RelayState: string }> {
    const url = new URL(authnRequestUrl);
    const query = Object.fromEntries(url.searchParams);
    const parsed = await idp.parseLoginRequest(sp, 'redirect', { query });
    const requestId = parsed.extract.request?.['id'];
    if (typeof requestId !== 'string') throw new Error('test IdP: the AuthnRequest has no ID');
    const relayState = query['RelayState'] ?? '';
    const built = buildResponse(requestId, user, ov);
    const encrypt = ov.encrypt ?? Boolean(o.sp.encryptFor);
    const signer = encrypt ? idpEncrypting : idp;
    if (ov.sign === false) {
      // createLoginResponse always signs; an unsigned response is the same XML left as it is.
      const xml = Buffer.from(built.xml).toString('base64');
      return { SAMLResponse: encrypt ? await samlify.SamlLib.encryptAssertion(signer, sp, built.xml) : xml, RelayState: relayState };
    }
    const out = await signer.createLoginResponse(sp, { extract: parsed.extract }, 'post', { email: user }, { relayState, customTagReplacement: () => ({ id: built.id, context: built.xml }) });
    return { SAMLResponse: out.context, RelayState: relayState };
  }

  let metadataFetches = 0;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`test IdP: ${(err as Error).message}`);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', base);
    if (req.method === 'GET' && url.pathname === '/metadata') {
      metadataFetches++;
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' });
      res.end(metadataXml);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/sso') {
      // The login page: pick a user; the POST below answers with the form a browser auto-submits.
      const options = Object.keys(o.users).map((u) => `<option>${html(u)}</option>`).join('');
      page(res, `<form method="post" action="/sso/login"><input type="hidden" name="request" value="${html(url.href)}"><select name="user">${options}</select><button type="submit">Sign in</button></form>`);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/sso/login') {
      const form = new URLSearchParams(await readBody(req, 64 * 1024));
      const out = await respond(form.get('request') ?? '', form.get('user') ?? '');
      page(
        res,
        `<form method="post" action="${html(o.sp.acs)}"><input type="hidden" name="SAMLResponse" value="${html(out.SAMLResponse)}"><input type="hidden" name="RelayState" value="${html(out.RelayState)}"><noscript><button type="submit">Continue</button></noscript></form><script>document.forms[0].submit()</script>`,
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }

  return {
    metadataXml,
    metadataUrl: `${base}/metadata`,
    ssoUrl,
    issuer,
    certPem: keys.certPem,
    respond,
    metadataFetches: () => metadataFetches,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function page(res: ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>Test IdP</title></head><body>${body}</body></html>`);
}

function html(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
