/**
 * The OIDC connector driver (Teleport's oidc v3 connector): authorization code flow with PKCE
 * (S256, always), state = the login request id and a nonce, all checked by openid-client.
 * Claims are the ID token's merged with userinfo's; they map to roles through claims_to_roles
 * and become `external.*` traits.
 */
import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import { SsoLoginError, type BeginInput, type BeginResult, type CompleteInput, type ConnectorResource, type DriverOptions, type RecheckInput, type SsoDriver, type SsoIdentity } from './driver.js';
import { mapToRoles, toTraits, type ValueMapping } from './mapping.js';
import { ResponseTooLarge, readBounded } from './bounded-body.js';

export interface OidcDriverOptions extends DriverOptions {
  /**
   * Let issuers (and so every endpoint they announce) be plain http. Only for tests against a
   * local provider; without it an http issuer is refused.
   */
  allowHttpIssuer?: boolean;
  /** How long a discovered provider configuration (and its keys) is reused (default 5 min). */
  discoveryTtlMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_DISCOVERY_TTL_MS = 5 * 60_000;
const MAX_CACHED_PROVIDERS = 64;
/** Discovery documents, JWKS, token and userinfo responses are all far below this. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
const MAX_PARAM_LENGTH = 4096;
const MAX_USERNAME_LENGTH = 255;
/** Callback parameters the code flow uses; anything else the browser brings is dropped. */
const CALLBACK_PARAMS = ['code', 'state', 'iss', 'error', 'error_description', 'error_uri', 'session_state'];

interface OidcSpec {
  issuer: string;
  clientId: string;
  clientSecret: string | undefined;
  redirectUrls: string[];
  scopes: string[];
  mappings: ValueMapping[];
  usernameClaim: string;
  prompt: string | undefined;
  maxAgeSeconds: number | undefined;
  acrValues: string | undefined;
  allowUnverifiedEmail: boolean;
}

/** Marks a failure to reach the provider at all, through openid-client's error wrapping. */
class ProviderUnreachable extends Error {}

export function createOidcDriver(o: OidcDriverOptions = {}): SsoDriver {
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const ttlMs = o.discoveryTtlMs ?? DEFAULT_DISCOVERY_TTL_MS;
  const baseFetch = o.fetch ?? globalThis.fetch;
  const cache = new Map<string, { config: client.Configuration; expires: number }>();

  // Every request to the provider goes through here: a timeout of its own and a bounded body,
  // so a slow or hostile provider can neither hang a login nor fill memory.
  const boundedFetch: client.CustomFetch = async (url, options) => {
    const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
    let res: Response;
    let body: Uint8Array;
    try {
      res = await baseFetch(url, { ...options, signal } as RequestInit);
      body = await readBounded(res, MAX_RESPONSE_BYTES);
    } catch (err) {
      if (err instanceof ResponseTooLarge) throw err;
      throw new ProviderUnreachable(`${new URL(url).origin}: ${err instanceof Error ? err.message : 'request failed'}`, { cause: err });
    }
    const headers = new Headers(res.headers);
    headers.delete('content-length');
    headers.delete('content-encoding');
    const nullBody = res.status === 204 || res.status === 304 || (res.status >= 100 && res.status < 200);
    return new Response(nullBody ? null : new Uint8Array(body), { status: res.status, statusText: res.statusText, headers });
  };

  async function configFor(spec: OidcSpec, connector: string): Promise<client.Configuration> {
    const secretTag = spec.clientSecret === undefined ? '-' : createHash('sha256').update(spec.clientSecret).digest('base64url');
    const key = `${spec.issuer}\n${spec.clientId}\n${secretTag}`;
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.expires > now) return hit.config;
    cache.delete(key);

    const issuer = new URL(spec.issuer);
    if (issuer.protocol === 'http:' && !o.allowHttpIssuer) {
      throw new SsoLoginError('insecure issuer', `OIDC connector ${connector}: issuer ${issuer.origin} is not https`);
    }
    let config: client.Configuration;
    try {
      config = await client.discovery(issuer, spec.clientId, spec.clientSecret === undefined ? undefined : { client_secret: spec.clientSecret }, undefined, {
        [client.customFetch]: boundedFetch,
        timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
        // Explicit opt-in only (see allowHttpIssuer); this also lets discovery itself use http.
        ...(issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : {}),
      });
    } catch (err) {
      throw new SsoLoginError('provider unreachable', `OIDC connector ${connector}: discovery at ${issuer.origin} failed (${describe(err)})`);
    }
    // Pick the client authentication the provider says it takes (the spec's default is basic);
    // a connector without a secret is a public client, held to PKCE alone.
    const methods = config.serverMetadata().token_endpoint_auth_methods_supported;
    const auth =
      spec.clientSecret === undefined
        ? client.None()
        : !methods || methods.includes('client_secret_basic') || !methods.includes('client_secret_post')
          ? client.ClientSecretBasic(spec.clientSecret)
          : client.ClientSecretPost(spec.clientSecret);
    const rebuilt = new client.Configuration(config.serverMetadata(), spec.clientId, spec.clientSecret === undefined ? undefined : { client_secret: spec.clientSecret }, auth);
    rebuilt[client.customFetch] = boundedFetch;
    rebuilt.timeout = config.timeout;
    if (issuer.protocol === 'http:') client.allowInsecureRequests(rebuilt);
    config = rebuilt;
    if (cache.size >= MAX_CACHED_PROVIDERS) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(key, { config, expires: now + ttlMs });
    return config;
  }

