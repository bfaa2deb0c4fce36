import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Dispatcher } from 'undici';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { AccessDeniedError, AlreadyExistsError, BadParameterError, ConnectionProblemError, KeywayError } from '@keyway/errors';
import { kubeJsonClient, loadKubeconfig, type ClusterCredentials } from '@keyway/forwarder';
import { AGENT_IMPERSONATION_RULES, agentObjectNames } from './configure-rbac.js';

// Teleport's get-kubeconfig.sh as a command: a ServiceAccount that may only impersonate, a
// long-lived token for it, and a kubeconfig around them. The admin kubeconfig is read by
// @keyway/forwarder's loader and spoken to with undici, as the agent's own Secret store does:
// no Kubernetes client library is a dependency, and these few REST calls do not need one.

export interface ConfigureOptions {
  adminKubeconfig: string;
  /** Context of adminKubeconfig to use; its current-context when unset. */
  context?: string;
  out: string;
  namespace: string;
  serviceAccount: string;
  /** Name of the written kubeconfig's cluster, user's context (what the agent serves it as); the context's name when unset. */
  clusterName?: string;
  force?: boolean;
  /** How long to wait for the token controller to fill the token Secret. */
  tokenTimeoutMs?: number;
  /** One line per object, as it is created, updated or found unchanged. */
  report?: (line: string) => void;
}

