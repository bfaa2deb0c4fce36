import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { removeEntries } from '../kubeconfig-file.js';
import { currentProxy, loadProfile, removeProfile } from '../profile.js';

/** `kw logout`: removes the keys and the kubeconfig entries kw wrote, and nothing else. */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('logout')
    .description('Delete a cluster certificate (and the kubeconfig entries kw wrote).')
    .option('--proxy <host:port>', 'profile of this proxy (default: the current one)')
    .action((opts: { proxy?: string }) => {
      const proxy = opts.proxy ?? currentProxy();
      if (!proxy) {
        ctx.out.write('Not logged in.\n');
        return;
      }
      let user = '';
      try {
        const p = loadProfile(proxy);
        user = p.profile.user;
        const k = p.profile.kubeconfig;
        if (k) removeEntries(k.path, k, k.previousContext ?? null, k.createdFile === true);
      } catch {
        // a half-written profile is removed all the same
      }
      removeProfile(proxy);
      ctx.out.write(`Logged out ${user || 'of'} ${user ? `from ${proxy}` : proxy}.\n`);
    });
}