  return {
    kind: 'oidc',

    async begin(input: BeginInput): Promise<BeginResult> {
      const name = input.connector.metadata.name;
      const spec = parseSpec(input.connector);
      checkCallback(spec, input.callbackUrl, name);
      const config = await configFor(spec, name);
      const verifier = client.randomPKCECodeVerifier();
      const nonce = client.randomNonce();
      const params: Record<string, string> = {
        redirect_uri: input.callbackUrl,
        scope: spec.scopes.join(' '),
        state: input.requestId,
        nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      };
      // Teleport sends select_account when prompt is unset; only where the provider takes it,
      // since some (oidc-provider among them) refuse a prompt value they do not know.
      const supported = config.serverMetadata()['prompt_values_supported'];
      const prompt = spec.prompt ?? (Array.isArray(supported) && supported.includes('select_account') ? 'select_account' : undefined);
      if (prompt) params['prompt'] = prompt;
      if (spec.maxAgeSeconds !== undefined) params['max_age'] = String(spec.maxAgeSeconds);
      if (spec.acrValues) params['acr_values'] = spec.acrValues;
      const keep: Record<string, string> = { verifier, nonce };
      if (spec.maxAgeSeconds !== undefined) keep['maxAge'] = String(spec.maxAgeSeconds);
      return { url: client.buildAuthorizationUrl(config, params).href, keep };
    },

    async complete(input: CompleteInput): Promise<SsoIdentity> {
      const name = input.connector.metadata.name;
      const spec = parseSpec(input.connector);
      const error = input.params['error'];
      if (error !== undefined) {
        const code = /^[A-Za-z0-9_.-]{1,64}$/.test(error) ? error : 'invalid';
        throw new SsoLoginError('provider refused', `OIDC connector ${name}: the provider refused the login (${code})`, { error: code });
      }
      checkCallback(spec, input.callbackUrl, name);
      const { verifier, nonce } = input.keep;
      if (!verifier || !nonce) throw new SsoLoginError('code exchange failed', `OIDC connector ${name}: the login request has no PKCE verifier or nonce`);
      const config = await configFor(spec, name);

      const current = new URL(input.callbackUrl);
      for (const p of CALLBACK_PARAMS) {
        const v = input.params[p];
        if (v === undefined) continue;
        if (v.length > MAX_PARAM_LENGTH) throw new SsoLoginError('code exchange failed', `OIDC connector ${name}: callback parameter ${p} is too long`);
        current.searchParams.set(p, v);
      }
      const maxAge = input.keep['maxAge'] === undefined ? undefined : Number(input.keep['maxAge']);

      let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
      try {
        tokens = await client.authorizationCodeGrant(config, current, {
          pkceCodeVerifier: verifier,
          expectedState: input.requestId,
          expectedNonce: nonce,
          idTokenExpected: true,
          ...(maxAge !== undefined && Number.isFinite(maxAge) ? { maxAge } : {}),
        });
      } catch (err) {
        throw classify(err, name, 'code exchange failed', 'the code exchange failed');
      }
      const idClaims = tokens.claims();
      if (!idClaims) throw new SsoLoginError('code exchange failed', `OIDC connector ${name}: the provider returned no ID token`);
      checkAcr(spec, idClaims['acr'], name);
      const who = await identify(config, spec, name, tokens.access_token, idClaims);
      if (tokens.refresh_token) who.renewal = { refresh_token: tokens.refresh_token };
      else who.warnings.push(`OIDC connector ${name}: the provider issued no refresh token, so certificate renewals cannot ask it again; add offline_access to scope`);
      return who;
    },

    async recheck(input: RecheckInput): Promise<SsoIdentity> {
      const name = input.connector.metadata.name;
      const spec = parseSpec(input.connector);
      const refreshToken = input.renewal['refresh_token'];
      if (!refreshToken) throw new SsoLoginError('renewal unavailable', `OIDC connector ${name}: the login kept no refresh token to check it again`);
      const config = await configFor(spec, name);
      let tokens: Awaited<ReturnType<typeof client.refreshTokenGrant>>;
      try {
        tokens = await client.refreshTokenGrant(config, refreshToken);
      } catch (err) {
        throw classify(err, name, 'refresh refused', 'the provider refused the refresh token');
      }
      const idClaims = tokens.claims();
      if (idClaims && idClaims.sub !== input.subject) throw new SsoLoginError('subject changed', `OIDC connector ${name}: the refreshed ID token is for another subject`);
      if (!idClaims && !config.serverMetadata().userinfo_endpoint) {
        throw new SsoLoginError('renewal unavailable', `OIDC connector ${name}: the provider answered the refresh with neither an ID token nor a userinfo endpoint to read the claims from`);
      }
      const who = await identify(config, spec, name, tokens.access_token, idClaims ?? { sub: input.subject });
      who.renewal = { refresh_token: tokens.refresh_token ?? refreshToken };
      return who;
    },
  };