export interface ConfigureResult {
  out: string;
  clusterName: string;
  user: string;
  server: string;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export async function configureAgentKubeconfig(o: ConfigureOptions): Promise<ConfigureResult> {
  for (const [flag, value] of [['--namespace', o.namespace], ['--service-account', o.serviceAccount]] as const) {
    if (!NAME.test(value) || value.length > 63) throw new BadParameterError(`${flag} "${value}" is not a Kubernetes name: use lower-case letters, digits and '-'`);
  }
  if (existsSync(o.out) && !o.force) throw new BadParameterError(`--out ${o.out} exists: pass --force to overwrite it`);
  const context = o.context ?? currentContext(o.adminKubeconfig);
  const [creds] = loadKubeconfig(o.adminKubeconfig, { only: context });
  if (!creds) throw new BadParameterError(`kubeconfig ${o.adminKubeconfig} has no context "${context}"`);
  const kube = client(creds, context);
  const report = o.report ?? (() => undefined);
  const { namespace: ns, serviceAccount: sa } = o;
  const names = agentObjectNames(sa);

  await kube.check();
  await ensure(kube, report, { kind: 'Namespace', path: `/api/v1/namespaces`, name: ns, body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } });
  await ensure(kube, report, {
    kind: 'ServiceAccount',
    path: `/api/v1/namespaces/${ns}/serviceaccounts`,
    name: sa,
    label: `${ns}/${sa}`,
    body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } },
  });
  await ensure(kube, report, {
    kind: 'ClusterRole',
    path: '/apis/rbac.authorization.k8s.io/v1/clusterroles',
    name: names.clusterRole,
    body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: names.clusterRole }, rules: AGENT_IMPERSONATION_RULES },
    // Re-running puts the rules back to the shared definition.
    differs: (got) => JSON.stringify(canonicalRules(got['rules'])) !== JSON.stringify(canonicalRules(AGENT_IMPERSONATION_RULES)),
  });
  const subject = { kind: 'ServiceAccount', name: sa, namespace: ns };
  const roleRef = { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: names.clusterRole };
  await ensure(kube, report, {
    kind: 'ClusterRoleBinding',
    path: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    name: names.clusterRoleBinding,
    body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: names.clusterRoleBinding }, roleRef, subjects: [subject] },
    // Someone else's binding of the same name is not rebound behind their back.
    conflict: (got) => {
      const subjects = (got['subjects'] ?? []) as Record<string, unknown>[];
      const ref = (got['roleRef'] ?? {}) as Record<string, unknown>;
      const ours = subjects.length === 1 && subjects[0]?.['kind'] === 'ServiceAccount' && subjects[0]['name'] === sa && subjects[0]['namespace'] === ns && ref['name'] === names.clusterRole && ref['kind'] === 'ClusterRole';
      return ours ? undefined : `ClusterRoleBinding ${names.clusterRoleBinding} already exists and binds ${subjects.map((s) => `${String(s['kind'])} ${s['namespace'] ? `${String(s['namespace'])}/` : ''}${String(s['name'])}`).join(', ') || 'nobody'} to ${String(ref['kind'])} ${String(ref['name'])}: delete it or choose another --service-account`;
    },
  });
  // Since v1.24 no token Secret is made for a ServiceAccount; one asked for this way is filled
  // by the token controller on every version, so this is the same on v1.20 and later.
  const secretPath = `/api/v1/namespaces/${ns}/secrets`;
  await ensure(kube, report, {
    kind: 'Secret',
    path: secretPath,
    name: names.tokenSecret,
    label: `${ns}/${names.tokenSecret}`,
    body: { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/service-account-token', metadata: { name: names.tokenSecret, namespace: ns, annotations: { 'kubernetes.io/service-account.name': sa } } },
    conflict: (got) => {
      const annotations = ((got['metadata'] as Record<string, unknown> | undefined)?.['annotations'] ?? {}) as Record<string, string>;
      return got['type'] === 'kubernetes.io/service-account-token' && annotations['kubernetes.io/service-account.name'] === sa
        ? undefined
        : `Secret ${ns}/${names.tokenSecret} already exists and is not a service-account-token Secret for ${sa}: delete it or choose another --service-account`;
    },
  });
  const data = await waitForToken(kube, `${secretPath}/${names.tokenSecret}`, `${ns}/${names.tokenSecret}`, `${ns}/${sa}`, o.tokenTimeoutMs ?? 60_000);

  const clusterName = o.clusterName ?? context;
  const user = `system:serviceaccount:${ns}:${sa}`;
  const caPem = creds.caPem ?? Buffer.from(data['ca.crt'] ?? '', 'base64').toString('utf8');
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: clusterName,
        cluster: {
          server: creds.server.toString().replace(/\/$/, ''),
          ...(caPem ? { 'certificate-authority-data': Buffer.from(caPem).toString('base64') } : {}),
          ...(creds.tlsServerName ? { 'tls-server-name': creds.tlsServerName } : {}),
          ...(creds.insecureSkipTlsVerify && !caPem ? { 'insecure-skip-tls-verify': true } : {}),
        },
      },
    ],
    users: [{ name: sa, user: { token: Buffer.from(data['token'] as string, 'base64').toString('utf8') } }],
    contexts: [{ name: clusterName, context: { cluster: clusterName, user: sa, namespace: ns } }],
    'current-context': clusterName,
  };
  // Written whole and renamed into place: a reader never sees half a kubeconfig; it holds a token, so 0600.
  const tmp = `${o.out}.tmp-${process.pid}`;
  writeFileSync(tmp, stringifyYaml(kubeconfig), { mode: 0o600 });
  renameSync(tmp, o.out);
  report(`wrote ${o.out} (context ${clusterName}, user ${user}, server ${kubeconfig.clusters[0]?.cluster.server})`);
  return { out: o.out, clusterName, user, server: kubeconfig.clusters[0]?.cluster.server as string };
}

/** Rules in a comparable form: the API server returns their fields in an order of its own. */
export function canonicalRules(rules: unknown): { apiGroups: string[]; resources: string[]; verbs: string[] }[] {
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String).sort() : []);
  return (Array.isArray(rules) ? (rules as Record<string, unknown>[]) : []).map((r) => ({ apiGroups: list(r['apiGroups']), resources: list(r['resources']), verbs: list(r['verbs']) }));
}

function currentContext(path: string): string {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new BadParameterError(`cannot read --kubeconfig ${path}: ${(err as Error).message}`, { path });
  }
  const current = (raw as Record<string, unknown> | null)?.['current-context'];
  if (typeof current !== 'string' || !current) throw new BadParameterError(`kubeconfig ${path} has no current-context: pass --context`);
  return current;
}

