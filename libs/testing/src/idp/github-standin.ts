import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A GitHub Enterprise stand-in for tests: the OAuth app endpoints (`/login/oauth/authorize`,
 * `/login/oauth/access_token`) and the REST API under `/api/v3` (`/user`, `/user/teams`), with
 * GitHub's habits — token errors come back as HTTP 200 with an `error` field, codes are used
 * once, PKCE S256 is checked, team lists are paginated with Link headers.
 */
export interface GithubTeam {
  organization: string;
  slug: string;
  name: string;
}

export interface GithubStandIn {
  /** The "GitHub instance" URL (connector endpoint_url). */
  endpointUrl: string;
  /** The REST API base (connector api_endpoint_url): `${endpointUrl}/api/v3`. */
  apiEndpointUrl: string;
  /** Who is signed in to "GitHub" in the browser (the authorize page acts for them). */
  signIn(login: string, id: number): void;
  setTeams(login: string, teams: GithubTeam[]): void;
  /** The person revokes the app's authorization (or leaves): their tokens answer 401 from now on. */
  revokeTokens(login: string): void;
  /** Presses "Authorize" on the page at authorizeUrl: resolves to the callback URL GitHub redirects to. */
  approve(authorizeUrl: string): Promise<URL>;
  /** Presses "Cancel": the callback URL carries error=access_denied. */
  deny(authorizeUrl: string): Promise<URL>;
  /**
   * Answers requests for a path (e.g. '/api/v3/user/teams') with a handler of the test's
   * instead (a hostile or broken GitHub); undefined restores the normal answer.
   */
  respondWith(pathname: string, handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined): void;
  /** Token exchanges seen, successful or not (for tests that check a request never reached GitHub). */
  readonly tokenRequests: number;
  close(): Promise<void>;
}

interface IssuedCode {
  login: string;
  redirectUri: string | undefined;
  challenge: string | undefined;
  used: boolean;
}

const MAX_FORM_BYTES = 64 * 1024;

