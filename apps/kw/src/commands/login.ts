import type { Command } from 'commander';
import { BadParameterError } from '@keyway/errors';
import { generateKeyPair } from '@keyway/pki';
import { parseDuration } from '@keyway/resources';
import { anonymousClient } from '../connect.js';
import type { CommandContext } from '../context.js';
import { loadProfile, saveProfile, type Profile } from '../profile.js';
import { statusBlock } from './status.js';

function existingKubeconfigRecord(proxy: string): Profile['kubeconfig'] {
  try {
    return loadProfile(proxy).profile.kubeconfig;
  } catch {
    return undefined;
  }
}

/** `kw login`: password + TOTP against the proxy, a key and a certificate stored in the profile. */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('login')
    .description('log in to a Keyway cluster')
    .requiredOption('--proxy <host:port>', 'the Keyway proxy')
    .option('--user <name>', 'user name (default: $USER)')
    .option('--auth <type>', 'authentication connector', 'local')
    .option('--ttl <duration>', 'certificate lifetime (capped by your roles)')
    .option('--insecure', "do not verify the proxy's certificate", false)
    .option('--ca-pin <pin>', "the cluster's host CA pin, sha256:<hex> (kwctl status)")
    .action(async (opts: { proxy: string; user?: string; auth: string; ttl?: string; insecure: boolean; caPin?: string }) => {
      if (opts.auth !== 'local') throw new BadParameterError(`--auth=${opts.auth} is not supported yet; use --auth=local`);
      const user = opts.user ?? process.env['USER'];
      if (!user) throw new BadParameterError('--user is required');
      const ttlSeconds = opts.ttl ? Math.round(parseDuration(opts.ttl) / 1000) : 0;
      if (opts.insecure) ctx.err.write('WARNING: --insecure: the proxy\'s certificate is not verified.\n');
      const { client, caPems } = await anonymousClient(opts.proxy, { insecure: opts.insecure, ...(opts.caPin ? { caPin: opts.caPin } : {}) });
      const prompter = ctx.prompter();
      try {
        const ping = await client.call('ping', {});
        const password = await prompter.ask(`Enter password for Keyway user ${user}:\n`, { secret: true });
        const totpCode = ping.secondFactor === 'otp' ? (await prompter.ask('Enter your OTP token:\n')).trim() : '';
        const key = generateKeyPair();
        const certs = await client.call('login', { user, password, totpCode, publicKeyPem: key.publicKeyPem, ttlSeconds, kubernetesCluster: '' });
        const trusted = caPems ?? [...certs.hostCaPems, ...certs.userCaPems];
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
          keyPem: key.privateKeyPem,
          certPem: certs.certPem,
          caPems: trusted,
        });
        ctx.out.write(statusBlock(loadProfile(opts.proxy)));
      } finally {
        prompter.close();
        client.close();
      }
    });
}
