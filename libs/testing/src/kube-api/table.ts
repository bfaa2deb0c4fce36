/**
 * Server-side printing: meta.k8s.io/v1 Table columns and rows for the served kinds, what
 * kubectl asks for with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
 */
import type { ResourceDef } from './resources.js';
import type { KubeObject } from './store.js';

export interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface TableRow {
  cells: unknown[];
  object?: unknown;
}

/** duration.HumanDuration from k8s.io/apimachinery, as kubectl's AGE column shows it. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

const col = (name: string, type = 'string', priority = 0, format = '', description = ''): ColumnDefinition => ({
  name,
  type,
  format,
  description: description || `${name} of the object`,
  priority,
});

const NAME = col('Name', 'string', 0, 'name', 'Name must be unique within a namespace.');
const AGE = col('Age', 'string', 0, '', 'CreationTimestamp is a timestamp representing the server time when this object was created.');

export function tableColumns(def: ResourceDef): ColumnDefinition[] {
  switch (def.resource) {
    case 'pods':
      return [NAME, col('Ready'), col('Status'), col('Restarts'), AGE, col('IP', 'string', 1), col('Node', 'string', 1), col('Nominated Node', 'string', 1), col('Readiness Gates', 'string', 1)];
    case 'configmaps':
      return [NAME, col('Data', 'integer'), AGE];
    case 'secrets':
      return [NAME, col('Type'), col('Data', 'integer'), AGE];
    case 'namespaces':
      return [NAME, col('Status'), AGE];
    case 'services':
      return [NAME, col('Type'), col('Cluster-IP'), col('External-IP'), col('Port(s)'), AGE, col('Selector', 'string', 1)];
    case 'deployments':
      return [NAME, col('Ready'), col('Up-to-date', 'integer'), col('Available', 'integer'), AGE, col('Containers', 'string', 1), col('Images', 'string', 1), col('Selector', 'string', 1)];
    default:
      return [NAME, AGE];
  }
}

function age(obj: KubeObject, now: number): string {
  const ts = obj.metadata.creationTimestamp;
  return ts ? humanDuration(now - Date.parse(ts)) : '<unknown>';
}

const rec = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export function tableCells(def: ResourceDef, obj: KubeObject, now = Date.now()): unknown[] {
  const name = obj.metadata.name ?? '';
  const spec = rec(obj['spec']);
  const status = rec(obj['status']);
  switch (def.resource) {
    case 'pods': {
      const containers = arr(spec['containers']);
      const statuses = arr(status['containerStatuses']).map(rec);
      const ready = statuses.filter((s) => s['ready'] === true).length;
      const restarts = statuses.reduce((n, s) => n + (typeof s['restartCount'] === 'number' ? s['restartCount'] : 0), 0);
      return [name, `${ready}/${containers.length}`, status['reason'] ?? status['phase'] ?? 'Unknown', String(restarts), age(obj, now), status['podIP'] ?? '<none>', spec['nodeName'] ?? '<none>', '<none>', '<none>'];
    }
    case 'configmaps':
      return [name, Object.keys(rec(obj['data'])).length + Object.keys(rec(obj['binaryData'])).length, age(obj, now)];
    case 'secrets':
      return [name, obj['type'] ?? 'Opaque', Object.keys(rec(obj['data'])).length, age(obj, now)];
    case 'namespaces':
      return [name, status['phase'] ?? 'Active', age(obj, now)];
    case 'services': {
      const ports = arr(spec['ports'])
        .map(rec)
        .map((p) => `${p['port']}/${p['protocol'] ?? 'TCP'}`)
        .join(',');
      const selector = Object.entries(rec(spec['selector'])).map(([k, v]) => `${k}=${String(v)}`).join(',');
      return [name, spec['type'] ?? 'ClusterIP', spec['clusterIP'] ?? '<none>', '<none>', ports || '<none>', age(obj, now), selector || '<none>'];
    }
    case 'deployments': {
      const template = rec(rec(spec['template'])['spec']);
      const containers = arr(template['containers']).map(rec);
      const selector = Object.entries(rec(rec(spec['selector'])['matchLabels'])).map(([k, v]) => `${k}=${String(v)}`).join(',');
      return [
        name,
        `${status['readyReplicas'] ?? 0}/${spec['replicas'] ?? 0}`,
        status['updatedReplicas'] ?? 0,
        status['availableReplicas'] ?? 0,
        age(obj, now),
        containers.map((c) => c['name']).join(','),
        containers.map((c) => c['image']).join(','),
        selector,
      ];
    }
    default:
      return [name, age(obj, now)];
  }
}

/** A row with the object as PartialObjectMetadata (includeObject=Metadata, kube's default) or whole. */
export function tableRow(def: ResourceDef, obj: KubeObject, includeObject: string | null): TableRow {
  const row: TableRow = { cells: tableCells(def, obj) };
  if (includeObject === 'None') return row;
  row.object = includeObject === 'Object' ? obj : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
  return row;
}

/** Whether an Accept header asks for a Table (kubectl get's server-side printing). */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const params = part.split(';').map((p) => p.trim());
    return params.includes('as=Table') && params.includes('g=meta.k8s.io') && (params.includes('v=v1') || params.includes('v=v1beta1'));
  });
}

export function tableApiVersion(accept: string | undefined): string {
  const parts = (accept ?? '').split(',').map((p) => p.split(';').map((x) => x.trim()));
  return parts.some((p) => p.includes('as=Table') && p.includes('v=v1')) ? 'meta.k8s.io/v1' : 'meta.k8s.io/v1beta1';
}
