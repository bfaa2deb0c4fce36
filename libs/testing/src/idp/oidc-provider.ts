/**
 * A real OpenID provider (`oidc-provider`) for SSO tests, on 127.0.0.1 over http. It has its own
 * login page (login + password, checked against the accounts given) and consent page, plain
 * HTML forms a real browser can use; `loginWithoutBrowser` drives the same pages over HTTP
 * (manual redirects, a cookie jar) so driver tests need no Chromium.
 */
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
// @ts-expect-error -- oidc-provider ships no type declarations and @types/oidc-provider is not installed
import OidcProvider from 'oidc-provider';

export interface TestOidcClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
}

export interface TestOidcAccount {
  password: string;
  claims: Record<string, unknown>;
}

export interface StartTestOidcProviderOptions {
  clients: TestOidcClient[];
  /** Keyed by login name, which is also the account's `sub`. */
  accounts: Record<string, TestOidcAccount>;
  /** The authentication context (acr) every login gets, e.g. an MFA level; none when unset. */
  acr?: string;
}

export interface TestOidcProvider {
  /** `http://127.0.0.1:<port>` */
  issuer: string;
  /**
   * Replaces an account's claims (sub stays the login name). Claim names must be standard or
   * among those some account had at start: the provider's scope → claims table is fixed.
   */
  setClaims(account: string, claims: Record<string, unknown>): void;
  /** The person leaves: the account is gone, so its refresh tokens are refused from now on. */
  removeAccount(account: string): void;
  /**
   * Follows `authUrl` through the login and consent pages as a browser would and returns the URL
   * the provider finally sends the browser to (the client's redirect_uri with code or error).
   */
  loginWithoutBrowser(authUrl: string, account: string, password: string): Promise<URL>;
  close(): Promise<void>;
}

// The parts of oidc-provider's API used here (it has no bundled types).
interface InteractionDetails {
  uid: string;
  prompt: { name: string; details: { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> } };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}
interface GrantLike {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}
interface ProviderLike {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, o?: { mergeWithLastSubmission: boolean }): Promise<void>;
  Grant: (new (o: { accountId: string; clientId: string }) => GrantLike) & { find(id: string): Promise<GrantLike | undefined> };
}
const Provider = OidcProvider as new (issuer: string, configuration: Record<string, unknown>) => ProviderLike;

const STANDARD_PROFILE = [
  'name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile',
  'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
];
const STANDARD_EMAIL = ['email', 'email_verified'];