interface Kube {
  call(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }>;
  check(): Promise<void>;
  refused(status: number, json: Record<string, unknown>, doing: string): KeywayError;
}

function client(creds: ClusterCredentials, context: string): Kube {
  const where = `the API server ${creds.server.origin} (context ${context})`;
  const call = kubeJsonClient(creds, { where, connectTimeoutMs: 10_000, timeoutMs: 30_000 });
  const kube: Kube = {
    call: (method, path, body) => call(method, path, body),
    async check() {
      const { status, json } = await kube.call('GET', '/version');
      if (status === 401) throw kube.refused(status, json, 'log in to');
      // 403 is fine here: some clusters hide /version; the first real request reports rights.
      if (status !== 200 && status !== 403) throw kube.refused(status, json, 'query');
    },
    refused(status, json, doing) {
      const message = typeof json['message'] === 'string' ? json['message'] : `HTTP ${status}`;
      if (status === 401) return new AccessDeniedError(`${where} does not accept the credentials of the kubeconfig's user: ${message}`, { status });
      if (status === 403) return new AccessDeniedError(`the kubeconfig's user may not ${doing} at ${where}: ${message} (use a cluster-admin context)`, { status });
      return new KeywayError('Internal', `could not ${doing} at ${where}: ${message}`, { status });
    },
  };
  return kube;
}

interface Wanted {
  kind: string;
  /** The collection. */
  path: string;
  name: string;
  /** How the object is named in what is printed (namespace/name for namespaced ones). */
  label?: string;
  body: Record<string, unknown>;
  /** For an object that exists: true when it must be updated to body. */
  differs?: (got: Record<string, unknown>) => boolean;
  /** For an object that exists: why it cannot be taken over, if it cannot. */
  conflict?: (got: Record<string, unknown>) => string | undefined;
}

/** Creates the object, or updates it when `differs` says so; prints which. */
async function ensure(kube: Kube, report: (line: string) => void, w: Wanted): Promise<void> {
  const label = `${w.kind} ${w.label ?? w.name}`;
  const item = `${w.path}/${encodeURIComponent(w.name)}`;
  const got = await kube.call('GET', item);
  if (got.status === 404) {
    const created = await kube.call('POST', w.path, w.body);
    if (created.status === 201 || created.status === 200) return report(`created ${label}`);
    if (created.status !== 409) throw kube.refused(created.status, created.json, `create ${label}`);
    // Made meanwhile by someone else: checked as an existing one below.
    return ensure(kube, report, w);
  }
  if (got.status !== 200) throw kube.refused(got.status, got.json, `read ${label}`);
  const why = w.conflict?.(got.json);
  if (why) throw new AlreadyExistsError(why);
  if (!w.differs?.(got.json)) return report(`unchanged ${label}`);
  const resourceVersion = (got.json['metadata'] as Record<string, unknown> | undefined)?.['resourceVersion'];
  const body = { ...w.body, metadata: { ...(got.json['metadata'] as Record<string, unknown>), ...(w.body['metadata'] as Record<string, unknown>), resourceVersion } };
  const updated = await kube.call('PUT', item, body);
  if (updated.status !== 200) throw kube.refused(updated.status, updated.json, `update ${label}`);
  report(`updated ${label}`);
}

async function waitForToken(kube: Kube, item: string, secret: string, account: string, timeoutMs: number): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await kube.call('GET', item);
    if (got.status !== 200) throw kube.refused(got.status, got.json, `read Secret ${secret}`);
    const data = (got.json['data'] ?? {}) as Record<string, string>;
    if (data['token']) return data;
    if (Date.now() > deadline) {
      throw new ConnectionProblemError(
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for the token controller (kube-controller-manager) to put a token for ServiceAccount ${account} into Secret ${secret}: is kube-controller-manager running with --service-account-private-key-file?`,
        { secret },
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