  /** Claims (ID token over userinfo), the user name and the roles they map to: login and recheck alike. */
  async function identify(config: client.Configuration, spec: OidcSpec, name: string, accessToken: string, idClaims: Record<string, unknown> & { sub: string }): Promise<SsoIdentity> {
    let userinfo: Record<string, unknown> = {};
    if (config.serverMetadata().userinfo_endpoint) {
      try {
        userinfo = await client.fetchUserInfo(config, accessToken, idClaims.sub);
      } catch (err) {
        throw classify(err, name, 'userinfo failed', 'the userinfo request failed');
      }
    }
    // The ID token is signed by the provider: it wins every conflict (sub is already checked
    // equal by fetchUserInfo).
    const claims: Record<string, unknown> = { ...userinfo, ...idClaims };

    const verified = claims['email_verified'];
    if (!spec.allowUnverifiedEmail && claims['email'] !== undefined && (verified === false || verified === 'false')) {
      throw new SsoLoginError('email not verified', `OIDC connector ${name}: the provider says the email address is not verified (allow_unverified_email is off)`);
    }
    const rawName = claims[spec.usernameClaim];
    if (typeof rawName !== 'string' || rawName.length === 0) {
      throw new SsoLoginError('missing username claim', `OIDC connector ${name}: claim ${spec.usernameClaim} (username_claim) is missing or not a string`, { claim: spec.usernameClaim });
    }
    if (rawName.length > MAX_USERNAME_LENGTH || /[\u0000-\u001f\u007f]/.test(rawName)) {
      throw new SsoLoginError('missing username claim', `OIDC connector ${name}: claim ${spec.usernameClaim} (username_claim) is not a usable user name`, { claim: spec.usernameClaim });
    }

    const traits = toTraits(claims);
    const roles = mapToRoles(spec.mappings, traits);
    if (roles.length === 0) {
      const checked = [...new Set(spec.mappings.map((m) => m.name))];
      throw new SsoLoginError('no role matched', `OIDC connector ${name}: claims_to_roles matched no role (claims checked: ${checked.join(', ')})`, { connector: name, claims: checked });
    }
    return { username: rawName, roles, traits, subject: idClaims.sub, received: claims, warnings: [] };
  }
}

/**
 * acr_values asks the provider for an authentication context; like Teleport, the ID token's
 * `acr` must then be one of them, or a provider that ignored the request would pass.
 */
function checkAcr(spec: OidcSpec, acr: unknown, name: string): void {
  if (!spec.acrValues) return;
  const wanted = spec.acrValues.split(/\s+/).filter(Boolean);
  if (typeof acr !== 'string' || !wanted.includes(acr)) {
    const got = typeof acr === 'string' ? acr.replace(/[^\x20-\x7e]/g, '?').slice(0, 64) : 'none';
    throw new SsoLoginError('acr mismatch', `OIDC connector ${name}: the ID token's authentication context (acr) is ${got}, not one of acr_values (${wanted.join(' ')})`);
  }
}

