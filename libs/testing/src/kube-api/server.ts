/**
 * A Kubernetes API server for tests: real TLS with its own CA, client-certificate identities,
 * impersonation and RBAC as kube-apiserver does them, in-memory CRUD/list/watch, discovery,
 * server-side Table printing, logs, and exec/attach/port-forward over WebSocket and SPDY/3.1
 * against a fake container. The real kubectl works against it; Keyway's proxy and agent
 * tests put it behind Keyway.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import YAML from 'yaml';
import { AUTHENTICATED, Authorizer, authenticate, impersonate, impersonatorRule, SYSTEM_MASTERS, type TestRbacRule, type UserInfo } from './auth.js';
import { LiveLog, toLogState, writeLog, type LogSourceState, type PodLogSource } from './logs.js';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { decodeKubeProtobuf, isKubeProtobuf } from './protobuf.js';
import { createTestCa, type CertAndKey, type TestCa } from './pki.js';
import {
  PORT_FORWARD_SPDY_PROTOCOL,
  PORT_FORWARD_TUNNEL_PROTOCOLS,
  PORT_FORWARD_WS_PROTOCOLS,
  serveSpdyPortForward,
  serveWebSocketPortForward,
  type PortForwardContext,
  type TcpTarget,
} from './portforward.js';
import {
  negotiate,
  REMOTE_COMMAND_SPDY_PROTOCOLS,
  REMOTE_COMMAND_WS_PROTOCOLS,
  serveSpdyRemoteCommand,
  serveWebSocketRemoteCommand,
  type ExecOutcome,
  type StreamSelection,
} from './remotecommand.js';
import {
  apiGroupDoc,
  apiGroupListDoc,
  apiResourceListDoc,
  apiVersionOf,
  apiVersionsDoc,
  findResource,
  openApiV3Doc,
  openApiV3RootDoc,
  resourceByName,
  SUBRESOURCES,
  VERSION_INFO,
  type ResourceDef,
} from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { ExecStartError, FakeShell, type ExecContext, type ExecIo, type FakeCommand } from './shell.js';
import { SpdySession } from './spdy.js';
import { drained } from './util.js';
import { badRequest, internalError, methodNotAllowed, notFound, notFoundPath, statusBody, StatusError } from './status.js';
import { labelsMatch, ObjectStore, type KubeObject, type ListQuery, type StoreEvent } from './store.js';
import { tableApiVersion, tableColumns, tableRow, wantsTable } from './table.js';

export type { TestRbacRule, UserInfo } from './auth.js';
export type { KubeObject } from './store.js';

export interface RecordedRequest {
  /** Sequence number, from 1. */
  id: number;
  time: Date;
  method: string;
  /** Path without the query. */
  path: string;
  /** Path and query as sent. */
  url: string;
  query: URLSearchParams;
  /** As node parsed them (lowercase names; repeated headers in headersDistinct). */
  headers: IncomingMessage['headers'];
  headersDistinct: IncomingMessage['headersDistinct'];
  /** Who the client certificate or token says the caller is; null if unauthenticated. */
  authenticated: UserInfo | null;
  /** The effective identity: the impersonated user when Impersonate-* headers were honoured. */
  user: UserInfo | null;
  impersonated: boolean;
  verb?: string;
  apiGroup?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** 'websocket' or 'spdy' for upgraded (streaming) requests, with the negotiated subprotocol. */
  upgrade?: 'websocket' | 'spdy';
  protocol?: string;
  /** Response status once known (101 for a successful upgrade). */
  status?: number;
  /** Request body of mutating requests (first 64 KiB). */
  body?: string;
}

export interface TestPodSpec {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Container names; default ['main']. */
  containers?: string[];
  phase?: 'Running' | 'Pending' | 'Succeeded' | 'Failed';
  /** Logs of every container, or per container name. Default: three numbered lines. */
  logs?: PodLogSource | Record<string, PodLogSource>;
  /** Port-forward targets: pod port -> local TCP port or address. */
  ports?: Record<number, number | TcpTarget>;
  /** What `kubectl attach` talks to. Default: print attachOutput, then echo stdin until EOF. */
  attach?: FakeCommand;
  attachOutput?: string;
}

export interface SyntheticListOptions {
  /** Default 'configmaps'. */
  resource?: string;
  group?: string;
  namespace?: string;
  count: number;
  /** Approximate JSON size of each generated item (default ~1 KiB). */
  itemBytes?: number;
  /** Builds item i instead of the default ConfigMap-shaped filler. */
  item?: (index: number) => KubeObject;
}

export type KubeconfigIdentity = { user: string; groups?: string[] } | { token: string };

export interface TestKubeApiServer {
  /** https://127.0.0.1:PORT */
  url: string;
  port: number;
  /** CA that signed the serving certificate and the client certificates. */
  caPem: string;
  /** Where kubeconfigs and certificates are written. */
  dir: string;
  /** CN=test-admin, O=system:masters: may do anything, may impersonate. */
  adminKubeconfig: string;
  /** CN=keyway-agent: may only impersonate users, groups, service accounts, uids and extras. */
  agentKubeconfig: string;
  /** CN=nobody, O=nobody-group: authenticated, may do nothing beyond discovery unless setRbac says so. */
  nobodyKubeconfig: string;
  readonly users: { admin: string; agent: string; nobody: string };
  /** Every request seen, in arrival order. */
  requests: RecordedRequest[];
  /** Watch responses still open (a client that went away no longer counts). */
  readonly openWatches: number;
  /** What non-admin identities (normally the impersonated ones) may do; replaces the previous rules. */
  setRbac(rules: TestRbacRule[]): void;
  /** Called for each request once its identity is known; returns an unsubscribe function. */
  onRequest(listener: (req: RecordedRequest) => void): () => void;

