import type { Command } from 'commander';
import QRCode from 'qrcode';
import { anonymousClient } from '../connect.js';
import { resolveProxyAddress } from '../proxy-address.js';
import { BadParameterError } from '@keyway/errors';
import type { CommandContext } from '../context.js';

/** `kw signup TOKEN`: redeem a signup or reset token: set a password and a TOTP device. */
export function register(program: Command, ctx: CommandContext): void {
  program
    .command('signup')
    .description('Set your password and second factor with the one-time token an admin gave you (Keyway: Teleport does this in its web UI).')
    .argument('[token]')
    .option('--token <token>', 'the token (instead of the argument)')
    .option('--proxy <host[:port]>', 'the Keyway proxy (port 3080, or 443, when left out)')
    .option('--auth-server <host:port>', 'the auth server, when reached directly')
    .option('--ca-pin <pin>', "the cluster's CA pin, sha256:<hex> (kwctl status prints it)")
    .option('--insecure', "do not verify the server's certificate", false)
    .action(async (arg: string | undefined, opts: { token?: string; proxy?: string; authServer?: string; caPin?: string; insecure: boolean }) => {
      const token = opts.token ?? arg;
      const address = opts.proxy ? await resolveProxyAddress(opts.proxy) : opts.authServer;
      if (!token) throw new BadParameterError('the signup token is required (--token)');
      if (!address) throw new BadParameterError('--proxy (or --auth-server) is required');
      if (opts.insecure) ctx.err.write("WARNING: --insecure: the server's certificate is not verified.\n");
      const { client } = await anonymousClient(address, { insecure: opts.insecure, ...(opts.caPin ? { caPin: opts.caPin } : {}) });
      const prompter = ctx.prompter();
      try {
        const info = await client.call('getUserToken', { token });
        ctx.out.write(`Setting up ${info.kind === 'reset' ? 'new credentials' : 'an account'} for "${info.user}" (token valid until ${info.expires}).\n`);
        const password = await prompter.ask('Password: ', { secret: true });
        const confirm = await prompter.ask('Confirm password: ', { secret: true });
        if (password !== confirm) throw new BadParameterError('passwords do not match');
        let totpCode = '';
        if (info.secondFactorRequired) {
          const qr = await QRCode.toString(info.totpUri, { type: 'utf8', errorCorrectionLevel: 'M' });
          ctx.out.write(
            [
              'Scan this QR code with your authenticator app, or enter the secret by hand:',
              qr,
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