export async function startGithubStandIn(o: { clientId: string; clientSecret: string }): Promise<GithubStandIn> {
  const users = new Map<string, { id: number; teams: GithubTeam[] }>();
  let signedIn: string | undefined;
  const codes = new Map<string, IssuedCode>();
  const tokens = new Map<string, string>();
  const overrides = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  let tokenRequests = 0;

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const override = overrides.get(url.pathname);
    if (override) return override(req, res);
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /login/oauth/authorize':
        return authorizePage(url, res);
      case 'POST /login/oauth/authorize':
        return authorizeDecision(new URLSearchParams(await readBody(req)), res);
      case 'POST /login/oauth/access_token':
        return accessToken(req, new URLSearchParams(await readBody(req)), res);
      case 'GET /api/v3/user':
        return apiUser(req, res);
      case 'GET /api/v3/user/teams':
        return apiTeams(req, url, res);
      default:
        return json(res, 404, { message: 'Not Found' });
    }
  }

  function authorizePage(url: URL, res: ServerResponse): void {
    const q = url.searchParams;
    if (q.get('client_id') !== o.clientId) return html(res, 404, '<h1>404</h1><p>No OAuth application with this client_id.</p>');
    if (!signedIn) return html(res, 401, '<h1>Sign in to GitHub</h1><p>No test user is signed in (call signIn).</p>');
    // The test flag: approve without a page, as a browser would after pressing the button.
    if (q.get('keyway_auto_approve') === '1') return authorizeDecision(withDecision(q, 'authorize'), res);
    const hidden = [...q.entries()]
      .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
      .join('\n      ');
    html(
      res,
      200,
      `<h1>Authorize application</h1>
    <p>Signed in as <strong>${escapeHtml(signedIn)}</strong>. The application asks for: ${escapeHtml(q.get('scope') ?? '(no scope)')}.</p>
    <form method="post" action="/login/oauth/authorize">
      ${hidden}
      <button type="submit" name="decision" value="authorize" id="js-oauth-authorize-btn">Authorize</button>
      <button type="submit" name="decision" value="cancel">Cancel</button>
    </form>`,
    );
  }

  function authorizeDecision(form: URLSearchParams, res: ServerResponse): void {
    const redirectUri = form.get('redirect_uri') ?? undefined;
    if (form.get('client_id') !== o.clientId || !signedIn || !redirectUri) return html(res, 400, '<h1>Bad request</h1>');
    const back = new URL(redirectUri);
    const state = form.get('state');
    if (form.get('decision') !== 'authorize') {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user has denied your application access.');
    } else {
      const method = form.get('code_challenge_method');
      const challenge = form.get('code_challenge') ?? undefined;
      if (challenge !== undefined && method !== 'S256') return html(res, 400, '<h1>Only S256 code challenges are supported</h1>');
      const code = randomBytes(10).toString('hex');
      codes.set(code, { login: signedIn, redirectUri, challenge, used: false });
      back.searchParams.set('code', code);
    }
    if (state !== null) back.searchParams.set('state', state);
    res.writeHead(302, { location: back.href }).end();
  }

  function accessToken(req: IncomingMessage, form: URLSearchParams, res: ServerResponse): void {
    tokenRequests++;
    let clientId = form.get('client_id');
    let clientSecret = form.get('client_secret');
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic?.[1]) {
      const pair = Buffer.from(basic[1], 'base64').toString();
      const colon = pair.indexOf(':');
      clientId = colon < 0 ? null : decodeURIComponent(pair.slice(0, colon));
      clientSecret = colon < 0 ? null : decodeURIComponent(pair.slice(colon + 1));
    }
    // GitHub answers token errors with 200 and an error field.
    const refuse = (error: string, description: string): void => tokenAnswer(req, res, { error, error_description: description });
    if (clientId !== o.clientId || clientSecret === null || !same(clientSecret, o.clientSecret)) {
      return refuse('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
    }
    const issued = codes.get(form.get('code') ?? '');
    if (!issued || issued.used) return refuse('bad_verification_code', 'The code passed is incorrect or expired.');
    issued.used = true; // Used once, whatever comes next.
    const redirectUri = form.get('redirect_uri');
    if (issued.redirectUri !== undefined && redirectUri !== null && redirectUri !== issued.redirectUri) {
      return refuse('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.');
    }
    if (issued.challenge !== undefined) {
      const verifier = form.get('code_verifier');
      const computed = verifier === null ? '' : createHash('sha256').update(verifier).digest('base64url');
      if (!same(computed, issued.challenge)) return refuse('bad_verification_code', 'The code_verifier does not match the code_challenge.');
    }
    const token = `gho_${randomBytes(18).toString('hex')}`;
    tokens.set(token, issued.login);
    tokenAnswer(req, res, { access_token: token, token_type: 'bearer', scope: 'read:org' });
  }

  function tokenAnswer(req: IncomingMessage, res: ServerResponse, body: Record<string, string>): void {
    if ((req.headers.accept ?? '').includes('application/json')) return json(res, 200, body);
    res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }).end(new URLSearchParams(body).toString());
  }

  function authenticated(req: IncomingMessage, res: ServerResponse): { login: string; id: number; teams: GithubTeam[] } | undefined {
    const m = /^(?:Bearer|token) (\S+)$/i.exec(req.headers.authorization ?? '');
    const login = m?.[1] ? tokens.get(m[1]) : undefined;
    const user = login ? users.get(login) : undefined;
    if (!login || !user) {
      json(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      return undefined;
    }
    return { login, ...user };
  }

  function apiUser(req: IncomingMessage, res: ServerResponse): void {
    const user = authenticated(req, res);
    if (user) json(res, 200, { login: user.login, id: user.id, type: 'User', site_admin: false });
  }

  function apiTeams(req: IncomingMessage, url: URL, res: ServerResponse): void {
    const user = authenticated(req, res);
    if (!user) return;
    const perPage = clamp(Number(url.searchParams.get('per_page') ?? 30), 1, 100);
    const page = Math.max(1, Math.floor(Number(url.searchParams.get('page') ?? 1)) || 1);
    const last = Math.max(1, Math.ceil(user.teams.length / perPage));
    const items = user.teams.slice((page - 1) * perPage, page * perPage).map((t, i) => ({
      id: (page - 1) * perPage + i + 1,
      name: t.name,
      slug: t.slug,
      organization: { login: t.organization, id: 1000 },
    }));
    const link = (p: number, rel: string): string => {
      const u = new URL(`${apiEndpointUrl}/user/teams`);
      u.searchParams.set('per_page', String(perPage));
      u.searchParams.set('page', String(p));
      return `<${u.href}>; rel="${rel}"`;
    };
    const links: string[] = [];
    if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
    if (page > 1) links.push(link(1, 'first'), link(page - 1, 'prev'));
    json(res, 200, items, links.length > 0 ? { link: links.join(', ') } : {});
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const endpointUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const apiEndpointUrl = `${endpointUrl}/api/v3`;

  async function decide(authorizeUrl: string, decision: string): Promise<URL> {
    const page = new URL(authorizeUrl);
    const res = await fetch(`${endpointUrl}/login/oauth/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: withDecision(page.searchParams, decision).toString(),
      redirect: 'manual',
    });
    const location = res.headers.get('location');
    await res.body?.cancel();
    if (res.status !== 302 || !location) throw new Error(`the authorize page answered ${res.status}, not a redirect`);
    return new URL(location);
  }

  return {
    endpointUrl,
    apiEndpointUrl,
    signIn(login, id) {
      signedIn = login;
      const user = users.get(login);
      users.set(login, { id, teams: user?.teams ?? [] });
    },
    setTeams(login, teams) {
      const user = users.get(login);
      users.set(login, { id: user?.id ?? 0, teams: teams.map((t) => ({ ...t })) });
    },
    revokeTokens(login) {
      for (const [token, owner] of tokens) if (owner === login) tokens.delete(token);
    },
    approve: (authorizeUrl) => decide(authorizeUrl, 'authorize'),
    deny: (authorizeUrl) => decide(authorizeUrl, 'cancel'),
    respondWith(pathname, handler) {
      if (handler) overrides.set(pathname, handler);
      else overrides.delete(pathname);
    },
    get tokenRequests() {
      return tokenRequests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function withDecision(q: URLSearchParams, decision: string): URLSearchParams {
  const form = new URLSearchParams(q);
  form.delete('keyway_auto_approve');
  form.set('decision', decision);
  return form;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
}

function html(res: ServerResponse, status: number, body: string): void {
  res
    .writeHead(status, { 'content-type': 'text/html; charset=utf-8' })
    .end(`<!doctype html>\n<html><head><meta charset="utf-8"><title>GitHub stand-in</title></head><body>\n    ${body}\n</body></html>\n`);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function clamp(n: number, min: number, max: number): number {
  return Number.isFinite(n) ? Math.min(max, Math.max(min, Math.floor(n))) : min;
}
