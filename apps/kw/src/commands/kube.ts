import { X509Certificate } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { Option } from 'commander';
import { stringify } from 'yaml';
import { KUBE_SNI, splitHostPort, writeSecretFile } from '@keyway/client';
import { AccessDeniedError, BadParameterError, KeywayError } from '@keyway/errors';
import { profileClient } from '../connect.js';
import type { CommandContext } from '../context.js';
import { REFRESH_MARGIN_MS, execCredential, kubeCachePath, type CachedKubeCert } from '../fast-credentials.js';
import { kubeconfigPath, mergeEntries, readKubeconfig } from '../kubeconfig-file.js';
import { kwHome, loadProfile, saveProfile, type LoadedProfile } from '../profile.js';
import { kwExecutable } from '../self.js';
import type { LoginIo } from '../login-flow.js';
import { canAsk, loginCommand, loginExpired, validLogin } from '../relogin.js';
import { formatTable } from '@keyway/cli';

/** `kw kube ls | login | credentials`. */
export function register(program: Command, ctx: CommandContext): void {
  const kube = program.command('kube').description('Manage available Kubernetes clusters.');

  kube
    .command('ls')
    .description('Get a list of Kubernetes clusters.')
    .option('--proxy <host:port>', 'profile of this proxy (default: the current one)')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'))
    .action(async (opts: { proxy?: string; format: 'text' | 'json' | 'yaml' }) => {
      const p = loadProfile(opts.proxy);
      const clusters = await listClusters(p);
      const current = readKubeconfig(kubeconfigPath())['current-context'];
      const rows = clusters.map((c) => ({
        kube_cluster_name: c.name,
        labels: c.labels,
        selected: current === contextName(p.profile.cluster, c.name),
      }));
      if (opts.format === 'json') ctx.out.write(`${JSON.stringify(rows, null, 2)}\n`);
      else if (opts.format === 'yaml') ctx.out.write(stringify(rows));
      else {
        ctx.out.write(formatTable(['Kube Cluster Name', 'Labels', 'Selected'], rows.map((r) => [r.kube_cluster_name, labelText(r.labels), r.selected ? '*' : '']), { gap: ' ' }));
      }
    });

  kube
    .command('login')
    .description('Login to a Kubernetes cluster (writes a kubeconfig context kubectl uses through Keyway).')
    .argument('[name]', 'Kubernetes cluster')
    .option('--all', 'every cluster you may access', false)
    .option('--as <user>', 'Kubernetes user to impersonate (within your roles)')
    .option('--as-groups <groups>', 'comma-separated Kubernetes groups to impersonate (within your roles)')
    .option('-n, --namespace <ns>', 'default namespace of the context')
    .option('--set-context-name <name>', 'name of the context (default: <keyway cluster>-<kube cluster>)')
    .option('--proxy <host:port>', 'profile of this proxy (default: the current one)')
    .option('--insecure', 'accepted for tsh compatibility; trust comes from the login', false)
    .action(async (name: string | undefined, opts: { all: boolean; as?: string; asGroups?: string; namespace?: string; setContextName?: string; proxy?: string }) => {
      const p = loadProfile(opts.proxy);
      const available = await listClusters(p);
      const targets = opts.all ? available.map((c) => c.name) : name ? [name] : [];
      if (targets.length === 0) throw new BadParameterError(opts.all ? 'you may access no Kubernetes cluster' : 'name a cluster, or pass --all');
      for (const t of targets) {
        if (!available.some((c) => c.name === t)) {
          throw new BadParameterError(`Kubernetes cluster "${t}" not found; you can access: ${available.map((c) => c.name).join(', ') || 'none'}`);
        }
      }
      if (opts.setContextName && targets.length > 1) throw new BadParameterError('--set-context-name takes one cluster, not --all');
      const path = kubeconfigPath();
      // Whether kw made the file: then kw logout removes it when nothing else is left in it.
      const written = p.profile.kubeconfig?.path === path ? p.profile.kubeconfig : { path, clusters: [], contexts: [], users: [], createdFile: !existsSync(path) };
      let previous = p.profile.kubeconfig?.path === path ? p.profile.kubeconfig.previousContext : undefined;
      const { host } = splitHostPort(p.profile.proxy);
      const serverName = host === 'localhost' || isIP(host) ? KUBE_SNI : `kube-teleport-proxy-alpn.${host}`;
      for (const [i, t] of targets.entries()) {
        const ctxName = opts.setContextName ?? contextName(p.profile.cluster, t);
        const userName = contextName(p.profile.cluster, t);
        const hostCas = p.caPems.filter((pem) => new X509Certificate(pem).subject.includes('host CA'));
        const env = process.env['KW_HOME'] ? [{ name: 'KW_HOME', value: kwHome() }] : undefined;
        const before = mergeEntries(path, {
          cluster: {
            name: p.profile.cluster,
            cluster: {
              server: `https://${p.profile.proxy}`,
              'certificate-authority-data': Buffer.from((hostCas.length ? hostCas : p.caPems).join('')).toString('base64'),
              'tls-server-name': serverName,
            },
          },
          context: { name: ctxName, context: { cluster: p.profile.cluster, user: userName, ...(opts.namespace ? { namespace: opts.namespace } : {}) } },
          user: {
            name: userName,
            user: {
              exec: {
                apiVersion: 'client.authentication.k8s.io/v1beta1',
                command: kwExecutable(),
                args: ['kube', 'credentials', `--kube-cluster=${t}`, `--keyway-cluster=${p.profile.cluster}`, `--proxy=${p.profile.proxy}`],
                ...(env ? { env } : {}),
                interactiveMode: 'IfAvailable',
                provideClusterInfo: false,
              },
              ...(opts.as ? { as: opts.as } : {}),
              ...(opts.asGroups ? { 'as-groups': opts.asGroups.split(',').map((g) => g.trim()).filter(Boolean) } : {}),
            },
          },
          select: i === targets.length - 1,
        });
        // Remember what was selected before kw first took over, for kw logout.
        if (previous === undefined) previous = before && !written.contexts.includes(before) ? before : null;
        for (const [list, value] of [
          [written.clusters, p.profile.cluster],
          [written.contexts, ctxName],
          [written.users, userName],
        ] as [string[], string][]) {
          if (!list.includes(value)) list.push(value);
        }
        ctx.out.write(`Logged into Kubernetes cluster "${t}". Try 'kubectl version' to test the connection.\n`);
      }
      saveProfile({ profile: { ...p.profile, kubeconfig: { ...written, previousContext: previous ?? null } } });
    });

  kube
    .command('credentials')
    .description('Get credentials for kubectl access (the exec plugin of the kubeconfig kw writes).')
    .requiredOption('--kube-cluster <name>')
    .requiredOption('--proxy <host:port>')
    .option('--keyway-cluster <name>')
    .addOption(new Option('--teleport-cluster <name>', "Teleport's name for --keyway-cluster").hideHelp())
    .action(async (opts: { kubeCluster: string; proxy: string }) => {
      // stdout is kubectl's credential: everything said to the person goes to stderr.
      const io = { say: (text: string) => ctx.err.write(text), prompter: () => ctx.prompter(ctx.err) };
      ctx.out.write(await kubeCredentials(opts.kubeCluster, opts.proxy, { interactive: canAsk(process.env, ctx.stdin), io }));
    });
}

