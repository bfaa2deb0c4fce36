import * as oauth from 'openid-client';
import { SsoLoginError, type BeginInput, type BeginResult, type CompleteInput, type ConnectorResource, type DriverOptions, type RecheckInput, type SsoDriver, type SsoIdentity } from './driver.js';
import { DEFAULT_TRAIT_BOUNDS, toTraits } from './mapping.js';
import { ResponseTooLarge, readBounded as readBoundedBody } from './bounded-body.js';

/**
 * The GitHub connector (Teleport's github v3): OAuth 2 authorization code with PKCE S256 and
 * `state` = the login request id, then the REST API for who the person is (`/user`) and which
 * teams they are in (`/user/teams`); teams_to_roles (and the deprecated teams_to_logins) map
 * teams to roles. GitHub has no discovery document, so the endpoints are spelled out here.
 */

const DEFAULT_ENDPOINT = 'https://github.com';
const DEFAULT_API_ENDPOINT = 'https://api.github.com';
const SCOPE = 'read:org';
const DEFAULT_TIMEOUT_MS = 10_000;
/** A token response is a few hundred bytes; anything near this is not GitHub. */
const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
/** One page of 100 teams is ~40 KiB; 1 MiB leaves room and still bounds memory. */
const MAX_API_RESPONSE_BYTES = 1024 * 1024;
const TEAMS_PER_PAGE = 100;
/** Teleport truncates the team list too (with a warning) rather than refusing the person. */
const MAX_TEAM_PAGES = 10;
/** How many of the person's teams a "no team matched" message names. */
const TEAMS_NAMED_IN_ERRORS = 5;

// GitHub (and GitHub Enterprise, whose SSO-provisioned logins carry `_suffix`) login and slug shapes.
const LOGIN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const SLUG = /^[A-Za-z0-9_.-]{1,100}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

interface TeamMapping {
  organization: string;
  team: string;
  roles: string[];
  kubernetesGroups: string[];
  kubernetesUsers: string[];
}

interface GithubSpec {
  clientId: string;
  clientSecret: string;
  endpointUrl: string;
  apiEndpointUrl: string;
  teamsToRoles: TeamMapping[];
  /** teams_to_logins: its `logins` are role names (Teleport's meaning), plus kubernetes groups/users. */
  teamsToLogins: TeamMapping[];
}

interface Team {
  organization: string;
  slug: string;
  name: string;
}

/** Why a request to GitHub did not give a usable answer, recorded by the fetch wrappers. */
class TransportError extends Error {
  constructor(readonly kind: 'unreachable' | 'too large') {
    super(kind);
  }
}

