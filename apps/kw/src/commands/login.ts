import type { Command } from 'commander';
import { BadParameterError } from '@keyway/errors';
import { generateKeyPair } from '@keyway/pki';
import { parseDuration } from '@keyway/resources';
import { anonymousClient } from '../connect.js';
import type { CommandContext } from '../context.js';
import { loadProfile, saveProfile, type Profile } from '../profile.js';
import { resolveConnector, ssoLogin } from '../sso-login.js';
import { statusBlock } from './status.js';

function existingKubeconfigRecord(proxy: string): Profile['kubeconfig'] {
  try {
    return loadProfile(proxy).profile.kubeconfig;
  } catch {
    return undefined;
  }
}

/** Stores a login's key and certificate as the proxy's profile. */
function saveLogin(opts: { proxy: string; insecure: boolean; caPin?: string }, certs: { username: string; clusterName: string; certPem: string }, keyPem: string, caPems: string[]): void {
  // Logging in again keeps the record of the kubeconfig entries kw wrote, for logout.
  const kubeconfig = existingKubeconfigRecord(opts.proxy);
  saveProfile({
    profile: {
      proxy: opts.proxy,
      user: certs.username,
      cluster: certs.clusterName,
      insecure: opts.insecure,
      ...(opts.caPin ? { caPin: opts.caPin } : {}),
      ...(kubeconfig ? { kubeconfig } : {}),
    },
    keyPem,
    certPem: certs.certPem,
    caPems,
  });
}

/**
 * `kw login`: password + TOTP against the proxy, or SSO through the browser (--auth, or the
 * cluster's default connector); a key and a certificate stored in the profile.
 */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('login')
    .description('log in to a Keyway cluster')
    .requiredOption('--proxy <host:port>', 'the Keyway proxy')
    .option('--user <name>', 'user name (default: $USER)')
    .option('--auth <connector>', 'local, or an SSO connector (its name, or github / oidc / saml); default: the cluster\'s')
    .option('--browser <browser>', 'for SSO: "none" prints the URL instead of opening a browser')
    .option('--ttl <duration>', 'certificate lifetime (capped by your roles)')
    .option('--insecure', "do not verify the proxy's certificate", false)
    .option('--ca-pin <pin>', "the cluster's host CA pin, sha256:<hex> (kwctl status)")
    .action(async (opts: { proxy: string; user?: string; auth?: string; browser?: string; ttl?: string; insecure: boolean; caPin?: string }) => {
      const ttlSeconds = opts.ttl ? Math.round(parseDuration(opts.ttl) / 1000) : 0;
      if (opts.insecure) ctx.err.write('WARNING: --insecure: the proxy\'s certificate is not verified.\n');
      const { client, caPems } = await anonymousClient(opts.proxy, { insecure: opts.insecure, ...(opts.caPin ? { caPin: opts.caPin } : {}) });
      const trust = { insecure: opts.insecure, ...(caPems ? { caPems } : {}) };
      let connector: Awaited<ReturnType<typeof resolveConnector>>;
      try {
        connector = await resolveConnector(opts.proxy, opts.auth, trust);
      } catch (err) {
        client.close();
        throw err;
      }
      if (connector.kind !== 'local') {
        client.close();
        const key = generateKeyPair();
        const certs = await ssoLogin({
          proxy: opts.proxy,
          trust,
          kind: connector.kind,
          connector: connector.name,
          publicKeyPem: key.publicKeyPem,
          ttlMs: ttlSeconds * 1000,
          browser: opts.browser ?? 'default',
          say: (line) => ctx.err.write(line),
        });
        saveLogin(opts, certs, key.privateKeyPem, caPems ?? [...certs.hostCaPems, ...certs.userCaPems]);
        ctx.out.write(statusBlock(loadProfile(opts.proxy)));
        return;
      }
      const user = opts.user ?? process.env['USER'];
      if (!user) {
        client.close();
        throw new BadParameterError('--user is required');
      }
      const prompter = ctx.prompter();
      try {
        const ping = await client.call('ping', {});
        const password = await prompter.ask(`Enter password for Keyway user ${user}:\n`, { secret: true });
        const totpCode = ping.secondFactor === 'otp' ? (await prompter.ask('Enter your OTP token:\n')).trim() : '';
        const key = generateKeyPair();
        const certs = await client.call('login', { user, password, totpCode, publicKeyPem: key.publicKeyPem, ttlSeconds, kubernetesCluster: '' });
        saveLogin(opts, certs, key.privateKeyPem, caPems ?? [...certs.hostCaPems, ...certs.userCaPems]);
        ctx.out.write(statusBlock(loadProfile(opts.proxy)));
      } finally {
        prompter.close();
        client.close();
      }
    });
}
