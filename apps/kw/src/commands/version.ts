import type { Command } from 'commander';
import { Option } from 'commander';
import { stringify } from 'yaml';
import { KEYWAY_VERSION, versionLine } from '@keyway/log';
import type { CommandContext } from '../context.js';
import { currentProxy, loadProfile } from '../profile.js';
import { webApi } from '../sso-login.js';

/** `kw version`: the client's version and, when logged in, the proxy's (as tsh version). */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('version')
    .description('Print the kw client and Proxy server versions for the current context.')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'))
    .option('--client', 'the client version only, without asking the proxy', false)
    .action(async (opts: { format: 'text' | 'json' | 'yaml'; client: boolean }) => {
      const proxy = opts.client ? undefined : await proxyVersion();
      const doc = {
        version: KEYWAY_VERSION,
        node: process.version,
        ...(proxy ? { proxyPublicAddress: proxy.address, ...(proxy.version ? { proxyVersion: proxy.version } : { proxyError: proxy.error }) } : {}),
      };
      if (opts.format === 'json') ctx.out.write(`${JSON.stringify(doc, null, 2)}\n`);
      else if (opts.format === 'yaml') ctx.out.write(stringify(doc));
      else {
        const proxyLines = !proxy ? '' : proxy.version ? `Proxy version: ${proxy.version}\nProxy: ${proxy.address}\n` : `Proxy: ${proxy.address} (its version is unknown: ${proxy.error})\n`;
        ctx.out.write(`${versionLine()}\n${proxyLines}`);
      }
    });
}

/** The current profile's proxy and its version (or why it is unknown); nothing when not logged in. */
async function proxyVersion(): Promise<{ address: string; version?: string; error?: string } | undefined> {
  const address = currentProxy();
  if (!address) return undefined;
  try {
    const p = loadProfile(address);
    const ping = await webApi(address, '/v1/webapi/ping', { insecure: p.profile.insecure, caPems: p.caPems });
    return { version: typeof ping['server_version'] === 'string' ? ping['server_version'] : 'unknown', address };
  } catch (err) {
    return { address, error: (err as Error).message };
  }
}