export function createGithubDriver(o: DriverOptions & { allowHttpEndpoints?: boolean } = {}): SsoDriver {
  const fetchImpl = o.fetch ?? fetch;
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const allowHttp = o.allowHttpEndpoints === true;

  function configure(spec: GithubSpec, failures: TransportError[]): oauth.Configuration {
    const server: oauth.ServerMetadata = {
      issuer: spec.endpointUrl,
      authorization_endpoint: `${spec.endpointUrl}/login/oauth/authorize`,
      token_endpoint: `${spec.endpointUrl}/login/oauth/access_token`,
      code_challenge_methods_supported: ['S256'],
    };
    // client_secret_post: GitHub takes client_id and client_secret in the form.
    const config = new oauth.Configuration(server, spec.clientId, spec.clientSecret);
    config.timeout = Math.max(1, Math.ceil(timeoutMs / 1000));
    config[oauth.customFetch] = async (url, options) => {
      try {
        const res = await fetchImpl(url, { ...options, signal: withTimeout(options.signal, timeoutMs) } as RequestInit);
        return githubTokenQuirks(res, await readBounded(res, MAX_TOKEN_RESPONSE_BYTES));
      } catch (err) {
        const failure = err instanceof TransportError ? err : new TransportError('unreachable');
        failures.push(failure);
        throw failure;
      }
    };
    if (allowHttp) oauth.allowInsecureRequests(config);
    return config;
  }

  async function apiGet(spec: GithubSpec, token: string, path: string, query: Record<string, string> = {}): Promise<{ body: unknown; hasNext: boolean }> {
    const url = new URL(`${spec.apiEndpointUrl}${path}`);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    let res: Response;
    let bytes: Uint8Array;
    try {
      res = await fetchImpl(url, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
        // A redirect could carry the token elsewhere; GitHub does not redirect these two.
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.status === 401) {
        await res.body?.cancel().catch(() => undefined);
        throw new SsoLoginError('token revoked', `GitHub no longer accepts the login's token (GET ${path} answered 401): the authorization was revoked or expired`);
      }
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        throw new SsoLoginError('api error', `GitHub answered ${res.status} to GET ${path}`);
      }
      bytes = await readBounded(res, MAX_API_RESPONSE_BYTES);
    } catch (err) {
      if (err instanceof SsoLoginError) throw err;
      if (err instanceof TransportError && err.kind === 'too large') {
        throw new SsoLoginError('api error', `GitHub's answer to GET ${path} is larger than ${MAX_API_RESPONSE_BYTES} bytes`);
      }
      throw new SsoLoginError('provider unreachable', `GitHub's API did not answer GET ${path} (within ${timeoutMs} ms)`);
    }
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch {
      throw new SsoLoginError('api error', `GitHub's answer to GET ${path} is not JSON`);
    }
    // Only "is there a next page" is taken from Link: the next URL itself is built here, so
    // the token never goes to a host the answer names.
    const link = res.headers.get('link') ?? '';
    return { body, hasNext: /<[^>]*>\s*;\s*rel="?next"?/.test(link) };
  }

  async function fetchTeams(spec: GithubSpec, token: string, warnings: string[]): Promise<Team[]> {
    const teams: Team[] = [];
    const seen = new Set<string>();
    for (let page = 1; ; page++) {
      const { body, hasNext } = await apiGet(spec, token, '/user/teams', { per_page: String(TEAMS_PER_PAGE), page: String(page) });
      if (!Array.isArray(body)) throw new SsoLoginError('api error', "GitHub's answer to GET /user/teams is not a list");
      for (const item of body) {
        const team = parseTeam(item);
        const key = team && `${team.organization.toLowerCase()}/${team.slug}`;
        if (team && key && !seen.has(key)) {
          seen.add(key);
          teams.push(team);
        }
      }
      if (!hasNext || body.length === 0) return teams;
      if (page >= MAX_TEAM_PAGES) {
        warnings.push(`only the first ${MAX_TEAM_PAGES * TEAMS_PER_PAGE} of the person's GitHub teams were read; teams past them were not mapped`);
        return teams;
      }
    }
  }

  /** Who the token belongs to and what the connector maps them to (login and recheck alike). */
  async function identify(spec: GithubSpec, name: string, token: string): Promise<SsoIdentity> {
    const warnings: string[] = [];
    if (spec.teamsToLogins.length > 0) {
      warnings.push(`connector "${name}" uses teams_to_logins, which is deprecated: move its mappings to teams_to_roles (logins are role names there) and kubernetes_groups/kubernetes_users to the roles`);
    }
    const { body: userBody } = await apiGet(spec, token, '/user');
    const user = parseUser(userBody);
    const teams = await fetchTeams(spec, token, warnings);

    const roles: string[] = [];
    const kubernetesGroups: string[] = [];
    const kubernetesUsers: string[] = [];
    for (const m of [...spec.teamsToRoles, ...spec.teamsToLogins]) {
      if (!teams.some((t) => teamMatches(m, t))) continue;
      addAll(roles, m.roles);
      addAll(kubernetesGroups, m.kubernetesGroups);
      addAll(kubernetesUsers, m.kubernetesUsers);
    }
    const qualified = teams.map((t) => `${t.organization}/${t.slug}`);
    if (roles.length === 0) {
      const named = qualified.slice(0, TEAMS_NAMED_IN_ERRORS).join(', ');
      const more = qualified.length > TEAMS_NAMED_IN_ERRORS ? ` and ${qualified.length - TEAMS_NAMED_IN_ERRORS} more` : '';
      throw new SsoLoginError(
        'no team matched',
        `${user.login} is in no team that connector "${name}" maps to roles (their teams: ${named ? named + more : 'none'})`,
        { login: user.login, teams: qualified.slice(0, TEAMS_NAMED_IN_ERRORS) },
      );
    }
    const slugs: string[] = [];
    addAll(slugs, teams.map((t) => t.slug));
    if (slugs.length > DEFAULT_TRAIT_BOUNDS.maxValues) {
      warnings.push(`the github_teams trait holds the first ${DEFAULT_TRAIT_BOUNDS.maxValues} of the person's ${slugs.length} team slugs (the bound on a trait)`);
    }
    return {
      renewal: { access_token: token },
      username: user.login,
      roles,
      traits: toTraits({ github_teams: slugs, logins: [user.login], kubernetes_groups: kubernetesGroups, kubernetes_users: kubernetesUsers, username: [user.login] }),
      subject: String(user.id),
      received: { login: user.login, id: user.id, teams: qualified },
      warnings,
    };
  }

  return {
    kind: 'github',

    async begin(input: BeginInput): Promise<BeginResult> {
      const spec = readSpec(input.connector, allowHttp);
      const verifier = oauth.randomPKCECodeVerifier();
      const url = oauth.buildAuthorizationUrl(configure(spec, []), {
        redirect_uri: input.callbackUrl,
        scope: SCOPE,
        state: input.requestId,
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      return { url: url.href, keep: { pkce_verifier: verifier } };
    },

    async complete(input: CompleteInput): Promise<SsoIdentity> {
      const spec = readSpec(input.connector, allowHttp);
      const name = input.connector.metadata.name;
      const { params } = input;
      if (params['state'] !== input.requestId) {
        throw new SsoLoginError('state mismatch', 'the callback does not carry the state of this login request');
      }
      if (params['error'] !== undefined) {
        throw new SsoLoginError('provider refused', `GitHub refused the login: ${printable(params['error'], 64)}`, { error: printable(params['error'], 64) });
      }
      const code = params['code'];
      if (!code) throw new SsoLoginError('code exchange failed', 'the callback carries no code');
      const verifier = input.keep['pkce_verifier'];
      if (!verifier) throw new SsoLoginError('request invalid', 'the login request has no PKCE verifier');

      const failures: TransportError[] = [];
      const current = new URL(input.callbackUrl);
      current.search = '';
      current.searchParams.set('code', code);
      current.searchParams.set('state', params['state']);
      let token: string;
      try {
        const tokens = await oauth.authorizationCodeGrant(configure(spec, failures), current, {
          expectedState: input.requestId,
          pkceCodeVerifier: verifier,
        });
        if (tokens.token_type !== 'bearer') throw new SsoLoginError('code exchange failed', `GitHub issued a token of type ${printable(tokens.token_type, 32)}, not bearer`);
        token = tokens.access_token;
      } catch (err) {
        throw tokenError(err, failures);
      }

      return identify(spec, name, token);
    },

    async recheck(input: RecheckInput): Promise<SsoIdentity> {
      const spec = readSpec(input.connector, allowHttp);
      const token = input.renewal['access_token'];
      if (!token) throw new SsoLoginError('renewal unavailable', 'the login kept no GitHub token to check it again');
      const who = await identify(spec, input.connector.metadata.name, token);
      if (who.subject !== input.subject) throw new SsoLoginError('subject changed', `GitHub's token now answers for ${who.username}, not the person who logged in`);
      return who;
    },
  };
}

/** The token exchange's failure as a login error that names the check and carries no token. */
function tokenError(err: unknown, failures: TransportError[]): SsoLoginError {
  if (err instanceof SsoLoginError) return err;
  const failure = failures[0];
  if (failure?.kind === 'unreachable') return new SsoLoginError('provider unreachable', 'GitHub did not answer the code exchange');
  if (failure?.kind === 'too large') return new SsoLoginError('code exchange failed', `GitHub's token response is larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`);
  if (err instanceof oauth.ResponseBodyError) {
    return new SsoLoginError('code exchange failed', `GitHub refused the code: ${printable(err.error, 64)}`, { error: printable(err.error, 64) });
  }
  if (err instanceof oauth.AuthorizationResponseError) return new SsoLoginError('provider refused', 'GitHub refused the login');
  // openid-client's own messages name the check ("invalid response encountered") and no values.
  const message = err instanceof Error ? printable(err.message, 120) : 'unexpected failure';
  return new SsoLoginError('code exchange failed', `the code exchange failed: ${message}`);
}

/**
 * GitHub answers a refused code exchange with HTTP 200 and an `error` field; give
 * openid-client the standard form (a 400 with the same body) so it reports the error as one.
 */
function githubTokenQuirks(res: Response, body: Uint8Array): Response {
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  let status = res.status;
  if (status === 200 && (headers.get('content-type') ?? '').includes('json')) {
    try {
      const json: unknown = JSON.parse(new TextDecoder().decode(body));
      if (isObject(json) && typeof json['error'] === 'string' && json['access_token'] === undefined) status = 400;
    } catch {
      // Not JSON: openid-client reports it.
    }
  }
  const nullBody = status === 204 || status === 205 || status === 304;
  return new Response(nullBody ? null : new Uint8Array(body), { status, statusText: res.statusText, headers });
}

/** Reads at most `max` bytes of a body: a longer one is cancelled, not buffered. */
/** The shared bounded read, failing as this driver's transport does. */
async function readBounded(res: Response, max: number): Promise<Buffer> {
  try {
    return await readBoundedBody(res, max);
  } catch (err) {
    throw err instanceof ResponseTooLarge ? new TransportError('too large') : err;
  }
}

function withTimeout(signal: AbortSignal | undefined, ms: number): AbortSignal {
  const own = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([signal, own]) : own;
}

function parseUser(body: unknown): { login: string; id: number } {
  if (!isObject(body) || typeof body['login'] !== 'string' || !LOGIN.test(body['login'])) {
    throw new SsoLoginError('api error', "GitHub's /user answer has no valid login");
  }
  const id = body['id'];
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw new SsoLoginError('api error', "GitHub's /user answer has no valid id");
  return { login: body['login'], id };
}

/** A team from /user/teams, or undefined for an entry that is not one (left out, not trusted). */
function parseTeam(item: unknown): Team | undefined {
  if (!isObject(item) || !isObject(item['organization'])) return undefined;
  const organization = item['organization']['login'];
  const slug = item['slug'];
  const name = item['name'];
  if (typeof organization !== 'string' || !LOGIN.test(organization)) return undefined;
  if (typeof slug !== 'string' || !SLUG.test(slug)) return undefined;
  const goodName = typeof name === 'string' && name.length <= 256 && !CONTROL.test(name);
  return { organization, slug, name: goodName ? name : slug };
}

/** Teleport's match, a little kinder: organization logins are case-insensitive, and a team may be named by slug or by name. */
function teamMatches(m: TeamMapping, t: Team): boolean {
  if (m.organization.toLowerCase() !== t.organization.toLowerCase()) return false;
  return m.team.toLowerCase() === t.slug.toLowerCase() || m.team === t.name;
}

function readSpec(connector: ConnectorResource, allowHttp: boolean): GithubSpec {
  if (connector.kind !== 'github') throw invalid(connector, `is a ${String(connector.kind)} connector`);
  const spec = connector.spec;
  const clientId = spec['client_id'];
  const clientSecret = spec['client_secret'];
  if (typeof clientId !== 'string' || !clientId) throw invalid(connector, 'has no client_id');
  if (typeof clientSecret !== 'string' || !clientSecret) throw invalid(connector, 'has no client_secret');
  const endpointUrl = endpoint(connector, 'endpoint_url', DEFAULT_ENDPOINT, allowHttp);
  const apiEndpointUrl = endpoint(connector, 'api_endpoint_url', DEFAULT_API_ENDPOINT, allowHttp);
  const teamsToRoles = mappings(connector, 'teams_to_roles', 'roles');
  const teamsToLogins = mappings(connector, 'teams_to_logins', 'logins');
  if (teamsToRoles.length + teamsToLogins.length === 0) throw invalid(connector, 'maps no team to roles');
  return { clientId, clientSecret, endpointUrl, apiEndpointUrl, teamsToRoles, teamsToLogins };
}

function endpoint(connector: ConnectorResource, key: string, fallback: string, allowHttp: boolean): string {
  const raw = connector.spec[key] ?? fallback;
  let url: URL;
  try {
    url = new URL(String(raw));
  } catch {
    throw invalid(connector, `has an invalid ${key}`);
  }
  if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:')) throw invalid(connector, `${key} must be https`);
  if (url.search || url.hash || url.username || url.password) throw invalid(connector, `${key} must be a plain URL`);
  return url.href.replace(/\/+$/, '');
}

function mappings(connector: ConnectorResource, key: string, rolesKey: 'roles' | 'logins'): TeamMapping[] {
  const raw = connector.spec[key];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalid(connector, `${key} is not a list`);
  return raw.map((entry: unknown, i) => {
    if (!isObject(entry) || typeof entry['organization'] !== 'string' || typeof entry['team'] !== 'string') {
      throw invalid(connector, `${key}[${i}] needs organization and team`);
    }
    return {
      organization: entry['organization'],
      team: entry['team'],
      roles: strings(connector, entry[rolesKey], `${key}[${i}].${rolesKey}`),
      kubernetesGroups: strings(connector, entry['kubernetes_groups'], `${key}[${i}].kubernetes_groups`),
      kubernetesUsers: strings(connector, entry['kubernetes_users'], `${key}[${i}].kubernetes_users`),
    };
  });
}

function strings(connector: ConnectorResource, raw: unknown, what: string): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || !raw.every((v): v is string => typeof v === 'string')) throw invalid(connector, `${what} is not a list of strings`);
  return raw.filter((v) => v.length > 0);
}

function invalid(connector: ConnectorResource, what: string): SsoLoginError {
  return new SsoLoginError('connector invalid', `connector "${printable(String(connector.metadata.name), 64)}" ${what}`);
}

function addAll(into: string[], values: readonly string[]): void {
  for (const v of values) if (!into.includes(v)) into.push(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Provider-supplied text for a message: printable and short. */
function printable(s: unknown, max: number): string {
  const text = String(s).replace(/[^\x20-\x7e]/g, '?');
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
