import { BadParameterError } from '@keyway/errors';
import { LineCounter, parseAllDocuments, stringify } from 'yaml';
import type {
  LabelSelector,
  Resource,
  ResourceOfKind,
} from './types.js';
import { checkDocumentText } from './limits.js';
import { canonicalOrder } from './order.js';
import { problemText, validateResourceObject, type FieldProblem } from './validate.js';

/** One problem of one document, as carried in BadParameterError.data.problems. */
export interface ResourceProblem {
  /** 1-based position among the non-empty documents (a JSON/YAML list counts each item). */
  document: number;
  kind: string;
  name: string;
  /** Field path such as `spec.allow.kubernetes_labels`; empty for the whole document. */
  path: string;
  message: string;
  code: FieldProblem['code'] | 'syntax' | 'duplicate';
  /** 1-based line where the document starts, when known. */
  line?: number;
}

/** Problems listed in one error; the rest are counted (a broken file can have thousands). */
const MAX_PROBLEMS_SHOWN = 20;

export interface SkippedDocument {
  document: number;
  kind: string;
  name: string;
}

export interface ParsedDocuments {
  docs: Resource[];
  /**
   * One line per note, `<source> document <n> (<kind>/<name>): <note>`: Teleport fields stored
   * without effect yet, and Teleport documents skipped (with why). kwctl create prints each.
   */
  notes: string[];
  /** Teleport documents of kinds Keyway does not store (cert_authority, node, ...): not to be written. */
  skipped: SkippedDocument[];
}

/**
 * Parses multi-document YAML (or JSON: one object, or an array as `tctl get --format=json`
 * prints) into validated resources. Empty documents are skipped, and so are documents of Teleport
 * kinds Keyway does not store (see ./foreign-kinds.ts; each gets a note). If any document is invalid,
 * throws one BadParameterError whose message has one line per problem,
 * `<source> document <n> (<kind>/<name>): <problem>`, and whose data is `{ source, problems }`.
 */
export function parseResourceDocuments(text: string, source = 'input', options: { maxBytes?: number } = {}): ParsedDocuments {
  // Size and nesting are bounded before the parser sees the text: it recurses per level.
  checkDocumentText(text, source, options.maxBytes);
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, uniqueKeys: true });
  const problems: ResourceProblem[] = [];
  const docs: Resource[] = [];
  const notes: string[] = [];
  const skipped: SkippedDocument[] = [];
  const seen = new Map<string, number>();
  let n = 0;

  for (const doc of parsed) {
    const line = lineCounter.linePos(doc.contents?.range[0] ?? doc.range[0]).line;
    if (doc.errors.length > 0) {
      n++;
      for (const err of doc.errors) {
        problems.push({ document: n, kind: '?', name: '?', path: '', message: `YAML: ${err.message.split('\n')[0]}`, code: 'syntax', line });
      }
      continue;
    }
    if (doc.contents === null) continue;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      n++;
      problems.push({ document: n, kind: '?', name: '?', path: '', message: `YAML: ${(err as Error).message}`, code: 'syntax', line });
      continue;
    }
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item === null || item === undefined) continue;
      n++;
      const r = validateResourceObject(item);
      const kind = r.kind ?? '?';
      const name = r.name ?? '?';
      for (const p of r.problems) {
        problems.push({ document: n, kind, name, path: p.path, message: p.message, code: p.code, line });
      }
      for (const note of r.notes) notes.push(`${source} document ${n} (${kind}/${name}): ${note}`);
      if (r.skipped) skipped.push({ document: n, kind, name });
      if (r.resource) {
        const key = `${r.resource.kind}/${r.resource.metadata.name}`;
        const first = seen.get(key);
        if (first !== undefined) {
          problems.push({
            document: n,
            kind,
            name,
            path: 'metadata.name',
            message: `${key} is already defined by document ${first}`,
            code: 'duplicate',
            line,
          });
        } else {
          seen.set(key, n);
          docs.push(r.resource);
        }
      }
    }
  }

  if (problems.length > 0) {
    const more = problems.length - MAX_PROBLEMS_SHOWN;
    problems.splice(MAX_PROBLEMS_SHOWN);
    const lines = problems.map(
      (p) => `${source} document ${p.document} (${p.kind}/${p.name}): ${problemText(p)}`,
    );
    if (more > 0) lines.push(`${source}: and ${more} more problem(s)`);
    throw new BadParameterError(lines.join('\n'), { source, problems });
  }
  return { docs, notes, skipped };
}

export type OutputFormat = 'yaml' | 'json' | 'text';

