import type { AuthClient } from '@keyway/client';
import { NotFoundError } from '@keyway/errors';

/** What auth says about logins, as the web ping shows it (Teleport's `auth` section). */
export interface AuthSettings {
  authType: string;
  secondFactor: string;
  connectorName: string;
  connectors: { kind: string; name: string; display: string }[];
}

/**
 * Auth's login settings, asked at most once per `ttlMs` however often kw pings: the web ping
 * is anonymous, and each ping must not become a call to auth.
 */
export class AuthSettingsCache {
  private value: { at: number; settings: AuthSettings } | undefined;
  private pending: Promise<AuthSettings> | undefined;

  constructor(
    private readonly client: () => AuthClient,
    private readonly ttlMs = 5_000,
  ) {}

  async get(): Promise<AuthSettings> {
    if (this.value && Date.now() - this.value.at < this.ttlMs) return this.value.settings;
    this.pending ??= this.fetch().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async fetch(): Promise<AuthSettings> {
    const c = this.client();
    try {
      const p = await c.call('ping', {});
      const settings = { authType: p.authType || 'local', secondFactor: p.secondFactor || 'otp', connectorName: p.connectorName, connectors: p.connectors };
      this.value = { at: Date.now(), settings };
      return settings;
    } finally {
      c.close();
    }
  }
}

/**
 * The `auth` section of `/v1/webapi/ping[/<connector>]`: the login type and its connector
 * (the cluster's default, or the one named), as tsh and kw read it.
 */
export function authSection(s: AuthSettings, connector?: string): Record<string, unknown> {
  const base = { second_factor: s.secondFactor, local: { name: 'local' } };
  const name = connector ?? (s.authType === 'local' ? undefined : s.connectorName || s.connectors.find((c) => c.kind === s.authType)?.name);
  if (name === undefined || name === 'local') return { ...base, type: 'local' };
  // --auth=github means the connector named github, or else the only connector of that kind.
  const found = s.connectors.find((c) => c.name === name) ?? singleOfKind(s, name);
  if (!found) throw new NotFoundError(`no SSO connector named "${name.slice(0, 100)}" (there are: ${s.connectors.map((c) => c.name).join(', ') || 'none'})`);
  return { ...base, type: found.kind, [found.kind]: { name: found.name, display: found.display } };
}

function singleOfKind(s: AuthSettings, kind: string) {
  const of = s.connectors.filter((c) => c.kind === kind);
  return of.length === 1 ? of[0] : undefined;
}
