import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { stringify } from 'yaml';
import { decodeIdentity } from '@keyway/pki';
import type { CommandContext } from '../context.js';
import { currentProxy, kwHome, loadProfile, type LoadedProfile } from '../profile.js';

/** tsh's status block. */
export function statusBlock(p: LoadedProfile, now = Date.now()): string {
  const id = decodeIdentity(p.certPem);
  const left = id.expires.getTime() - now;
  const validity = left > 0 ? `valid for ${duration(left)}` : 'EXPIRED';
  const rows: [string, string][] = [
    ['Profile URL', `https://${p.profile.proxy}`],
    ['Logged in as', id.username],
    ['Cluster', id.clusterName],
    ['Roles', id.roles.join(', ')],
    ['Kubernetes', 'enabled'],
    ...(id.kubernetesUsers.length ? ([['Kubernetes users', id.kubernetesUsers.join(', ')]] as [string, string][]) : []),
    ['Kubernetes groups', id.kubernetesGroups.join(', ') || '(none)'],
    ['Valid until', `${id.expires.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000 UTC')} [${validity}]`],
  ];
  return `> ${rows.map(([k, v]) => `${`${k}:`.padEnd(20)}${v}`).join('\n  ')}\n`;
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m${s % 60}s`;
}

/** One profile as tsh's `status --format=json` prints it. */
function statusObject(p: LoadedProfile, now: number): Record<string, unknown> {
  const id = decodeIdentity(p.certPem);
  return {
    profile_url: `https://${p.profile.proxy}`,
    username: id.username,
    cluster: id.clusterName,
    roles: id.roles,
    traits: id.traits,
    kubernetes_enabled: true,
    kubernetes_users: id.kubernetesUsers,
    kubernetes_groups: id.kubernetesGroups,
    valid_until: id.expires.toISOString(),
    expired: id.expires.getTime() <= now,
    auth: p.profile.auth ?? 'local',
  };
}

/** The active profile first, then the others, as tsh status lists them (json/yaml). */
export function statusOutput(profiles: LoadedProfile[], format: 'json' | 'yaml', now = Date.now()): string {
  const [active, ...others] = profiles;
  const doc = { active: active ? statusObject(active, now) : null, profiles: others.map((p) => statusObject(p, now)) };
  return format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc);
}

/** Every profile kw holds, the current (or --proxy) one first. */
function allProfiles(first: string | undefined): LoadedProfile[] {
  const out: LoadedProfile[] = [];
  if (first) out.push(loadProfile(first));
  let dirs: string[] = [];
  try {
    dirs = readdirSync(join(kwHome(), 'profiles'));
  } catch {
    return out;
  }
  for (const d of dirs.sort()) {
    try {
      const { proxy } = JSON.parse(readFileSync(join(kwHome(), 'profiles', d, 'profile.json'), 'utf8')) as { proxy: string };
      const p = loadProfile(proxy);
      if (!out.some((o) => o.profile.proxy === p.profile.proxy)) out.push(p);
    } catch {
      // a half-written profile is not listed
    }
  }
  return out;
}

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('status')
    .description('Display the list of proxy servers and retrieved certificates.')
    .option('--proxy <host:port>', 'profile of this proxy (default: the current one)')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'))
    .action((opts: { proxy?: string; format: 'text' | 'json' | 'yaml' }) => {
      if (opts.format === 'text') {
        ctx.out.write(statusBlock(loadProfile(opts.proxy)));
        return;
      }
      const first = opts.proxy ?? currentProxy();
      ctx.out.write(statusOutput(allProfiles(first), opts.format));
    });
}