  createObject(resource: string, obj: KubeObject, opts?: { namespace?: string; group?: string }): KubeObject;
  getObject(resource: string, namespace: string | undefined, name: string, group?: string): KubeObject | undefined;
  updateObject(resource: string, obj: KubeObject, opts?: { namespace?: string; group?: string }): KubeObject;
  deleteObject(resource: string, namespace: string | undefined, name: string, group?: string): void;
  listObjects(resource: string, namespace?: string, group?: string): KubeObject[];
  /** Creates (or replaces) a pod with the given fake behaviour. */
  addPod(spec: TestPodSpec): KubeObject;
  setPodLogs(namespace: string, pod: string, logs: PodLogSource, container?: string): void;
  /** Appends to a pod's live log (what `kubectl logs -f` is following). */
  appendPodLog(namespace: string, pod: string, text: string | Buffer, container?: string): void;
  /** Ends a live log: followers see EOF. */
  endPodLog(namespace: string, pod: string, container?: string): void;
  setPortForward(namespace: string, pod: string, port: number, target: number | TcpTarget): void;
  /** Adds (or overrides) a command of the fake container shell. */
  setCommand(name: string, command: FakeCommand): void;
  /**
   * Makes lists of a resource in a namespace include `count` generated items, produced while
   * the response is written (never held in memory). null removes all synthetic items.
   */
  setSyntheticList(opts: SyntheticListOptions | null): void;
  /** A client certificate from the server's CA (CN = user, O = groups). */
  issueClientCertificate(user: string, groups?: string[]): CertAndKey;
  /** Writes a kubeconfig for an identity into dir and returns its path. */
  writeKubeconfig(name: string, identity: KubeconfigIdentity): Promise<string>;
  /** Accepts `Authorization: Bearer token` as the given user. */
  addToken(token: string, user: UserInfo): void;
  close(): Promise<void>;
}

export interface StartTestKubeApiServerOptions {
  /** Where to write kubeconfigs/certs (created if missing; a temp dir removed on close otherwise). */
  dir?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Extra names for the serving certificate (127.0.0.1, ::1 and localhost are always in it). */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Extra namespaces to create besides default, kube-system, kube-public. */
  namespaces?: string[];
  pods?: TestPodSpec[];
}

const ADMIN = 'test-admin';
const AGENT = 'keyway-agent';
const NOBODY = 'nobody';

interface PodBehaviour {
  logs: Map<string, LogSourceState>;
  defaultLogs?: PodLogSource;
  ports: Map<number, TcpTarget>;
  attach?: FakeCommand;
  attachOutput?: string;
}

interface RequestInfo {
  resourceRequest: boolean;
  path: string;
  verb: string;
  apiGroup: string;
  apiVersion: string;
  namespace?: string;
  resource?: string;
  name?: string;
  subresource?: string;
}

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

/** kube's RequestInfoFactory, enough of it for the paths we serve. */
export function parseRequestInfo(method: string, path: string, query: URLSearchParams): RequestInfo {
  const parts = path.split('/').filter((p) => p !== '');
  const methodVerb: Record<string, string> = { GET: 'get', HEAD: 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
  const info: RequestInfo = { resourceRequest: false, path, verb: (methodVerb[method] ?? method).toLowerCase(), apiGroup: '', apiVersion: '' };
  if (parts[0] !== 'api' && parts[0] !== 'apis') return info;
  let rest: string[];
  if (parts[0] === 'api') {
    if (parts.length < 3) return info;
    info.apiVersion = parts[1] as string;
    rest = parts.slice(2);
  } else {
    if (parts.length < 4) return info;
    info.apiGroup = parts[1] as string;
    info.apiVersion = parts[2] as string;
    rest = parts.slice(3);
  }
  info.resourceRequest = true;
  if (rest[0] === 'watch') {
    info.verb = 'watch';
    rest = rest.slice(1);
  }
  if (rest[0] === 'namespaces' && rest.length > 1) {
    info.namespace = rest[1] as string;
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2] as string)) rest = rest.slice(2);
  }
  if (rest[0] !== undefined) info.resource = rest[0];
  if (rest[1] !== undefined) info.name = rest[1];
  if (rest[2] !== undefined) info.subresource = rest[2];
  const watchParam = query.get('watch');
  const isWatch = watchParam === 'true' || watchParam === '1';
  if (info.name === undefined && info.verb === 'get') {
    info.verb = isWatch ? 'watch' : 'list';
    const field = query.get('fieldSelector');
    const m = field ? /^metadata\.name==?([^,]+)$/.exec(field) : null;
    if (m) info.name = m[1] as string;
  }
  if (info.name === undefined && info.verb === 'delete') info.verb = 'deletecollection';
  return info;
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
  res.end(text);
}

function toStatusError(err: unknown): StatusError {
  if (err instanceof StatusError) return err;
  return internalError((err as Error)?.message ?? String(err));
}

