import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { BadParameterError } from '@keyway/errors';
import { generateKeyPair } from '@keyway/pki';
import { parseResourceDocuments } from '@keyway/resources';
import { callbackServer, newSecretKey, openBrowser, SSO_CALLBACK_TIMEOUT_MS } from '@keyway/sso';
import type { CommandContext } from '../context.js';

/**
 * `kwctl sso test <file.yaml>` (Teleport's `tctl sso test`): a login through a connector that
 * is not stored yet. Prints what the provider sent and the roles and traits it maps to; creates
 * no user and no certificate.
 */
export function register(program: Command, ctx: CommandContext): void {
  const sso = program.command('sso').description('single sign-on connectors');
  sso
    .command('test')
    .description('log in through a connector definition without storing it; print the claims and what they map to')
    .argument('<file>', 'connector YAML (kind github, oidc or saml); - for stdin')
    .option('--browser <browser>', '"none" prints the URL instead of opening a browser')
    .action(async (file: string, opts: { browser?: string }, cmd: Command) => {
      const text = file === '-' ? await ctx.readStdin() : readFileSync(file, 'utf8');
      const { docs } = parseResourceDocuments(text, file);
      const [doc] = docs;
      if (!doc || docs.length !== 1 || !['github', 'oidc', 'saml'].includes(doc.kind)) throw new BadParameterError(`${file}: expected exactly one github, oidc or saml connector`);
      const secretKey = newSecretKey();
      const callback = await callbackServer(secretKey, SSO_CALLBACK_TIMEOUT_MS, { title: 'Connector test done', message: 'The result is in the terminal. You can close this window.' });
      try {
        const started = await ctx.withClient(cmd, (client) =>
          client.call('createSsoAuthRequest', {
            kind: doc.kind,
            connectorName: '',
            publicKeyPem: generateKeyPair().publicKeyPem,
            clientRedirectUrl: `http://127.0.0.1:${callback.port}/callback?secret_key=${secretKey}`,
            ttlSeconds: 0,
            kubernetesCluster: '',
            testConnectorJson: JSON.stringify(doc),
            remoteIp: '',
          }),
        );
        if (opts.browser === 'none') ctx.err.write(`Open this URL in a browser on this machine to log in:\n  ${started.redirectUrl}\n`);
        else {
          ctx.err.write(`If the browser does not open, visit:\n  ${started.redirectUrl}\n`);
          openBrowser(started.redirectUrl, opts.browser ?? 'default');
        }
        const report = JSON.parse(await callback.result) as Record<string, unknown>;
        ctx.out.write(`${JSON.stringify(report, null, 2)}\n`);
        const roles = report['roles'] as string[] | undefined;
        if (!roles || roles.length === 0) ctx.err.write(`The connector maps ${String(report['username'])} to no role: a real login would be refused.\n`);
      } finally {
        callback.close();
      }
    });
}
