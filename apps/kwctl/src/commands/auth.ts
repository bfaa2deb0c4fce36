import type { Command } from 'commander';
import { Option } from 'commander';
import { buildKubeconfig, writeSecretFile } from '@keyway/client';
import { generateKeyPair } from '@keyway/pki';
import { existsSync } from 'node:fs';
import { BadParameterError, NotFoundError, NotImplementedError } from '@keyway/errors';
import { ttlSeconds } from '../ttl.js';
import type { CommandContext } from '../context.js';

const EXPORT_TYPES = ['tls-user', 'tls-host', 'tls', 'user', 'host'] as const;
type ExportType = (typeof EXPORT_TYPES)[number];

/** `kwctl auth sign` and `kwctl auth export`, as Teleport's `tctl auth sign|export`. */
export function register(program: Command, ctx: CommandContext): void {
  const auth = program.command('auth').description('operations with user and host certificate authorities (CAs)');
  auth
    .command('export')
    .description('export the public certificate of a certificate authority (CA)')
    .addOption(
      new Option('--type <type>', 'certificate type: tls-user (the user CA, PEM), tls-host (the host CA, PEM; also tls); user and host (SSH keys) do not exist yet')
        .choices([...EXPORT_TYPES])
        .makeOptionMandatory(),
    )
    .option('--fingerprint', "print the CA certificate's SHA-256 fingerprint and SPKI pin instead", false)
    .action(async (opts: { type: ExportType; fingerprint: boolean }, cmd: Command) => {
      if (opts.type === 'user' || opts.type === 'host') {
        throw new NotImplementedError(
          `--type=${opts.type} exports SSH keys, and Keyway has no SSH certificate authority yet: use --type=tls-${opts.type} for the ${opts.type} CA's certificate (PEM)`,
        );
      }
      const caType = opts.type === 'tls-user' ? 'user' : 'host';
      await ctx.withClient(cmd, async (client) => {
        const ca = (await client.call('ping', {})).certAuthorities.find((c) => c.type === caType);
        if (!ca) throw new NotFoundError(`the auth server reports no ${caType} CA`);
        if (opts.fingerprint) ctx.out.write(`${ca.fingerprint}\n${ca.spkiPin}\n`);
        else ctx.out.write(ca.certPem.endsWith('\n') ? ca.certPem : `${ca.certPem}\n`);
      });
    });
  auth
    .command('sign')
    .description('create an identity file(s) for a given user: a kubeconfig or PEM files')
    .requiredOption('--user <name>', 'the user the certificate is for')
    .addOption(new Option('--format <format>', 'kubernetes: a kubeconfig; tls: OUT.crt, OUT.key, OUT.cas').choices(['kubernetes', 'tls']).default('kubernetes'))
    .requiredOption('-o, --out <path>', 'where to write')
    .option('--kube-cluster <name>', 'route the certificate to this Kubernetes cluster')
    .addOption(new Option('--kube-cluster-name <name>', "Teleport's spelling of --kube-cluster").hideHelp())
    .option('--overwrite', 'replace files that exist', false)
    .option('--proxy <host:port>', 'proxy address written into the kubeconfig', 'localhost:3080')
    .option('--ttl <duration>', 'certificate lifetime (capped by the user\'s roles)', '12h')
    .action(
      async (
        opts: {
          user: string;
          format: 'kubernetes' | 'tls';
          out: string;
          kubeCluster?: string;
          kubeClusterName?: string;
          proxy: string;
          ttl: string;
          overwrite: boolean;
        },
        cmd: Command,
      ) => {
        opts.kubeCluster ??= opts.kubeClusterName;
        const seconds = ttlSeconds('--ttl', opts.ttl);
        const targets = opts.format === 'kubernetes' ? [opts.out] : ['crt', 'key', 'cas'].map((e) => `${opts.out}.${e}`);
        const existing = targets.filter((t) => existsSync(t));
        if (existing.length > 0 && !opts.overwrite) {
          throw new BadParameterError(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}; pass --overwrite to replace`);
        }
        const key = generateKeyPair();
        await ctx.withClient(cmd, async (client) => {
          const certs = await client.call('signUserCerts', {
            user: opts.user,
            publicKeyPem: key.publicKeyPem,
            ttlSeconds: seconds,
            kubernetesCluster: opts.kubeCluster ?? '',
          });
          if (opts.format === 'kubernetes') {
            writeSecretFile(
              opts.out,
              buildKubeconfig({
                clusterName: certs.clusterName,
                ...(opts.kubeCluster ? { kubeCluster: opts.kubeCluster } : {}),
                proxyAddr: opts.proxy,
                caPems: certs.hostCaPems,
                credentials: { certPem: certs.certPem, keyPem: key.privateKeyPem },
              }),
            );
            ctx.out.write(`The credentials have been written to ${opts.out} (valid until ${certs.expires})\n`);
          } else {
            writeSecretFile(`${opts.out}.key`, key.privateKeyPem);
            writeSecretFile(`${opts.out}.crt`, certs.certPem);
            writeSecretFile(`${opts.out}.cas`, certs.hostCaPems.join(''));
            ctx.out.write(
              `The credentials have been written to ${opts.out}.crt, ${opts.out}.key, ${opts.out}.cas (valid until ${certs.expires})\n`,
            );
          }
        });
      },
    );
}