function rawError(socket: Duplex, err: unknown): number {
  const s = toStatusError(err).status;
  const body = JSON.stringify(s);
  if (!socket.destroyed) {
    socket.end(
      `HTTP/1.1 ${s.code} ${STATUS_CODES[s.code] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  return s.code;
}

async function readBody(req: IncomingMessage, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new StatusError(statusBody(413, 'RequestEntityTooLarge', 'request entity too large'));
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseObject(body: Buffer, contentType: string | undefined): KubeObject {
  if (isKubeProtobuf(contentType)) return decodeKubeProtobuf(body);
  const text = body.toString('utf8');
  try {
    const v: unknown = contentType?.includes('yaml') ? YAML.parse(text) : JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as KubeObject;
  } catch (err) {
    throw badRequest(`the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (${(err as Error).message})`);
  }
}

/** Writes a large JSON document made of a head, many items and a tail, with backpressure. */
async function streamJson(res: ServerResponse, head: string, items: Iterable<unknown>, tail: string, encode: (item: unknown) => string): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  let buf = head;
  let first = true;
  for (const item of items) {
    buf += (first ? '' : ',') + encode(item);
    first = false;
    if (buf.length >= 256 * 1024) {
      const ok = res.write(buf);
      buf = '';
      if (!ok) {
        await drained(res);
        if (res.destroyed) return;
      }
    }
  }
  res.end(buf + tail);
}

function withoutTypeMeta(obj: unknown): unknown {
  const { kind: _k, apiVersion: _a, ...rest } = obj as Record<string, unknown>;
  return rest;
}

class TestKubeApiServerImpl implements TestKubeApiServer {
  url = '';
  port = 0;
  caPem: string;
  dir = '';
  adminKubeconfig = '';
  agentKubeconfig = '';
  nobodyKubeconfig = '';
  readonly users = { admin: ADMIN, agent: AGENT, nobody: NOBODY };
  requests: RecordedRequest[] = [];

  get openWatches(): number {
    return this.store.subscribers;
  }

  private readonly ca: TestCa;
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly store = new ObjectStore();
  private readonly authz = new Authorizer([impersonatorRule({ users: [AGENT] })]);
  private readonly tokens = new Map<string, UserInfo>();
  private readonly listeners = new Set<(r: RecordedRequest) => void>();
  private readonly pods = new Map<string, PodBehaviour>();
  private readonly commands = new Map<string, FakeCommand>();
  private readonly sockets = new Set<Socket>();
  private readonly wsProtocol = new WeakMap<IncomingMessage, string>();
  private ownDir = false;
  private seq = 0;
  private closed = false;

  constructor(private readonly opts: StartTestKubeApiServerOptions) {
    this.ca = createTestCa();
    this.caPem = this.ca.certPem;
    const serving = this.ca.issueServer({
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', ...(opts.dnsNames ?? [])],
      ipAddresses: ['127.0.0.1', '::1', ...(opts.ipAddresses ?? [])],
    });
    this.server = createServer({
      key: serving.keyPem,
      cert: serving.certPem,
      ca: this.ca.certPem,
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    // Watches and followed logs stay open for as long as the client wants.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 60_000;
    this.server.keepAliveTimeout = 30_000;
    this.server.on('secureConnection', (s: TLSSocket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      void this.handle(req, res);
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.handleUpgrade(req, socket as TLSSocket, head);
    });
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: 256 * 1024 * 1024,
      handleProtocols: (_offered, req) => this.wsProtocol.get(req) ?? false,
    });
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease', ...(opts.namespaces ?? [])]) {
      this.store.create(resourceByName('namespaces') as ResourceDef, { metadata: { name: ns } });
    }
  }

  async start(): Promise<void> {
    this.server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1');
    await once(this.server, 'listening');
    const addr = this.server.address();
    if (!addr || typeof addr === 'string') throw new Error('no address');
    this.port = addr.port;
    const host = this.opts.host ?? '127.0.0.1';
    this.url = `https://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
    if (this.opts.dir) {
      this.dir = this.opts.dir;
      await mkdir(this.dir, { recursive: true });
    } else {
      this.dir = await mkdtemp(join(tmpdir(), 'keyway-kube-api-'));
      this.ownDir = true;
    }
    this.adminKubeconfig = await this.writeKubeconfig('admin', { user: ADMIN, groups: [SYSTEM_MASTERS] });
    this.agentKubeconfig = await this.writeKubeconfig('agent', { user: AGENT });
    this.nobodyKubeconfig = await this.writeKubeconfig('nobody', { user: NOBODY, groups: ['nobody-group'] });
    for (const p of this.opts.pods ?? []) this.addPod(p);
  }

  // ---- public API ------------------------------------------------------------------

  setRbac(rules: TestRbacRule[]): void {
    this.authz.rules = [...rules];
  }

  onRequest(listener: (req: RecordedRequest) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private def(resource: string, group = ''): ResourceDef {
    const def = resourceByName(resource, group);
    if (!def) throw new Error(`the test API server does not serve ${resource}${group ? `.${group}` : ''}`);
    return def;
  }

  createObject(resource: string, obj: KubeObject, opts: { namespace?: string; group?: string } = {}): KubeObject {
    const created = this.store.create(this.def(resource, opts.group), obj, opts.namespace);
    return created;
  }

  getObject(resource: string, namespace: string | undefined, name: string, group?: string): KubeObject | undefined {
    return this.store.tryGet(this.def(resource, group), namespace, name);
  }

  updateObject(resource: string, obj: KubeObject, opts: { namespace?: string; group?: string } = {}): KubeObject {
    return this.store.update(this.def(resource, opts.group), obj, opts.namespace);
  }

  deleteObject(resource: string, namespace: string | undefined, name: string, group?: string): void {
    this.store.delete(this.def(resource, group), namespace, name);
    if (resource === 'pods') this.podGone(namespace ?? 'default', name);
  }

  listObjects(resource: string, namespace?: string, group?: string): KubeObject[] {
    return [...this.store.list(this.def(resource, group), { namespace }).items];
  }

  addPod(spec: TestPodSpec): KubeObject {
    const namespace = spec.namespace ?? 'default';
    const podsDef = this.def('pods');
    if (this.store.tryGet(podsDef, namespace, spec.name)) this.deleteObject('pods', namespace, spec.name);
    const containers = spec.containers ?? ['main'];
    const pod = this.store.create(
      podsDef,
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: spec.name, namespace, ...(spec.labels ? { labels: spec.labels } : {}), ...(spec.annotations ? { annotations: spec.annotations } : {}) },
        spec: { containers: containers.map((name) => ({ name, image: 'keyway/test:latest', ports: Object.keys(spec.ports ?? {}).map((p) => ({ containerPort: Number(p), protocol: 'TCP' })) })) },
        status: { phase: spec.phase ?? 'Running' },
      },
      namespace,
    );
    const b = this.behaviour(namespace, spec.name);
    if (spec.logs !== undefined) {
      const perContainer = typeof spec.logs === 'object' && !Buffer.isBuffer(spec.logs) && !('bytes' in spec.logs) && typeof spec.logs !== 'function';
      if (perContainer) for (const [c, src] of Object.entries(spec.logs as Record<string, PodLogSource>)) b.logs.set(c, toLogState(src));
      else b.defaultLogs = spec.logs as PodLogSource;
    }
    for (const [port, target] of Object.entries(spec.ports ?? {})) b.ports.set(Number(port), typeof target === 'number' ? { port: target } : target);
    if (spec.attach) b.attach = spec.attach;
    if (spec.attachOutput !== undefined) b.attachOutput = spec.attachOutput;
    return pod;
  }

  private behaviour(namespace: string, pod: string): PodBehaviour {
    const key = `${namespace}/${pod}`;
    let b = this.pods.get(key);
    if (!b) this.pods.set(key, (b = { logs: new Map(), ports: new Map() }));
    return b;
  }

  private podGone(namespace: string, pod: string): void {
    const b = this.pods.get(`${namespace}/${pod}`);
    if (!b) return;
    for (const l of b.logs.values()) if (l instanceof LiveLog) l.end();
    this.pods.delete(`${namespace}/${pod}`);
  }

  private logState(namespace: string, pod: KubeObject, container: string): LogSourceState {
    const b = this.behaviour(namespace, pod.metadata.name as string);
    let state = b.logs.get(container);
    if (!state) {
      const name = pod.metadata.name as string;
      state = toLogState(b.defaultLogs ?? [1, 2, 3].map((n) => `${name} ${container} line ${n}\n`).join(''));
      b.logs.set(container, state);
    }
    return state;
  }

  private containerOf(pod: KubeObject, requested: string | null | undefined): string {
    const containers = (((pod['spec'] as Record<string, unknown>)?.['containers'] ?? []) as Array<{ name: string }>).map((c) => c.name);
    const name = pod.metadata.name as string;
    if (requested) {
      if (!containers.includes(requested)) throw badRequest(`container ${requested} is not valid for pod ${name}`);
      return requested;
    }
    if (containers.length === 1) return containers[0] as string;
    throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${containers.join(' ')}]`);
  }

  setPodLogs(namespace: string, pod: string, logs: PodLogSource, container?: string): void {
    const b = this.behaviour(namespace, pod);
    if (container) b.logs.set(container, toLogState(logs));
    else {
      b.defaultLogs = logs;
      b.logs.clear();
    }
  }

  appendPodLog(namespace: string, pod: string, text: string | Buffer, container?: string): void {
    const obj = this.store.get(this.def('pods'), namespace, pod);
    const state = this.logState(namespace, obj, this.containerOf(obj, container));
    if (!(state instanceof LiveLog)) throw new Error(`the log of ${namespace}/${pod} is generated, not a live buffer`);
    state.append(text);
  }

  endPodLog(namespace: string, pod: string, container?: string): void {
    const obj = this.store.get(this.def('pods'), namespace, pod);
    const state = this.logState(namespace, obj, this.containerOf(obj, container));
    if (state instanceof LiveLog) state.end();
  }

  setPortForward(namespace: string, pod: string, port: number, target: number | TcpTarget): void {
    this.behaviour(namespace, pod).ports.set(port, typeof target === 'number' ? { port: target } : target);
  }

  setCommand(name: string, command: FakeCommand): void {
    this.commands.set(name, command);
  }

  setSyntheticList(opts: SyntheticListOptions | null): void {
    if (opts === null) {
      this.store.clearSynthetic();
      return;
    }
    const def = this.def(opts.resource ?? 'configmaps', opts.group);
    const namespace = def.namespaced ? (opts.namespace ?? 'default') : undefined;
    const itemBytes = opts.itemBytes ?? 1024;
    const created = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const rv = this.store.resourceVersion;
    const filler = 'x'.repeat(Math.max(0, itemBytes - 300));
    const item =
      opts.item ??
      ((i: number): KubeObject => ({
        apiVersion: apiVersionOf(def),
        kind: def.kind,
        metadata: {
          name: `synthetic-${String(i).padStart(9, '0')}`,
          ...(namespace ? { namespace } : {}),
          uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
          resourceVersion: rv,
          creationTimestamp: created,
          labels: { 'keyway.test/synthetic': 'true' },
        },
        data: { index: String(i), filler },
      }));
    this.store.setSynthetic(def, namespace, { count: opts.count, item });
  }

  issueClientCertificate(user: string, groups: string[] = []): CertAndKey {
    return this.ca.issueClient(user, groups);
  }

  async writeKubeconfig(name: string, identity: KubeconfigIdentity): Promise<string> {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    let user: Record<string, string>;
    if ('token' in identity) user = { token: identity.token };
    else {
      const c = this.ca.issueClient(identity.user, identity.groups ?? []);
      user = { 'client-certificate-data': b64(c.certPem), 'client-key-data': b64(c.keyPem) };
    }
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'keyway-test', cluster: { server: this.url, 'certificate-authority-data': b64(this.caPem) } }],
      users: [{ name, user }],
      contexts: [{ name, context: { cluster: 'keyway-test', user: name, namespace: 'default' } }],
      'current-context': name,
      preferences: {},
    };
    const path = join(this.dir, `${name}.kubeconfig`);
    await writeFile(path, YAML.stringify(config), { mode: 0o600 });
    return path;
  }

  addToken(token: string, user: UserInfo): void {
    this.tokens.set(token, user);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const ws of this.wss.clients) ws.terminate();
    for (const s of this.sockets) s.destroy();
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.ownDir) await rm(this.dir, { recursive: true, force: true });
  }

  // ---- request pipeline ------------------------------------------------------------

  private record(req: IncomingMessage): RecordedRequest {
    const url = new URL(req.url ?? '/', 'https://localhost');
    const rec: RecordedRequest = {
      id: ++this.seq,
      time: new Date(),
      method: req.method ?? 'GET',
      path: url.pathname,
      url: req.url ?? '/',
      query: url.searchParams,
      headers: req.headers,
      headersDistinct: req.headersDistinct,
      authenticated: null,
      user: null,
      impersonated: false,
    };
    this.requests.push(rec);
    return rec;
  }

  private notify(rec: RecordedRequest): void {
    for (const l of this.listeners) {
      try {
        l(rec);
      } catch {
        // a listener's failure is the test's business, not the server's
      }
    }
  }

  /** Authentication, impersonation and request attributes; throws a StatusError on refusal. */
  private identify(req: IncomingMessage, rec: RecordedRequest): { user: UserInfo; info: RequestInfo } {
    try {
      const authenticated = authenticate(req, this.tokens);
      rec.authenticated = authenticated;
      const impersonated = impersonate(req, authenticated, this.authz);
      const user = impersonated ?? authenticated;
      rec.user = user;
      rec.impersonated = impersonated !== undefined;
      const info = parseRequestInfo(rec.method, rec.path, rec.query);
      rec.verb = info.verb;
      if (info.resourceRequest) {
        rec.apiGroup = info.apiGroup;
        if (info.resource !== undefined) rec.resource = info.resource;
        if (info.subresource !== undefined) rec.subresource = info.subresource;
        if (info.namespace !== undefined) rec.namespace = info.namespace;
        if (info.name !== undefined) rec.name = info.name;
      }
      return { user, info };
    } finally {
      this.notify(rec);
    }
  }

  private authorize(user: UserInfo, info: RequestInfo, verb = info.verb): void {
    this.authz.check({
      user,
      verb,
      resourceRequest: info.resourceRequest,
      path: info.path,
      apiGroup: info.apiGroup,
      ...(info.resource !== undefined ? { resource: info.resource } : {}),
      ...(info.subresource !== undefined ? { subresource: info.subresource } : {}),
      ...(info.namespace !== undefined ? { namespace: info.namespace } : {}),
      ...(info.name !== undefined ? { name: info.name } : {}),
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rec = this.record(req);
    res.on('finish', () => (rec.status = res.statusCode));
    res.on('close', () => (rec.status ??= res.statusCode));
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS') {
        (req as IncomingMessage & { bodyBuffer?: Buffer }).bodyBuffer = await readBody(req);
        const body = (req as IncomingMessage & { bodyBuffer?: Buffer }).bodyBuffer as Buffer;
        rec.body = body.subarray(0, 64 * 1024).toString('utf8');
      }
      const { user, info } = this.identify(req, rec);
      this.authorize(user, info);
      if (!info.resourceRequest) return this.nonResource(req, res, info);
      await this.resource(req, res, info, user);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const s = toStatusError(err);
      sendJson(res, s.code, s.status);
    }
  }

  private nonResource(req: IncomingMessage, res: ServerResponse, info: RequestInfo): void {
    const p = info.path.replace(/\/+$/, '') || '/';
    const send = (doc: unknown) => sendJson(res, 200, doc);
    if (p === '/version') return send(VERSION_INFO);
    if (p === '/api') return send(apiVersionsDoc(`${req.socket.localAddress ?? '127.0.0.1'}:${this.port}`));
    if (p === '/apis') return send(apiGroupListDoc());
    if (p === '/healthz' || p === '/livez' || p === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (p === '/') return send({ paths: ['/api', '/api/v1', '/apis', '/healthz', '/livez', '/readyz', '/version'] });
    const m = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(p);
    if (m) {
      const doc = m[2] ? apiResourceListDoc(m[1] as string, m[2]) : apiGroupDoc(m[1] as string);
      if (doc) return send(doc);
    }
    if (p === '/api/v1') return send(apiResourceListDoc('', 'v1'));
    if (p === '/openapi/v3') return send(openApiV3RootDoc());
    const oa = /^\/openapi\/v3\/(?:api\/([^/]+)|apis\/([^/]+)\/([^/]+))$/.exec(p);
    if (oa) {
      const doc = oa[1] ? openApiV3Doc('', oa[1]) : openApiV3Doc(oa[2] as string, oa[3] as string);
      if (doc) return send(doc);
    }
    throw notFoundPath();
  }

  private async resource(req: IncomingMessage, res: ServerResponse, info: RequestInfo, user: UserInfo): Promise<void> {
    const def = info.resource ? findResource(info.apiGroup, info.apiVersion, info.resource) : undefined;
    if (!def) throw notFoundPath();
    const url = new URL(req.url ?? '/', 'https://localhost');
    const q = url.searchParams;
    const ns = def.namespaced ? info.namespace : undefined;
    if (def.namespaced && info.namespace === undefined && info.name !== undefined) throw notFoundPath();
    const dryRun = q.getAll('dryRun').includes('All');
    const body = (req as IncomingMessage & { bodyBuffer?: Buffer }).bodyBuffer;
    if (def.review) {
      if (info.verb !== 'create' || info.name !== undefined) throw methodNotAllowed();
      return sendJson(res, 201, this.review(def, parseObject(body ?? Buffer.alloc(0), req.headers['content-type']), user));
    }

    if (info.subresource !== undefined) {
      if (!SUBRESOURCES.some((s) => s.resource === def.resource && s.subresource === info.subresource)) throw notFoundPath();
      const name = info.name as string;
      if (info.subresource === 'log') {
        if (info.verb !== 'get') throw methodNotAllowed();
        return this.serveLogs(res, ns as string, name, q);
      }
      if (info.subresource === 'exec' || info.subresource === 'attach' || info.subresource === 'portforward') {
        this.store.get(def, ns, name);
        throw badRequest('Upgrade request required');
      }
      // status: the object itself, updated whole
      if (info.verb === 'get') return sendJson(res, 200, this.store.get(def, ns, name));
      return this.mutate(req, res, info, def, ns, name, body, dryRun, q);
    }

    switch (info.verb) {
      case 'get': {
        const obj = this.store.get(def, ns, info.name as string);
        if (wantsTable(req.headers.accept)) {
          return sendJson(res, 200, {
            kind: 'Table',
            apiVersion: tableApiVersion(req.headers.accept),
            metadata: { resourceVersion: obj.metadata.resourceVersion },
            columnDefinitions: tableColumns(def),
            rows: [tableRow(def, obj, q.get('includeObject'))],
          });
        }
        return sendJson(res, 200, obj);
      }
      case 'list':
      case 'watch': {
        const query: ListQuery = {
          namespace: ns,
          labelSelector: parseLabelSelector(q.get('labelSelector')),
          fieldSelector: parseFieldSelector(q.get('fieldSelector')),
          limit: q.has('limit') ? Number(q.get('limit')) : undefined,
          continueToken: q.get('continue') ?? undefined,
        };
        const watchParam = q.get('watch');
        if (info.verb === 'watch' || watchParam === 'true' || watchParam === '1') return this.serveWatch(req, res, def, query, q);
        return this.serveList(req, res, def, query, q);
      }
      case 'create': {
        if (info.name !== undefined) throw methodNotAllowed();
        const obj = parseObject(body ?? Buffer.alloc(0), req.headers['content-type']);
        this.checkKind(def, obj);
        const created = this.store.create(def, obj, ns, { dryRun });
        return sendJson(res, 201, created);
      }
      case 'update':
      case 'patch':
        return this.mutate(req, res, info, def, ns, info.name as string, body, dryRun, q);
      case 'delete': {
        const deleted = this.store.delete(def, ns, info.name as string, { dryRun });
        if (def.resource === 'pods' && !dryRun) this.podGone(ns as string, info.name as string);
        if (def.resource === 'pods' || def.resource === 'namespaces') return sendJson(res, 200, deleted);
        return sendJson(res, 200, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Success',
          details: { name: info.name, ...(def.group ? { group: def.group } : {}), kind: def.resource, uid: deleted.metadata.uid },
        });
      }
      case 'deletecollection': {
        const query: ListQuery = { namespace: ns, labelSelector: parseLabelSelector(q.get('labelSelector')), fieldSelector: parseFieldSelector(q.get('fieldSelector')) };
        const items = [...this.store.list(def, query).items];
        const deleted = items.map((o) => {
          const d = this.store.delete(def, o.metadata.namespace, o.metadata.name as string, { dryRun });
          if (def.resource === 'pods' && !dryRun) this.podGone(o.metadata.namespace as string, o.metadata.name as string);
          return d;
        });
        return sendJson(res, 200, { kind: `${def.kind}List`, apiVersion: apiVersionOf(def), metadata: { resourceVersion: this.store.resourceVersion }, items: deleted.map(withoutTypeMeta) });
      }
      default:
        void user;
        throw methodNotAllowed();
    }
  }

  /** SelfSubjectReview (kubectl auth whoami) and SelfSubjectAccessReview (kubectl auth can-i). */
  private review(def: ResourceDef, obj: KubeObject, user: UserInfo): unknown {
    const base = { kind: def.kind, apiVersion: apiVersionOf(def), metadata: { creationTimestamp: null } };
    if (def.kind === 'SelfSubjectReview') {
      const userInfo: Record<string, unknown> = { username: user.username, groups: user.groups };
      if (user.uid) userInfo['uid'] = user.uid;
      if (user.extra) userInfo['extra'] = user.extra;
      return { ...base, status: { userInfo } };
    }
    const spec = (obj['spec'] ?? {}) as { resourceAttributes?: Record<string, string>; nonResourceAttributes?: Record<string, string> };
    const ra = spec.resourceAttributes;
    const allowed = ra
      ? this.authz.allows({
          user,
          verb: ra['verb'] ?? '',
          resourceRequest: true,
          path: '',
          apiGroup: ra['group'] ?? '',
          resource: ra['resource'] ?? '',
          ...(ra['subresource'] ? { subresource: ra['subresource'] } : {}),
          ...(ra['namespace'] ? { namespace: ra['namespace'] } : {}),
          ...(ra['name'] ? { name: ra['name'] } : {}),
        })
      : this.authz.allows({ user, verb: spec.nonResourceAttributes?.['verb'] ?? 'get', resourceRequest: false, path: spec.nonResourceAttributes?.['path'] ?? '/' });
    return { ...base, spec, status: allowed ? { allowed: true, reason: 'allowed by the test API server RBAC table' } : { allowed: false } };
  }

  private checkKind(def: ResourceDef, obj: KubeObject): void {
    if (obj.kind !== undefined && obj.kind !== def.kind) throw badRequest(`the API version in the data (${obj.apiVersion ?? ''}) does not match the expected API version (${apiVersionOf(def)}) or kind ${obj.kind} does not match ${def.kind}`);
  }

  private async mutate(
    req: IncomingMessage,
    res: ServerResponse,
    info: RequestInfo,
    def: ResourceDef,
    ns: string | undefined,
    name: string,
    body: Buffer | undefined,
    dryRun: boolean,
    _q: URLSearchParams,
  ): Promise<void> {
    const contentType = (req.headers['content-type'] ?? 'application/json').split(';')[0]?.trim() ?? '';
    if (info.verb === 'update') {
      const obj = parseObject(body ?? Buffer.alloc(0), contentType);
      this.checkKind(def, obj);
      if (obj.metadata?.name !== undefined && obj.metadata.name !== name) throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
      obj.metadata = { ...obj.metadata, name };
      return sendJson(res, 200, this.store.update(def, obj, ns, { dryRun }));
    }
    if (info.verb !== 'patch') throw methodNotAllowed();
    const text = (body ?? Buffer.alloc(0)).toString('utf8');
    const current = this.store.tryGet(def, ns, name);
    let patched: unknown;
    try {
      switch (contentType) {
        case 'application/json-patch+json':
          if (!current) throw notFound(def.resource, def.group, name);
          patched = jsonPatch(current, JSON.parse(text));
          break;
        case 'application/merge-patch+json':
          if (!current) throw notFound(def.resource, def.group, name);
          patched = mergePatch(current, JSON.parse(text));
          break;
        case 'application/strategic-merge-patch+json':
          if (!current) throw notFound(def.resource, def.group, name);
          patched = strategicMergePatch(current, JSON.parse(text));
          break;
        case 'application/apply-patch+yaml':
        case 'application/apply-patch+cbor': {
          const applied = YAML.parse(text) as KubeObject;
          if (!current) {
            const created = this.store.create(def, { ...applied, metadata: { ...applied.metadata, name } }, ns, { dryRun });
            return sendJson(res, 201, created);
          }
          patched = mergePatch(current, applied);
          break;
        }
        default:
          throw new StatusError(statusBody(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`));
      }
    } catch (err) {
      if (err instanceof StatusError) throw err;
      throw badRequest(`the server rejected our request due to an error in our request: ${(err as Error).message}`);
    }
    const obj = patched as KubeObject;
    const requestedRv = (JSON.parse(JSON.stringify(obj)) as KubeObject).metadata?.resourceVersion;
    obj.metadata = { ...obj.metadata, name, resourceVersion: requestedRv ?? current?.metadata.resourceVersion };
    return sendJson(res, 200, this.store.update(def, obj, ns, { dryRun }));
  }

  private async serveList(req: IncomingMessage, res: ServerResponse, def: ResourceDef, query: ListQuery, q: URLSearchParams): Promise<void> {
    const result = this.store.list(def, query);
    const metadata: Record<string, unknown> = { resourceVersion: result.resourceVersion };
    if (result.continueToken) metadata['continue'] = result.continueToken;
    if (result.remainingItemCount !== undefined) metadata['remainingItemCount'] = result.remainingItemCount;
    if (wantsTable(req.headers.accept)) {
      const includeObject = q.get('includeObject');
      const head = JSON.stringify({ kind: 'Table', apiVersion: tableApiVersion(req.headers.accept), metadata, columnDefinitions: tableColumns(def) }).slice(0, -1) + ',"rows":[';
      return streamJson(res, head, result.items, ']}', (o) => JSON.stringify(tableRow(def, o as KubeObject, includeObject)));
    }
    const head = JSON.stringify({ kind: `${def.kind}List`, apiVersion: apiVersionOf(def), metadata }).slice(0, -1) + ',"items":[';
    return streamJson(res, head, result.items, ']}', (o) => JSON.stringify(withoutTypeMeta(o)));
  }

  private async serveWatch(req: IncomingMessage, res: ServerResponse, def: ResourceDef, query: ListQuery, q: URLSearchParams): Promise<void> {
    const table = wantsTable(req.headers.accept);
    const includeObject = q.get('includeObject');
    const tableVersion = tableApiVersion(req.headers.accept);
    let sentColumns = false;
    let lastRv = 0;
    const queued: StoreEvent[] = [];
    let live = false;
    const matches = (e: StoreEvent) => e.def === def && (!def.namespaced || query.namespace === undefined || e.object.metadata.namespace === query.namespace) && labelsMatch(e.object, query);
    const encode = (type: string, object: KubeObject): string => {
      if (!table) return JSON.stringify({ type, object }) + '\n';
      const t: Record<string, unknown> = { kind: 'Table', apiVersion: tableVersion, metadata: { resourceVersion: object.metadata.resourceVersion } };
      if (!sentColumns) t['columnDefinitions'] = tableColumns(def);
      t['rows'] = [tableRow(def, object, includeObject)];
      sentColumns = true;
      return JSON.stringify({ type, object: t }) + '\n';
    };
    const send = (e: StoreEvent) => {
      if (e.rv <= lastRv || !matches(e) || res.destroyed) return;
      lastRv = e.rv;
      res.write(encode(e.type, e.object));
    };
    const unsubscribe = this.store.subscribe((e) => (live ? send(e) : queued.push(e)));
    const done = new Promise<void>((resolve) => {
      res.on('close', resolve);
      const timeout = Number(q.get('timeoutSeconds') ?? 0);
      if (timeout > 0) setTimeout(resolve, timeout * 1000).unref();
    });
    try {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
      res.flushHeaders();
      const rvParam = q.get('resourceVersion');
      const sendInitial = q.get('sendInitialEvents') === 'true';
      if (sendInitial || !rvParam || rvParam === '0') {
        const current = this.store.list(def, { ...query, limit: undefined, continueToken: undefined });
        lastRv = Number(current.resourceVersion);
        for (const obj of current.items) {
          if (!res.write(encode('ADDED', obj))) await drained(res);
          if (res.destroyed) return;
        }
        if (sendInitial) {
          res.write(
            JSON.stringify({
              type: 'BOOKMARK',
              object: { kind: def.kind, apiVersion: apiVersionOf(def), metadata: { resourceVersion: current.resourceVersion, annotations: { 'k8s.io/initial-events-end': 'true' } } },
            }) + '\n',
          );
        }
      } else {
        const from = Number(rvParam);
        if (!Number.isFinite(from)) throw badRequest(`invalid resource version "${rvParam}"`);
        try {
          for (const e of this.store.eventsSince(from)) send(e);
          lastRv = Math.max(lastRv, from);
        } catch (err) {
          const s = toStatusError(err);
          res.end(JSON.stringify({ type: 'ERROR', object: s.status }) + '\n');
          return;
        }
      }
      for (const e of queued.splice(0)) send(e);
      live = true;
      await done;
      if (!res.destroyed) res.end();
    } finally {
      unsubscribe();
    }
  }

  private async serveLogs(res: ServerResponse, namespace: string, name: string, q: URLSearchParams): Promise<void> {
    const pod = this.store.get(this.def('pods'), namespace, name);
    const container = this.containerOf(pod, q.get('container'));
    const state = this.logState(namespace, pod, container);
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const phase = ((pod['status'] as Record<string, unknown>)?.['phase'] as string | undefined) ?? 'Running';
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
    const follow = q.get('follow') === 'true';
    const tailLines = q.has('tailLines') ? Number(q.get('tailLines')) : undefined;
    const limitBytes = q.has('limitBytes') ? Number(q.get('limitBytes')) : undefined;
    await writeLog(res, state, { namespace, pod: name, container, follow, signal: abort.signal }, {
      follow,
      completed: phase === 'Succeeded' || phase === 'Failed',
      signal: abort.signal,
      ...(tailLines !== undefined ? { tailLines } : {}),
      ...(limitBytes !== undefined ? { limitBytes } : {}),
    });
    if (!res.destroyed) res.end();
  }

  // ---- streaming upgrades -------------------------------------------------------------

  private async handleUpgrade(req: IncomingMessage, socket: TLSSocket, head: Buffer): Promise<void> {
    const rec = this.record(req);
    socket.on('error', () => undefined);
    try {
      const { user, info } = this.identify(req, rec);
      const kind = info.subresource;
      if (!info.resourceRequest || info.resource !== 'pods' || !info.name || (kind !== 'exec' && kind !== 'attach' && kind !== 'portforward')) {
        throw badRequest(`upgrade is only supported for pods/exec, pods/attach and pods/portforward, not ${info.path}`);
      }
      this.authorize(user, info);
      // A WebSocket upgrade is a GET; kube (>= 1.35, and we always) also requires create.
      if (info.verb === 'get') this.authorize(user, info, 'create');
      const namespace = info.namespace as string;
      const pod = this.store.get(this.def('pods'), namespace, info.name);
      const q = rec.query;
      const phase = ((pod['status'] as Record<string, unknown>)?.['phase'] as string | undefined) ?? 'Running';
      if (req.headers['transfer-encoding']) {
        // Node hands us the socket right after the headers; kube-apiserver hijacks it without
        // reading a body. Either way the chunked terminator would land in the stream.
        throw badRequest('an upgrade request must not have a body (got Transfer-Encoding: ' + req.headers['transfer-encoding'] + '); send Content-Length: 0');
      }
      const upgrade = (req.headers.upgrade ?? '').toLowerCase();
      const websocket = upgrade === 'websocket';
      if (!websocket && upgrade !== 'spdy/3.1') throw badRequest(`unsupported upgrade "${req.headers.upgrade ?? ''}"`);
      rec.upgrade = websocket ? 'websocket' : 'spdy';

      if (kind === 'portforward') {
        const ctx: PortForwardContext = {
          namespace,
          pod: info.name,
          uid: pod.metadata.uid ?? '',
          resolve: (port) => this.pods.get(`${namespace}/${info.name as string}`)?.ports.get(port),
        };
        if (websocket) {
          const offered = this.offeredWs(req);
          const tunnel = negotiate(offered, PORT_FORWARD_TUNNEL_PROTOCOLS);
          if (tunnel) {
            const ws = await this.acceptWs(req, socket, head, tunnel, rec);
            const session = new SpdySession(createWebSocketStream(ws), { server: true });
            serveSpdyPortForward(session, ctx);
            return;
          }
          const legacy = negotiate(offered, PORT_FORWARD_WS_PROTOCOLS);
          if (!legacy && offered.length > 0) throw badRequest(`none of the offered subprotocols is supported: ${offered.join(', ')}`);
          const ports = q
            .getAll('ports')
            .flatMap((p) => p.split(','))
            .filter((p) => p !== '')
            .map(Number);
          if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw badRequest('query parameter "port" is required');
          const ws = await this.acceptWs(req, socket, head, legacy ?? '', rec);
          serveWebSocketPortForward(ws, legacy ?? '', ports, ctx);
          return;
        }
        const offered = this.offeredSpdy(req);
        if (!offered.includes(PORT_FORWARD_SPDY_PROTOCOL)) throw badRequest(`unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server supports [${PORT_FORWARD_SPDY_PROTOCOL}]`);
        const session = this.acceptSpdy(socket, head, PORT_FORWARD_SPDY_PROTOCOL, rec);
        serveSpdyPortForward(session, ctx);
        return;
      }

      // exec / attach
      if (phase === 'Succeeded' || phase === 'Failed') throw badRequest(`cannot ${kind} into a container in a completed pod; current phase is ${phase}`);
      const container = this.containerOf(pod, q.get('container'));
      const sel: StreamSelection = {
        stdin: q.get('stdin') === 'true' || q.get('stdin') === '1',
        stdout: q.get('stdout') === 'true' || q.get('stdout') === '1',
        stderr: q.get('stderr') === 'true' || q.get('stderr') === '1',
        tty: q.get('tty') === 'true' || q.get('tty') === '1',
      };
      if (!sel.stdin && !sel.stdout && !sel.stderr) throw badRequest('you must specify at least 1 of stdin, stdout, stderr');
      const command = q.getAll('command');
      if (kind === 'exec' && command.length === 0) throw badRequest('you must specify at least one command for the container');
      const ctx: ExecContext = { namespace, pod: info.name, container, command: kind === 'exec' ? command : [], kind, user };
      const run = (io: ExecIo) => this.runInContainer(ctx, io);
      if (websocket) {
        const offered = this.offeredWs(req);
        const protocol = negotiate(offered, REMOTE_COMMAND_WS_PROTOCOLS);
        if (!protocol) throw badRequest(`unable to upgrade: none of the requested subprotocols [${offered.join(' ')}] is supported; supported: [${REMOTE_COMMAND_WS_PROTOCOLS.join(' ')}]`);
        const ws = await this.acceptWs(req, socket, head, protocol, rec);
        await serveWebSocketRemoteCommand(ws, protocol, sel, run);
        return;
      }
      const protocol = negotiate(this.offeredSpdy(req), REMOTE_COMMAND_SPDY_PROTOCOLS);
      if (!protocol) throw badRequest(`unable to upgrade: unable to negotiate protocol: client supports [${this.offeredSpdy(req).join(' ')}], server supports [${REMOTE_COMMAND_SPDY_PROTOCOLS.join(' ')}]`);
      const session = this.acceptSpdy(socket, head, protocol, rec);
      await serveSpdyRemoteCommand(session, protocol, sel, run);
    } catch (err) {
      if (rec.status === 101) {
        socket.destroy();
        return;
      }
      rec.status = rawError(socket, err);
    }
  }

  private async runInContainer(ctx: ExecContext, io: ExecIo): Promise<ExecOutcome> {
    try {
      if (ctx.kind === 'attach') {
        const b = this.pods.get(`${ctx.namespace}/${ctx.pod}`);
        if (b?.attach) return { exitCode: await b.attach([], io, ctx) };
        if (b?.attachOutput) await new Promise<void>((resolve) => io.stdout.write(b.attachOutput as string, () => resolve()));
        return { exitCode: await new FakeShell(this.commands).run(['cat'], io, ctx) };
      }
      return { exitCode: await new FakeShell(this.commands).run(ctx.command, io, ctx) };
    } catch (err) {
      if (err instanceof ExecStartError) return { failure: err.message };
      return { failure: (err as Error).message };
    }
  }

  private offeredWs(req: IncomingMessage): string[] {
    return (req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
  }

  private offeredSpdy(req: IncomingMessage): string[] {
    return (req.headersDistinct['x-stream-protocol-version'] ?? []).flatMap((v) => v.split(',')).map((p) => p.trim()).filter((p) => p !== '');
  }

  private acceptWs(req: IncomingMessage, socket: TLSSocket, head: Buffer, protocol: string, rec: RecordedRequest): Promise<WebSocket> {
    this.wsProtocol.set(req, protocol);
    rec.protocol = protocol;
    // ws validates offered subprotocols as RFC 7230 tokens, which `SPDY/3.1+portforward.k8s.io`
    // is not ('/'): hand it a token and answer with the negotiated name ourselves.
    if (protocol !== '') req.headers['sec-websocket-protocol'] = 'keyway-negotiated';
    return new Promise((resolve) => {
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        rec.status = 101;
        ws.on('error', () => undefined);
        resolve(ws);
      });
    });
  }

  private acceptSpdy(socket: TLSSocket, head: Buffer, protocol: string, rec: RecordedRequest): SpdySession {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`);
    rec.status = 101;
    rec.protocol = protocol;
    if (head.length > 0) socket.unshift(head);
    return new SpdySession(socket, { server: true });
  }
}

export async function startTestKubeApiServer(opts: StartTestKubeApiServerOptions = {}): Promise<TestKubeApiServer> {
  const server = new TestKubeApiServerImpl(opts);
  await server.start();
  return server;
}

export { AUTHENTICATED };