/** The connector spec as the driver uses it; the resource schema validated it when stored. */
function parseSpec(c: ConnectorResource): OidcSpec {
  const s = c.spec;
  const name = c.metadata.name;
  const str = (k: string): string | undefined => (typeof s[k] === 'string' ? (s[k] as string) : undefined);
  const issuer = str('issuer_url');
  const clientId = str('client_id');
  if (!issuer || !clientId) throw new SsoLoginError('connector invalid', `OIDC connector ${name}: issuer_url and client_id are required`);
  const redirect = s['redirect_url'];
  const redirectUrls = typeof redirect === 'string' ? [redirect] : Array.isArray(redirect) ? redirect.filter((r): r is string => typeof r === 'string') : [];
  const extra = Array.isArray(s['scope']) ? s['scope'].filter((x): x is string => typeof x === 'string' && x.length > 0) : [];
  const scopes = [...new Set(['openid', 'email', 'profile', ...extra])];
  const mappings: ValueMapping[] = Array.isArray(s['claims_to_roles'])
    ? (s['claims_to_roles'] as unknown[]).flatMap((m) => {
        if (!m || typeof m !== 'object') return [];
        const { claim, value, roles } = m as Record<string, unknown>;
        if (typeof claim !== 'string' || typeof value !== 'string' || !Array.isArray(roles)) return [];
        return [{ name: claim, value, roles: roles.filter((r): r is string => typeof r === 'string') }];
      })
    : [];
  const maxAge = parseMaxAge(s['max_age']);
  if (maxAge === null) throw new SsoLoginError('connector invalid', `OIDC connector ${name}: max_age must be a duration ("1h", "30m") or seconds`);
  return {
    issuer,
    clientId,
    clientSecret: str('client_secret') || undefined,
    redirectUrls,
    scopes,
    mappings,
    usernameClaim: str('username_claim') || 'email',
    prompt: str('prompt'),
    maxAgeSeconds: maxAge,
    acrValues: str('acr_values') || undefined,
    allowUnverifiedEmail: s['allow_unverified_email'] === true,
  };
}

/**
 * max_age as whole seconds: a number of seconds or a Go duration ("1h", "1h30m", "90s").
 * undefined when unset, null when invalid.
 */
export function parseMaxAge(v: unknown): number | undefined | null {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : null;
  if (typeof v !== 'string') return null;
  if (/^\d+$/.test(v)) return Number(v);
  if (!/^(\d+(\.\d+)?(h|m|s|ms))+$/.test(v)) return null;
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let total = 0;
  for (const part of v.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) total += Number(part[1]) * (unit[part[2] ?? 's'] ?? 1);
  return Number.isFinite(total) && total < 2 ** 31 ? Math.floor(total) : null;
}

function checkCallback(spec: OidcSpec, callbackUrl: string, name: string): void {
  if (spec.redirectUrls.length > 0 && !spec.redirectUrls.includes(callbackUrl)) {
    throw new SsoLoginError('connector invalid', `OIDC connector ${name}: callback ${callbackUrl} is not among its redirect_url`);
  }
}

/** An openid-client failure as an SsoLoginError whose reason names the check that failed. */
function classify(err: unknown, connector: string, fallback: string, what: string): SsoLoginError {
  const chain: unknown[] = [];
  for (let e: unknown = err; e && chain.length < 8; e = (e as { cause?: unknown }).cause) chain.push(e);
  const at = (k: string) => chain.map((e) => (e && typeof e === 'object' ? (e as Record<string, unknown>)[k] : undefined));
  if (chain.some((e) => e instanceof ProviderUnreachable)) {
    return new SsoLoginError('provider unreachable', `OIDC connector ${connector}: the provider could not be reached (${describe(err)})`);
  }
  if (chain.some((e) => e instanceof ResponseTooLarge)) {
    return new SsoLoginError(fallback, `OIDC connector ${connector}: ${what}: the provider's response is too large`);
  }
  const messages = chain.map((e) => (e instanceof Error ? e.message : ''));
  if (at('claim').includes('nonce')) return new SsoLoginError('nonce mismatch', `OIDC connector ${connector}: the ID token's nonce is not this login request's`);
  if (messages.some((m) => /"state"/.test(m))) return new SsoLoginError('state mismatch', `OIDC connector ${connector}: the callback's state is not this login request's`);
  if (messages.some((m) => /"iss"/.test(m))) return new SsoLoginError('issuer mismatch', `OIDC connector ${connector}: the callback's issuer is not the connector's`);
  // The token endpoint's OAuth error code (invalid_grant for a used code or a wrong verifier).
  const oauthError = at('error').find((v): v is string => typeof v === 'string');
  const code = oauthError && /^[A-Za-z0-9_.-]{1,64}$/.test(oauthError) ? oauthError : undefined;
  return new SsoLoginError(fallback, `OIDC connector ${connector}: ${what} (${code ?? describe(err)})`, code ? { error: code } : {});
}

/** A short description of an error with no token or secret in it: messages only, bounded. */
function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 3; e = e.cause) parts.push(e.message);
  return parts.join(': ').replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 200) || 'unknown error';
}

