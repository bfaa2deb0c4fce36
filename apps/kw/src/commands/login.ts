import type { Command } from 'commander';
import { Option } from 'commander';
import { BadParameterError } from '@keyway/errors';
import { parseDuration } from '@keyway/resources';
import type { CommandContext } from '../context.js';
import { logIn, type LoginRequest } from '../login-flow.js';
import { currentProxy, loadProfile, type LoadedProfile } from '../profile.js';
import { resolveProxyAddress } from '../proxy-address.js';
import { statusBlock, statusOutput } from './status.js';

/**
 * `kw login`: password + TOTP against the proxy, or SSO through the browser (--auth, or the
 * cluster's default connector); a key and a certificate stored in the profile. As tsh: with
 * no --proxy the last proxy, user and login method are used again, and a proxy named without
 * a port is on 3080 (or 443).
 */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('login')
    .description('Log in to a cluster and retrieve the session certificate.')
    .option('--proxy <host[:port]>', 'the Keyway proxy (default: the last one logged in to; port 3080, or 443)')
    .option('--user <name>', 'user name (default: the last one, or $USER)')
    .option('--auth <connector>', "local, or an SSO connector (its name, or github / oidc / saml); default: the cluster's")
    .option('--browser <browser>', 'for SSO: "none" prints the URL instead of opening a browser')
    .option('--ttl <duration>', 'certificate lifetime (capped by your roles)')
    .option('--insecure', "do not verify the proxy's certificate", false)
    .option('--ca-pin <pin>', "the cluster's host CA pin, sha256:<hex> (kwctl status)")
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'))
    .action(async (opts: { proxy?: string; user?: string; auth?: string; browser?: string; ttl?: string; insecure: boolean; caPin?: string; format: 'text' | 'json' | 'yaml' }) => {
      const ttlSeconds = opts.ttl ? Math.round(parseDuration(opts.ttl) / 1000) : 0;
      const last = opts.proxy ? undefined : previousLogin();
      if (!opts.proxy && !last) throw new BadParameterError('--proxy is required for the first login, e.g. kw login --proxy=keyway.example.com --user=alice');
      const proxy = opts.proxy ? await resolveProxyAddress(opts.proxy) : (last as LoadedProfile).profile.proxy;
      const again = last ?? sameProxyProfile(proxy);
      if (opts.insecure) ctx.err.write("WARNING: --insecure: the proxy's certificate is not verified.\n");
      const sameMethod = again && (opts.auth === undefined || opts.auth === again.profile.auth);
      const request: LoginRequest = {
        proxy,
        ...(opts.user ? { user: opts.user } : sameMethod ? { user: again.profile.user } : {}),
        ...(opts.auth ? { auth: opts.auth } : again?.profile.auth ? { auth: again.profile.auth } : {}),
        browser: opts.browser ?? again?.profile.browser ?? 'default',
        ttlSeconds,
        insecure: opts.insecure || (!opts.caPin && again?.profile.insecure === true),
        ...(opts.caPin ? { caPin: opts.caPin } : again?.profile.caPin ? { caPin: again.profile.caPin } : {}),
        // The cluster's CAs from the last login: verified as then, without a pin or --insecure again.
        ...(again && !opts.caPin && !opts.insecure ? { knownCaPems: again.caPems } : {}),
      };
      // Questions on stderr, as tsh asks them: stdout stays the status (or its JSON).
      const profile = await logIn(request, { say: (text) => ctx.err.write(text), prompter: () => ctx.prompter(ctx.err) });
      ctx.out.write(opts.format === 'text' ? statusBlock(profile) : statusOutput([profile], opts.format));
    });
}

function previousLogin(): LoadedProfile | undefined {
  const proxy = currentProxy();
  return proxy ? sameProxyProfile(proxy) : undefined;
}

function sameProxyProfile(proxy: string): LoadedProfile | undefined {
  try {
    return loadProfile(proxy);
  } catch {
    return undefined;
  }
}
