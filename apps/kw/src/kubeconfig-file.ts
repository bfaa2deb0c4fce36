import { existsSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { writeSecretFile } from '@keyway/client';
import { BadParameterError } from '@keyway/errors';

type Named = { name: string; [k: string]: unknown };
interface Kubeconfig {
  apiVersion: string;
  kind: string;
  preferences?: unknown;
  clusters: Named[];
  contexts: Named[];
  users: Named[];
  'current-context'?: string;
  [k: string]: unknown;
}

/** The kubeconfig kubectl reads: the first file of KUBECONFIG, or ~/.kube/config. */
export function kubeconfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const first = env['KUBECONFIG']?.split(delimiter).find(Boolean);
  return first ?? join(env['HOME'] ?? homedir(), '.kube', 'config');
}

export function readKubeconfig(path: string): Kubeconfig {
  if (!existsSync(path)) return { apiVersion: 'v1', kind: 'Config', preferences: {}, clusters: [], contexts: [], users: [] };
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8')) ?? {};
  } catch (err) {
    throw new BadParameterError(`cannot parse kubeconfig ${path}: ${(err as Error).message}`);
  }
  const kc = doc as Partial<Kubeconfig>;
  return { apiVersion: 'v1', kind: 'Config', ...kc, clusters: kc.clusters ?? [], contexts: kc.contexts ?? [], users: kc.users ?? [] };
}

export function writeKubeconfig(path: string, kc: Kubeconfig): void {
  writeSecretFile(path, stringify(kc));
}

function upsert(list: Named[], entry: Named): void {
  const i = list.findIndex((e) => e.name === entry.name);
  if (i >= 0) list[i] = entry;
  else list.push(entry);
}

/** Adds (or replaces) Keyway's entries, keeping every other one; returns the previous current context. */
export function mergeEntries(
  path: string,
  entries: { cluster: Named; context: Named; user: Named; select: boolean },
): string | undefined {
  const kc = readKubeconfig(path);
  const previous = kc['current-context'];
  upsert(kc.clusters, entries.cluster);
  upsert(kc.contexts, entries.context);
  upsert(kc.users, entries.user);
  if (entries.select) kc['current-context'] = entries.context.name;
  writeKubeconfig(path, kc);
  return previous;
}

/**
 * Removes the named entries; restores `restoreContext` if the current one was removed. A file
 * kw created (`deleteIfEmpty`) is deleted when nothing is left in it.
 */
export function removeEntries(path: string, names: { clusters: string[]; contexts: string[]; users: string[] }, restoreContext?: string | null, deleteIfEmpty = false): void {
  if (!existsSync(path)) return;
  const kc = readKubeconfig(path);
  kc.clusters = kc.clusters.filter((c) => !names.clusters.includes(c.name));
  kc.contexts = kc.contexts.filter((c) => !names.contexts.includes(c.name));
  kc.users = kc.users.filter((u) => !names.users.includes(u.name));
  const current = kc['current-context'];
  if (current && names.contexts.includes(current)) {
    if (restoreContext && kc.contexts.some((c) => c.name === restoreContext)) kc['current-context'] = restoreContext;
    else delete kc['current-context'];
  }
  if (deleteIfEmpty && kc.clusters.length + kc.contexts.length + kc.users.length === 0) {
    rmSync(path, { force: true });
    return;
  }
  writeKubeconfig(path, kc);
}