/**
 * Renders resources for `kwctl get`. YAML and JSON print keys in Teleport's order (kind,
 * version, metadata, spec, and the schemas' field order inside; see ./order.ts), whatever order
 * they were stored in. Secrets are printed as they are: use redactSecrets first when needed.
 * - `yaml`: documents separated by `---`, readable back by parseResourceDocuments;
 * - `json`: always an array (as tctl prints), even for one resource;
 * - `text`: one table per kind, in the order kinds first appear.
 */
export function formatResources(resources: readonly Resource[], format: OutputFormat): string {
  switch (format) {
    case 'yaml':
      return resources.map((r) => stringify(canonicalOrder(r), { lineWidth: 0 })).join('---\n');
    case 'json':
      return `${JSON.stringify(resources.map(canonicalOrder), null, 2)}\n`;
    case 'text':
      return formatText(resources);
    default:
      throw new BadParameterError(`unknown output format ${JSON.stringify(format)}; use yaml, json or text`, { format });
  }
}

function formatText(resources: readonly Resource[]): string {
  const groups = new Map<Resource['kind'], Resource[]>();
  for (const r of resources) {
    const list = groups.get(r.kind) ?? [];
    list.push(r);
    groups.set(r.kind, list);
  }
  const tables: string[] = [];
  for (const [kind, list] of groups) {
    const { headers, row } = TABLES[kind] as unknown as TableSpec<Resource>;
    tables.push(renderTable(headers, list.map(row)));
  }
  return tables.join('\n');
}

interface TableSpec<R> {
  headers: string[];
  row: (r: R) => string[];
}

const expiry = (t: string | undefined) => (t === undefined ? 'never' : t.replace(/\.000Z$/, 'Z'));
const list = (xs: readonly string[] | undefined) => (xs ?? []).join(',');
const labels = (l: Record<string, string> | undefined) =>
  Object.entries(l ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
const selector = (s: LabelSelector | undefined) =>
  Object.entries(s ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(',')}]` : v}`)
    .join(' ');

const TABLES: { [K in Resource['kind']]: TableSpec<ResourceOfKind<K>> } = {
  user: { headers: ['User', 'Roles', 'Expires'], row: (r) => [r.metadata.name, list(r.spec.roles), expiry(r.metadata.expires)] },
  role: {
    headers: ['Role', 'Kubernetes Labels', 'Kubernetes Groups', 'Kubernetes Users', 'Max Session TTL'],
    row: (r) => [
      r.metadata.name,
      selector(r.spec.allow.kubernetes_labels),
      list(r.spec.allow.kubernetes_groups),
      list(r.spec.allow.kubernetes_users),
      r.spec.options.max_session_ttl,
    ],
  },
  token: { headers: ['Token', 'Type', 'Expires'], row: (r) => [r.metadata.name, list(r.spec.roles), expiry(r.metadata.expires)] },
  github: {
    headers: ['Name', 'Display', 'Client ID', 'Teams To Roles'],
    row: (r) => [
      r.metadata.name,
      r.spec.display ?? '',
      r.spec.client_id,
      [
        ...(r.spec.teams_to_roles ?? []).map((t) => `${t.organization}/${t.team}=${t.roles.join(',')}`),
        ...(r.spec.teams_to_logins ?? []).map((t) => `${t.organization}/${t.team}=${t.logins.join(',')}`),
      ].join(' '),
    ],
  },
  oidc: {
    headers: ['Name', 'Display', 'Issuer URL', 'Client ID'],
    row: (r) => [r.metadata.name, r.spec.display ?? '', r.spec.issuer_url, r.spec.client_id],
  },
  saml: {
    headers: ['Name', 'Display', 'ACS', 'Identity Provider'],
    row: (r) => [
      r.metadata.name,
      r.spec.display ?? '',
      r.spec.acs,
      r.spec.entity_descriptor_url ?? r.spec.sso ?? (r.spec.entity_descriptor ? '(entity descriptor)' : ''),
    ],
  },
  kube_cluster: {
    headers: ['Name', 'Labels', 'Agents'],
    row: (r) => [r.metadata.name, labels(r.metadata.labels), ((r as { status?: { agents?: string[] } }).status?.agents ?? []).join(', ')],
  },
  lock: {
    headers: ['ID', 'Target', 'Message', 'Expires'],
    row: (r) => [
      r.metadata.name,
      Object.entries(r.spec.target)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' '),
      r.spec.message ?? '',
      expiry(r.spec.expires ?? r.metadata.expires),
    ],
  },
};

function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}
