/**
 * In-memory object storage with kube semantics: one resourceVersion counter for everything,
 * uid/creationTimestamp/generateName defaulting, optimistic concurrency on update, a bounded
 * event log so watches can resume from a resourceVersion, and synthetic list items generated
 * on demand (for multi-hundred-MiB list responses that never exist in memory).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { apiVersionOf, resourceByName, type ResourceDef } from './resources.js';
import { fieldValue, matchesRequirements, type Requirement } from './selectors.js';
import { alreadyExists, badRequest, conflict, gone, invalid, notFound } from './status.js';

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: WatchEventType;
  rv: number;
  def: ResourceDef;
  object: KubeObject;
}

export interface ListQuery {
  namespace?: string | undefined;
  labelSelector?: Requirement[];
  fieldSelector?: Requirement[];
  limit?: number | undefined;
  continueToken?: string | undefined;
}

export interface ListResult {
  resourceVersion: string;
  items: Iterable<KubeObject>;
  continueToken?: string;
  remainingItemCount?: number;
}

/** Items that exist only while a list is written: item(i) builds the i-th, 0 <= i < count. */
export interface SyntheticItems {
  count: number;
  item(index: number): KubeObject;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function rfc3339(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

const keyOf = (def: ResourceDef) => `${def.group}/${def.resource}`;
const objKey = (ns: string | undefined, name: string) => `${ns ?? ''}/${name}`;

export function labelsMatch(obj: KubeObject, q: ListQuery): boolean {
  if (q.labelSelector?.length && !matchesRequirements(q.labelSelector, (k) => obj.metadata.labels?.[k])) return false;
  if (q.fieldSelector?.length && !matchesRequirements(q.fieldSelector, (k) => fieldValue(obj, k))) return false;
  return true;
}

export class ObjectStore {
  private rv = 1000;
  private readonly data = new Map<string, Map<string, KubeObject>>();
  private log: StoreEvent[] = [];
  /** Events with rv <= this are no longer in the log. */
  private compactedRv = 1000;
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private readonly synthetic = new Map<string, SyntheticItems>();
  private podCounter = 0;

  constructor(private readonly maxLog = 20_000) {}

  get resourceVersion(): string {
    return String(this.rv);
  }

  private bucket(def: ResourceDef): Map<string, KubeObject> {
    let b = this.data.get(keyOf(def));
    if (!b) this.data.set(keyOf(def), (b = new Map()));
    return b;
  }

  private record(type: WatchEventType, def: ResourceDef, object: KubeObject): void {
    const ev: StoreEvent = { type, rv: this.rv, def, object: clone(object) };
    this.log.push(ev);
    if (this.log.length > this.maxLog) {
      const dropped = this.log.splice(0, this.log.length - this.maxLog);
      this.compactedRv = dropped[dropped.length - 1]?.rv ?? this.compactedRv;
    }
    for (const l of this.listeners) l(ev);
  }

  /** How many listeners (open watches) there are. */
  get subscribers(): number {
    return this.listeners.size;
  }

  /** Calls listener for every change from now on. */
  subscribe(listener: (e: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Logged events after rv (exclusive), or a 410 error when they were compacted away. */
  eventsSince(rv: number): StoreEvent[] {
    if (rv < this.compactedRv) throw gone(`too old resource version: ${rv} (${this.compactedRv + 1})`);
    return this.log.filter((e) => e.rv > rv);
  }

  get(def: ResourceDef, namespace: string | undefined, name: string): KubeObject {
    const obj = this.bucket(def).get(objKey(def.namespaced ? namespace : undefined, name));
    if (!obj) throw notFound(def.resource, def.group, name);
    return clone(obj);
  }

  tryGet(def: ResourceDef, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.bucket(def).get(objKey(def.namespaced ? namespace : undefined, name));
    return obj ? clone(obj) : undefined;
  }

  create(def: ResourceDef, input: KubeObject, namespace?: string, opts: { dryRun?: boolean } = {}): KubeObject {
    const obj = clone(input);
    obj.metadata ??= {};
    const meta = obj.metadata;
    if (def.namespaced) {
      const ns = namespace ?? meta.namespace ?? 'default';
      if (meta.namespace !== undefined && meta.namespace !== ns) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = ns;
      const nsDef = resourceByName('namespaces') as ResourceDef;
      if (!this.bucket(nsDef).has(objKey(undefined, ns))) throw notFound('namespaces', '', ns);
    } else {
      delete meta.namespace;
    }
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomBytes(3).toString('hex').slice(0, 5);
    const name = meta.name ?? '';
    if (!name) throw invalid(def.resource, def.group, '', 'metadata.name', 'Required value: name or generateName is required');
    const valid = def.resource === 'namespaces' || def.resource === 'services' ? DNS_LABEL : DNS_SUBDOMAIN;
    if (!valid.test(name) || name.length > 253) {
      throw invalid(def.resource, def.group, name, 'metadata.name', `Invalid value: "${name}": a lowercase RFC 1123 name must consist of lower case alphanumeric characters, '-' or '.'`);
    }
    const bucket = this.bucket(def);
    const key = objKey(meta.namespace, name);
    if (bucket.has(key)) throw alreadyExists(def.resource, def.group, name);
    obj.apiVersion = apiVersionOf(def);
    obj.kind = def.kind;
    meta.uid = randomUUID();
    meta.creationTimestamp = rfc3339();
    delete meta.deletionTimestamp;
    if (def.resource === 'deployments') meta.generation = 1;
    this.applyDefaults(def, obj);
    if (opts.dryRun) return clone(obj);
    this.rv++;
    meta.resourceVersion = String(this.rv);
    bucket.set(key, obj);
    this.record('ADDED', def, obj);
    return clone(obj);
  }

  /** Replaces an object; a set metadata.resourceVersion must match (optimistic concurrency). */
  update(def: ResourceDef, input: KubeObject, namespace?: string, opts: { dryRun?: boolean } = {}): KubeObject {
    const obj = clone(input);
    const name = obj.metadata?.name ?? '';
    const ns = def.namespaced ? (namespace ?? obj.metadata.namespace) : undefined;
    const bucket = this.bucket(def);
    const key = objKey(ns, name);
    const current = bucket.get(key);
    if (!current) throw notFound(def.resource, def.group, name);
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== current.metadata.resourceVersion) throw conflict(def.resource, def.group, name);
    obj.apiVersion = apiVersionOf(def);
    obj.kind = def.kind;
    obj.metadata.namespace = ns;
    if (!def.namespaced) delete obj.metadata.namespace;
    obj.metadata.uid = current.metadata.uid;
    obj.metadata.creationTimestamp = current.metadata.creationTimestamp;
    if (def.resource === 'deployments') {
      const specChanged = JSON.stringify(obj['spec']) !== JSON.stringify(current['spec']);
      obj.metadata.generation = (current.metadata.generation ?? 1) + (specChanged ? 1 : 0);
    }
    this.applyDefaults(def, obj);
    if (opts.dryRun) return clone(obj);
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    bucket.set(key, obj);
    this.record('MODIFIED', def, obj);
    return clone(obj);
  }

  delete(def: ResourceDef, namespace: string | undefined, name: string, opts: { dryRun?: boolean } = {}): KubeObject {
    const bucket = this.bucket(def);
    const key = objKey(def.namespaced ? namespace : undefined, name);
    const current = bucket.get(key);
    if (!current) throw notFound(def.resource, def.group, name);
    if (opts.dryRun) return clone(current);
    if (def.resource === 'namespaces') {
      for (const [k, b] of this.data) {
        if (k === keyOf(def)) continue;
        const [group = '', resource = ''] = k.split('/');
        const childDef = resourceByName(resource, group) as ResourceDef;
        for (const [ok, o] of b) {
          if (o.metadata.namespace === name) {
            b.delete(ok);
            this.rv++;
            o.metadata.resourceVersion = String(this.rv);
            this.record('DELETED', childDef, o);
          }
        }
      }
    }
    bucket.delete(key);
    this.rv++;
    current.metadata.resourceVersion = String(this.rv);
    this.record('DELETED', def, current);
    return clone(current);
  }

  /** Registers items generated on the fly for a list of def in namespace (appended after the stored ones). */
  setSynthetic(def: ResourceDef, namespace: string | undefined, items: SyntheticItems | undefined): void {
    const key = `${keyOf(def)}/${namespace ?? ''}`;
    if (items) this.synthetic.set(key, items);
    else this.synthetic.delete(key);
  }

  clearSynthetic(): void {
    this.synthetic.clear();
  }

  /**
   * Stored items (sorted by namespace/name, as etcd keys sort) then synthetic ones, filtered by
   * the selectors. With limit, a continue token carries the offset into that sequence.
   */
  list(def: ResourceDef, q: ListQuery): ListResult {
    const stored = [...this.bucket(def).entries()]
      .filter(([, o]) => !def.namespaced || q.namespace === undefined || o.metadata.namespace === q.namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => o);
    const synth: SyntheticItems[] = [];
    for (const [key, items] of this.synthetic) {
      const prefix = `${keyOf(def)}/`;
      if (!key.startsWith(prefix)) continue;
      const ns = key.slice(prefix.length);
      if (q.namespace === undefined || ns === q.namespace) synth.push(items);
    }
    const total = stored.length + synth.reduce((n, s) => n + s.count, 0);
    let offset = 0;
    if (q.continueToken) {
      try {
        const parsed = JSON.parse(Buffer.from(q.continueToken, 'base64url').toString('utf8')) as { o?: unknown };
        if (typeof parsed.o !== 'number') throw new Error('bad token');
        offset = parsed.o;
      } catch {
        throw badRequest('continue key is not valid: illegal base64 data');
      }
    }
    const filtered = Boolean(q.labelSelector?.length || q.fieldSelector?.length);
    const limit = q.limit && q.limit > 0 ? q.limit : Infinity;
    const resourceVersion = this.resourceVersion;
    const result: ListResult = { resourceVersion, items: [] };

    // Unfiltered: pages are index ranges, computed without touching the items.
    if (!filtered) {
      const end = Math.min(total, offset + limit);
      result.items = iterate(stored, synth, offset, end);
      if (end < total) {
        result.continueToken = Buffer.from(JSON.stringify({ o: end, rv: resourceVersion })).toString('base64url');
        result.remainingItemCount = total - end;
      }
      return result;
    }
    // Filtered: walk from offset until limit matches are found.
    const items: KubeObject[] = [];
    let i = offset;
    for (const obj of iterate(stored, synth, offset, total)) {
      i++;
      if (!labelsMatch(obj, q)) continue;
      items.push(obj);
      if (items.length >= limit) break;
    }
    result.items = items;
    if (items.length >= limit && i < total) result.continueToken = Buffer.from(JSON.stringify({ o: i, rv: resourceVersion })).toString('base64url');
    return result;
  }

  private applyDefaults(def: ResourceDef, obj: KubeObject): void {
    const meta = obj.metadata;
    switch (def.resource) {
      case 'namespaces': {
        meta.labels = { ...meta.labels, 'kubernetes.io/metadata.name': meta.name as string };
        obj['spec'] ??= { finalizers: ['kubernetes'] };
        obj['status'] = { phase: 'Active' };
        break;
      }
      case 'pods': {
        const spec = (obj['spec'] ??= {}) as Record<string, unknown>;
        const containers = (Array.isArray(spec['containers']) ? spec['containers'] : []) as Array<Record<string, unknown>>;
        if (containers.length === 0) containers.push({ name: 'main', image: 'keyway/test:latest' });
        spec['containers'] = containers;
        spec['nodeName'] ??= 'keyway-test-node';
        spec['restartPolicy'] ??= 'Always';
        const status = (obj['status'] ?? {}) as Record<string, unknown>;
        const phase = (status['phase'] as string | undefined) ?? 'Running';
        const running = phase === 'Running';
        const started = (status['startTime'] as string | undefined) ?? meta.creationTimestamp;
        const ip = (status['podIP'] as string | undefined) ?? `10.244.0.${(this.podCounter++ % 250) + 2}`;
        obj['status'] = {
          phase,
          conditions: [
            { type: 'Initialized', status: 'True', lastTransitionTime: started },
            { type: 'Ready', status: running ? 'True' : 'False', lastTransitionTime: started },
            { type: 'ContainersReady', status: running ? 'True' : 'False', lastTransitionTime: started },
            { type: 'PodScheduled', status: 'True', lastTransitionTime: started },
          ],
          hostIP: '10.0.0.10',
          podIP: ip,
          podIPs: [{ ip }],
          startTime: started,
          containerStatuses: containers.map((c) => ({
            name: c['name'],
            image: c['image'] ?? 'keyway/test:latest',
            imageID: '',
            ready: running,
            started: running,
            restartCount: 0,
            state: running ? { running: { startedAt: started } } : phase === 'Pending' ? { waiting: { reason: 'ContainerCreating' } } : { terminated: { exitCode: phase === 'Succeeded' ? 0 : 1, reason: phase === 'Succeeded' ? 'Completed' : 'Error' } },
          })),
          qosClass: 'BestEffort',
        };
        break;
      }
      case 'secrets': {
        obj['type'] ??= 'Opaque';
        const stringData = obj['stringData'] as Record<string, string> | undefined;
        if (stringData) {
          const data = ((obj['data'] ??= {}) as Record<string, string>);
          for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(v).toString('base64');
          delete obj['stringData'];
        }
        break;
      }
      case 'services': {
        const spec = (obj['spec'] ??= {}) as Record<string, unknown>;
        spec['type'] ??= 'ClusterIP';
        spec['clusterIP'] ??= `10.96.${Math.floor(this.rv / 250) % 250}.${(this.rv % 250) + 1}`;
        obj['status'] ??= { loadBalancer: {} };
        break;
      }
      case 'deployments': {
        const spec = (obj['spec'] ??= {}) as Record<string, unknown>;
        const replicas = typeof spec['replicas'] === 'number' ? spec['replicas'] : 1;
        spec['replicas'] = replicas;
        obj['status'] = { observedGeneration: meta.generation ?? 1, replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas };
        break;
      }
    }
  }
}

function* iterate(stored: KubeObject[], synth: SyntheticItems[], from: number, to: number): Generator<KubeObject> {
  let i = from;
  while (i < to && i < stored.length) yield clone(stored[i++] as KubeObject);
  let base = stored.length;
  for (const s of synth) {
    while (i < to && i < base + s.count) yield s.item(i++ - base);
    base += s.count;
  }
}
