import type { Command } from 'commander';
import { parseDuration } from '@keyway/resources';
import type { CommandContext } from '../context.js';
import { logIn } from '../login-flow.js';
import { statusBlock } from './status.js';

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
      const profile = await logIn(
        {
          proxy: opts.proxy,
          ...(opts.user ? { user: opts.user } : {}),
          ...(opts.auth ? { auth: opts.auth } : {}),
          browser: opts.browser ?? 'default',
          ttlSeconds,
          insecure: opts.insecure,
          ...(opts.caPin ? { caPin: opts.caPin } : {}),
        },
        { say: (text) => ctx.err.write(text), prompter: () => ctx.prompter() },
      );
      ctx.out.write(statusBlock(profile));
    });
}