export async function startTestOidcProvider(o: StartTestOidcProviderOptions): Promise<TestOidcProvider> {
  const accounts = new Map(Object.entries(o.accounts).map(([name, a]) => [name, { password: a.password, claims: { ...a.claims } }]));
  // Non-standard claims (groups, department, …) are released with the profile scope, which every
  // OIDC login asks for; oidc-provider leaves out claims no scope names.
  const custom = new Set<string>(['groups']);
  for (const a of accounts.values()) for (const k of Object.keys(a.claims)) if (k !== 'sub' && !STANDARD_EMAIL.includes(k) && !STANDARD_PROFILE.includes(k)) custom.add(k);
  const known = new Set([...STANDARD_EMAIL, ...STANDARD_PROFILE, ...custom]);

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };

  const provider = new Provider(issuer, {
    clients: o.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    async findAccount(_ctx: unknown, sub: string) {
      if (!accounts.has(sub)) return undefined;
      return {
        accountId: sub,
        // Read at each call so setClaims takes effect on the next token or userinfo request.
        claims: async () => ({ ...accounts.get(sub)?.claims, sub }),
      };
    },
    claims: { openid: ['sub'], email: STANDARD_EMAIL, profile: [...STANDARD_PROFILE, ...custom] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    jwks: { keys: [jwk] },
    pkce: { required: () => true },
    // Short lives, set explicitly (oidc-provider asks that the defaults be chosen, not inherited).
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600, RefreshToken: 3600 },
    // A refresh token for logins that ask for offline_access (with prompt=consent, as OIDC Core
    // requires), so renewals can ask the provider again.
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    features: { devInteractions: { enabled: false } },
    ...(o.acr ? { acrValues: [o.acr] } : {}),
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
  });
  const oidcHandler = provider.callback();

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', issuer).pathname;
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/.exec(path);
    if (!m) {
      oidcHandler(req, res);
      return;
    }
    interaction(req, res, m[1] ?? '', m[2]).catch((err: unknown) => {
      if (!res.headersSent) page(res, 400, 'Error', `<p>${esc(err instanceof Error ? err.message : String(err))}</p>`);
      else res.destroy();
    });
  });

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, action: string | undefined): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    if (action === undefined) {
      if (req.method !== 'GET') throw new Error('method not allowed');
      renderPrompt(res, details);
      return;
    }
    if (req.method !== 'POST') throw new Error('method not allowed');
    const form = await readForm(req);
    if (action === 'abort') {
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
      return;
    }
    if (action === 'login') {
      if (details.prompt.name !== 'login') throw new Error('not a login prompt');
      const login = form.get('login') ?? '';
      const account = accounts.get(login);
      if (!account || !sameSecret(account.password, form.get('password') ?? '')) {
        renderPrompt(res, details, 'Invalid login or password.');
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: login, ...(o.acr ? { acr: o.acr } : {}) } }, { mergeWithLastSubmission: false });
      return;
    }
    if (details.prompt.name !== 'consent' || !details.session?.accountId) throw new Error('not a consent prompt');
    const clientId = String(details.params['client_id']);
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: details.session.accountId, clientId });
    if (!grant) throw new Error('grant not found');
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }

  function renderPrompt(res: ServerResponse, d: InteractionDetails, error?: string): void {
    const client = esc(String(d.params['client_id']));
    const abort = `<form method="post" action="/interaction/${esc(d.uid)}/abort"><button type="submit">Cancel</button></form>`;
    const err = error ? `<p class="error" role="alert">${esc(error)}</p>` : '';
    if (d.prompt.name === 'login') {
      page(res, 200, 'Sign in', `<h1>Sign in to ${client}</h1>${err}
<form method="post" action="/interaction/${esc(d.uid)}/login">
  <label>Login <input type="text" name="login" autocomplete="username" required autofocus></label>
  <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>${abort}`);
      return;
    }
    if (d.prompt.name === 'consent') {
      const scopes = (d.prompt.details.missingOIDCScope ?? []).map((s) => `<li>${esc(s)}</li>`).join('');
      page(res, 200, 'Authorize', `<h1>Authorize ${client}</h1><p>${client} asks for:</p><ul>${scopes}</ul>
<form method="post" action="/interaction/${esc(d.uid)}/confirm"><button type="submit" autofocus>Continue</button></form>${abort}`);
      return;
    }
    page(res, 501, 'Not implemented', `<p>prompt ${esc(d.prompt.name)} is not implemented</p>`);
  }

  async function loginWithoutBrowser(authUrl: string, account: string, password: string): Promise<URL> {
    const jar = new Map<string, string>();
    const origin = new URL(issuer).origin;
    let url = new URL(authUrl);
    let body: URLSearchParams | undefined;
    for (let step = 0; step < 20; step++) {
      if (url.origin !== origin) return url;
      const res = await fetch(url, {
        method: body ? 'POST' : 'GET',
        redirect: 'manual',
        headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        ...(body ? { body } : {}),
      });
      const posted = body !== undefined;
      body = undefined;
      for (const c of res.headers.getSetCookie()) {
        const [pair = '', ...attrs] = c.split(';');
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq).trim();
        const expired = attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a) || /^\s*max-age=0\s*$/i.test(a));
        if (expired) jar.delete(name);
        else jar.set(name, pair.slice(eq + 1).trim());
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        url = new URL(location, url);
        continue;
      }
      const html = await res.text();
      if (res.status !== 200 || posted) throw new Error(`login refused at ${url.pathname} (HTTP ${res.status}): ${textOf(html).slice(0, 200)}`);
      const forms = [...html.matchAll(/<form method="post" action="([^"]+)">/g)].map((f) => f[1] ?? '');
      const action = forms.find((a) => a.endsWith('/login') || a.endsWith('/confirm'));
      if (!action) throw new Error(`no login or consent form at ${url.pathname}`);
      url = new URL(unesc(action), url);
      body = action.endsWith('/login') ? new URLSearchParams({ login: account, password }) : new URLSearchParams();
    }
    throw new Error('too many steps in the login flow');
  }

  return {
    issuer,
    setClaims(account, claims) {
      const a = accounts.get(account);
      if (!a) throw new Error(`no account ${account}`);
      const unknown = Object.keys(claims).filter((k) => k !== 'sub' && !known.has(k));
      if (unknown.length) throw new Error(`claims ${unknown.join(', ')} were not declared at start (give some account them)`);
      a.claims = { ...claims };
    },
    removeAccount(account) {
      if (!accounts.delete(account)) throw new Error(`no account ${account}`);
    },
    loginWithoutBrowser,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function page(res: ServerResponse, status: number, title: string, body: string): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head><body>${body}</body></html>`;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}
function unesc(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39);/g, (e) => Object.entries(ENTITIES).find(([, v]) => v === e)?.[0] ?? e);
}
function textOf(html: string): string {
  return html.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
}