/**
 * Issues (or reuses) the certificate for one kube cluster. An expired login is renewed first
 * (once for all parallel kubectl calls, see relogin.ts); a lock file then makes parallel calls
 * wait for one issuance instead of each asking the auth server.
 */
export async function kubeCredentials(kubeCluster: string, proxy: string, o: { interactive: boolean; io: LoginIo }): Promise<string> {
  await validLogin(proxy, o);
  const cachePath = kubeCachePath(kwHome(), proxy, kubeCluster);
  const release = await lock(`${cachePath}.lock`);
  try {
    const p = loadProfile(proxy);
    const cached = readCache(cachePath);
    if (cached && cached.expires - Date.now() > REFRESH_MARGIN_MS) return execCredential(cached.certPem, p.keyPem, cached.expires);
    if (loginExpired(p)) throw new AccessDeniedError(`your Keyway login to ${proxy} has expired: run \`${loginCommand(p)}\``);
    const client = profileClient(p);
    try {
      const certs = await client.call('generateUserCerts', { publicKeyPem: publicKeyOf(p), ttlSeconds: 0, kubernetesCluster: kubeCluster });
      const expires = new Date(new X509Certificate(certs.certPem).validTo).getTime();
      writeSecretFile(cachePath, JSON.stringify({ certPem: certs.certPem, expires } satisfies CachedKubeCert));
      return execCredential(certs.certPem, p.keyPem, expires);
    } catch (err) {
      if (err instanceof KeywayError && err.kind === 'AccessDenied') {
        throw new AccessDeniedError(`${err.message}; run \`${loginCommand(p)}\` if your login is no longer valid`);
      }
      throw err;
    } finally {
      client.close();
    }
  } finally {
    release();
  }
}

async function listClusters(p: LoadedProfile) {
  const client = profileClient(p);
  try {
    return (await client.call('listKubeClusters', {})).clusters;
  } finally {
    client.close();
  }
}

function publicKeyOf(p: LoadedProfile): string {
  return new X509Certificate(p.certPem).publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

function readCache(path: string): CachedKubeCert | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as CachedKubeCert;
  } catch {
    return undefined;
  }
}

/** An exclusive lock file; one left by a crashed process is taken over after 30 s. */
async function lock(path: string): Promise<() => void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      closeSync(openSync(path, 'wx', 0o600));
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (existsSync(path) && Date.now() - statSync(path).mtimeMs > 30_000) rmSync(path, { force: true });
      if (Date.now() > deadline) throw new BadParameterError(`timed out waiting for ${path}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

export function contextName(cluster: string, kube: string): string {
  return `${cluster}-${kube}`;
}

function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}
