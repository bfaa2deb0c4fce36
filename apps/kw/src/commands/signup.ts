import type { Command } from 'commander';
import { AuthClient, trustOnPin } from '@keyway/client';
import { BadParameterError } from '@keyway/errors';
import type { CommandContext } from '../context.js';

/** `kw signup TOKEN`: redeem a signup or reset token: set a password and a TOTP device. */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('signup')
    .description('set your password and second factor with the one-time token an admin gave you')
    .argument('<token>')
    .requiredOption('--auth-server <host:port>', 'the Keyway auth server')
    .requiredOption('--ca-pin <pin>', "the cluster's CA pin, sha256:<hex> (kwctl status prints it)")
    .action(async (token: string, opts: { authServer: string; caPin: string }) => {
      const caPems = await trustOnPin(opts.authServer, opts.caPin);
      const client = new AuthClient({ address: opts.authServer, caPems });
      const prompter = ctx.prompter();
      try {
        const info = await client.call('getUserToken', { token });
        ctx.out.write(`Setting up ${info.kind === 'reset' ? 'new credentials' : 'an account'} for "${info.user}" (token valid until ${info.expires}).\n`);
        const password = await prompter.ask('Password: ', { secret: true });
        const confirm = await prompter.ask('Confirm password: ', { secret: true });
        if (password !== confirm) throw new BadParameterError('passwords do not match');
        let totpCode = '';
        if (info.secondFactorRequired) {
          ctx.out.write(
            [
              'Add this TOTP secret to your authenticator app (or open the URI on your phone):',
              `  secret: ${info.totpSecret}`,
              `  uri:    ${info.totpUri}`,
              '',
            ].join('\n'),
          );
          totpCode = (await prompter.ask('Code from the app: ')).trim();
        }
        const done = await client.call('completeUserToken', { token, password, totpCode });
        ctx.out.write(`User "${done.user}" is ready to log in.\n`);
      } finally {
        prompter.close();
        client.close();
      }
    });
}
