import {
  Server,
  experimental,
  type ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedHandleCall,
} from '@grpc/grpc-js';
import { AUTH_SERVER_NAME, GRPC_MAX_MESSAGE_BYTES } from '@keyway/client';
import { BadParameterError, KeywayError, toGrpcError } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import {
  AuthServiceService,
  type AuthServiceServer,
  type Certificates,
  type Resource,
  type SessionRecording,
  type WatchEvent,
  type WatchEventsRequest,
} from '@keyway/proto';
import type { SessionRecordingRecord, StoredResource } from '@keyway/store';
import type { AuthApi, CertificatesResult } from './auth-api.js';
import { callerFromCertificate, type Caller, type CallerCas } from './caller.js';
import type { Change } from './change-feed.js';
import { listenWithRelayHeaders, type RelayListener } from './relay-listener.js';
import { checkRequestStrings } from './request-check.js';

export interface GrpcServerOptions {
  api: AuthApi;
  cas: CallerCas & { userCaPem: string; hostCaPem: string };
  /** The auth server's own host certificate and key (PEM). */
  certPem: string;
  keyPem: string;
  logger: Logger;
  /** Connection management (auth_service.grpc, durations in ms); defaults below. */
  timeouts?: { keepalive_interval?: number | undefined; keepalive_timeout?: number | undefined; max_connection_idle?: number | undefined };
}

/**
 * Hands certificates to grpc-js and pushes replacements (CA rotation, server certificate
 * renewal) to every listener. Listeners are answered on the next tick: grpc-js registers
 * its watcher only after adding the listener, so a synchronous answer would be lost.
 */
class CertificateSource<T> implements experimental.CertificateProvider {
  private readonly listeners = new Set<(u: T | null) => void>();
  constructor(private value: T) {}

  update(value: T): void {
    this.value = value;
    for (const l of this.listeners) l(value);
  }
  private add(l: (u: T | null) => void): void {
    this.listeners.add(l);
    setImmediate(() => {
      if (this.listeners.has(l)) l(this.value);
    });
  }
  addCaCertificateListener(l: experimental.CaCertificateUpdateListener): void {
    this.add(l as (u: T | null) => void);
  }
  removeCaCertificateListener(l: experimental.CaCertificateUpdateListener): void {
    this.listeners.delete(l as (u: T | null) => void);
  }
  addIdentityCertificateListener(l: experimental.IdentityCertificateUpdateListener): void {
    this.add(l as (u: T | null) => void);
  }
  removeIdentityCertificateListener(l: experimental.IdentityCertificateUpdateListener): void {
    this.listeners.delete(l as (u: T | null) => void);
  }
}

/**
 * Requests a client certificate but lets the call through without one: login and join
 * come before a certificate exists. Each handler then decides what the caller may do.
 */
type Certificates_ = experimental.CaCertificateUpdate & experimental.IdentityCertificateUpdate;

function serverCredentials(o: GrpcServerOptions): { credentials: ServerCredentials; source: CertificateSource<Certificates_> } {
  // One source answers as both CA and identity provider: grpc-js 1.14 hands the two
  // providers to its constructor in swapped order, and a combined answer is right either way.
  const source = new CertificateSource<Certificates_>({
    caCertificate: Buffer.from(o.cas.userCaPem + o.cas.hostCaPem),
    certificate: Buffer.from(o.certPem),
    privateKey: Buffer.from(o.keyPem),
  });
  return { credentials: experimental.createCertificateProviderServerCredentials(source, source, false), source };
}

export interface ServedGrpc {
  server: Server;
  port: number;
  setServerCertificate(certPem: string, keyPem: string): void;
  /** Stops accepting connections and ends the calls in flight (forcefully after graceMs). */
  close(graceMs?: number): Promise<void>;
}

export async function serveGrpc(o: GrpcServerOptions, listenAddr: string): Promise<ServedGrpc> {
  const server = new Server({
    'grpc.max_receive_message_length': GRPC_MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': GRPC_MAX_MESSAGE_BYTES,
    // Anonymous callers (login, join) reach this port: a connection without calls is closed,
    // and dead peers are found by ping; the proxy's relay drops silent connections sooner.
    'grpc.keepalive_time_ms': o.timeouts?.keepalive_interval ?? 60_000,
    'grpc.keepalive_timeout_ms': o.timeouts?.keepalive_timeout ?? 20_000,
    'grpc.max_connection_idle_ms': o.timeouts?.max_connection_idle ?? 60_000,
  });
  // Calls arrive only once the listener below is bound.
  const clientAddress = (peer: string) => listener.clientAddress(peer);
  server.addService(tolerantDecoding(AuthServiceService), handlers(o, clientAddress) as unknown as Record<string, UntypedHandleCall>);
  const { credentials, source } = serverCredentials(o);
  // Connections come through our own listener, which reads a proxy relay's signed header
  // (the client's real address) before TLS starts; grpc-js gets them by injection.
  const injector = server.createConnectionInjector(credentials);
  const listener: RelayListener = await listenWithRelayHeaders({
    listenAddr,
    hostCas: () => [o.cas.hostCa],
    inject: (socket) => injector.injectConnection(socket),
    logger: o.logger,
  });
  return {
    server,
    port: listener.port,
    setServerCertificate: (certPem, keyPem) =>
      source.update({ caCertificate: Buffer.from(o.cas.userCaPem + o.cas.hostCaPem), certificate: Buffer.from(certPem), privateKey: Buffer.from(keyPem) }),
    close: async (graceMs = 5_000) => {
      const closed = listener.close();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs).unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      injector.destroy();
      await closed;
    },
  };
}

export { AUTH_SERVER_NAME };

type Handler<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;

function handlers(o: GrpcServerOptions, clientAddress: (peer: string) => string | undefined): AuthServiceServer {
  const { api } = o;

  /**
   * Wraps one RPC: identifies the caller, runs it, maps any failure in one place. Nothing a
   * handler does, synchronously or not, and nothing the encoding or grpc-js's callback does
   * may throw past this: a throw here would be an uncaught exception that ends the process.
   */
  function unary<Req, Res>(name: string, fn: (req: Req, caller: Caller, remoteIp: string | undefined) => Promise<Res> | Res): Handler<Req, Res> {
    return (call, callback) => {
      let answered = false;
      const answer = (err: unknown, res?: Res) => {
        if (answered) return;
        answered = true;
        try {
          if (err === null) callback(null, res);
          else callback(toGrpcError(err));
        } catch (thrown) {
          o.logger.error({ rpc: name, err: thrown }, 'answering the call failed');
          if (err !== null) return;
          try {
            callback(toGrpcError(thrown));
          } catch {
            // Nothing left to tell the caller; grpc-js ends the call when the client gives up.
          }
        }
      };
      let remoteIp: string | undefined;
      let caller: Caller;
      try {
        remoteIp = clientAddress(call.getPeer());
        caller = identify(call);
        checkDecoded(call.request);
        checkRequestStrings(call.request);
      } catch (err) {
        o.logger.warn({ rpc: name, ip: remoteIp, err: (err as Error).message }, 'call refused before it ran');
        answer(err);
        return;
      }
      Promise.resolve()
        .then(() => fn(call.request, caller, remoteIp))
        .then(
          (res) => answer(null, res),
          (err: unknown) => {
            if (err instanceof KeywayError) o.logger.debug({ rpc: name, kind: err.kind, msg: err.message }, 'call failed');
            else o.logger.error({ rpc: name, err }, 'call failed unexpectedly');
            answer(err);
          },
        )
        .catch((err: unknown) => o.logger.error({ rpc: name, err }, 'call wrapper failed'));
    };
  }

  function identify(call: { getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | undefined }): Caller {
    return callerFromCertificate(call.getAuthContext()?.sslPeerCertificate?.raw, o.cas);
  }

  return {
    ping: unary('Ping', () => api.ping()),
    createResources: unary('CreateResources', async (req, caller) => ({
      changes: await api.createResources(caller, req.resources, req.force),
    })),
    getResource: unary('GetResource', async (req, caller) => resourceMessage(await api.getResource(caller, req.kind, req.name, req.withSecrets))),
    listResources: unary('ListResources', async (req, caller) => {
      const page = await api.listResources(caller, req.kind, req.withSecrets, { limit: req.limit, startKey: req.startKey });
      return { resources: page.resources.map(resourceMessage), nextKey: page.nextKey };
    }),
    deleteResource: unary('DeleteResource', async (req, caller) => {
      await api.deleteResource(caller, req.kind, req.name);
      return {};
    }),
    createUser: unary('CreateUser', async (req, caller) =>
      tokenMessage(
        await api.createUser(caller, {
          name: req.name,
          roles: req.roles,
          traits: Object.fromEntries(Object.entries(req.traits).map(([k, v]) => [k, v.values])),
          tokenTtlMs: req.tokenTtlSeconds * 1000,
        }),
      ),
    ),
    resetUser: unary('ResetUser', async (req, caller) => tokenMessage(await api.resetUser(caller, req.name, req.tokenTtlSeconds * 1000))),
    getUserToken: unary('GetUserToken', async (req, _caller, remoteIp) => {
      const t = await api.describeUserToken(req.token, remoteIp);
      return {
        user: t.user,
        kind: t.kind,
        expires: t.expires.toISOString(),
        totpSecret: t.totpSecret,
        totpUri: t.totpUri,
        secondFactorRequired: t.secondFactorRequired,
      };
    }),
    completeUserToken: unary('CompleteUserToken', async (req, _caller, remoteIp) => ({
      user: await api.completeUserToken(req.token, req.password, req.totpCode, remoteIp),
    })),
    login: unary('Login', async (req, _caller, remoteIp) =>
      certificatesMessage(
        await api.login({
          user: req.user,
          password: req.password,
          totpCode: req.totpCode,
          publicKeyPem: req.publicKeyPem,
          ttlMs: req.ttlSeconds * 1000,
          kubernetesCluster: req.kubernetesCluster,
          ...(remoteIp ? { remoteIp } : {}),
        }),
      ),
    ),
    generateUserCerts: unary('GenerateUserCerts', async (req, caller) =>
      certificatesMessage(
        await api.generateUserCerts(caller, {
          publicKeyPem: req.publicKeyPem,
          ttlMs: req.ttlSeconds * 1000,
          kubernetesCluster: req.kubernetesCluster,
        }),
      ),
    ),
    signUserCerts: unary('SignUserCerts', async (req, caller) =>
      certificatesMessage(
        await api.signUserCerts(caller, {
          user: req.user,
          publicKeyPem: req.publicKeyPem,
          ttlMs: req.ttlSeconds * 1000,
          kubernetesCluster: req.kubernetesCluster,
        }),
      ),
    ),
    emitAuditEvents: unary('EmitAuditEvents', async (req, caller) => {
      await api.emitAuditEvents(caller, req.events);
      return {};
    }),
    searchEvents: unary('SearchEvents', async (req, caller) => {
      const date = (s: string) => (s ? new Date(s) : undefined);
      const events = await api.searchEvents(caller, {
        ...(req.from ? { from: date(req.from) } : {}),
        ...(req.to ? { to: date(req.to) } : {}),
        ...(req.event ? { event: req.event } : {}),
        ...(req.user ? { user: req.user } : {}),
        ...(req.cluster ? { cluster: req.cluster } : {}),
        ...(req.namespace ? { namespace: req.namespace } : {}),
        ...(req.limit ? { limit: req.limit } : {}),
        ...(req.beforeId ? { before: req.beforeId } : {}),
      });
      return { events: events.map((e) => ({ id: e.id, json: JSON.stringify(e.data), hash: e.hash })) };
    }),
    verifyAuditChain: unary('VerifyAuditChain', async (req, caller) => {
      const r = await api.verifyAuditChain(caller, req.since ? new Date(req.since) : undefined);
      return {
        checked: r.checked,
        ok: !r.broken,
        brokenId: r.broken?.id ?? '',
        brokenUid: r.broken?.uid ?? '',
        brokenEvent: r.broken?.event ?? '',
        reason: r.broken?.reason ?? '',
      };
    }),
    uploadSessionChunk: unary('UploadSessionChunk', async (req, caller) => {
      const s = req.session;
      if (!s) throw new BadParameterError('session is required');
      await api.uploadSessionChunk(
        caller,
        { ...s, started: new Date(s.started), ended: req.ended ? new Date(req.ended) : null },
        req.seq,
        req.events,
      );
      return {};
    }),
    listSessions: unary('ListSessions', async (req, caller) => ({ sessions: (await api.listSessions(caller, req.limit)).map(sessionMessage) })),
    getSessionEvents: unary('GetSessionEvents', async (req, caller) => {
      const r = await api.getSessionEvents(caller, req.sessionId, req.afterSeq, req.limit);
      return { session: sessionMessage(r.session), chunks: r.chunks.map((c) => ({ seq: c.seq, events: c.data })) };
    }),
    createSsoAuthRequest: unary('CreateSSOAuthRequest', async (req, caller) =>
      api.sso.createRequest(caller, {
        kind: req.kind,
        connectorName: req.connectorName,
        publicKeyPem: req.publicKeyPem,
        clientRedirectUrl: req.clientRedirectUrl,
        ttlMs: req.ttlSeconds * 1000,
        kubernetesCluster: req.kubernetesCluster,
        testConnectorJson: req.testConnectorJson,
        remoteIp: req.remoteIp,
      }),
    ),
    validateSsoCallback: unary('ValidateSSOCallback', async (req, caller) => api.sso.validateCallback(caller, { kind: req.kind, params: req.params, remoteIp: req.remoteIp })),
    scimRequest: unary('ScimRequest', async (req, caller, remoteIp) =>
      api.scim.handle(caller, { token: req.token, method: req.method, path: req.path, query: req.query, body: req.body, remoteIp: req.remoteIp || (remoteIp ?? '') }),
    ),
    listKubeClusters: unary('ListKubeClusters', async (_req, caller) => ({ clusters: await api.listKubeClustersForUser(caller) })),
    join: unary('Join', async (req, caller, remoteIp) => {
      const r = await api.join({
        caller,
        token: req.token,
        publicKeyPem: req.publicKeyPem,
        role: req.role,
        hostId: req.hostId,
        nodeName: req.nodeName,
        dnsNames: req.dnsNames,
        ipAddresses: req.ipAddresses,
        ...(remoteIp ? { remoteIp } : {}),
      });
      return { ...r, expires: r.expires.toISOString() };
    }),
    createToken: unary('CreateToken', async (req, caller) =>
      resourceMessage(await api.createToken(caller, { roles: req.roles, ttlMs: req.ttlSeconds * 1000, name: req.name, labels: req.labels })),
    ),
    createLock: unary('CreateLock', async (req, caller) =>
      resourceMessage(await api.createLock(caller, { user: req.user, role: req.role, message: req.message, ttlMs: req.ttlSeconds * 1000 })),
    ),
    renewHostCert: unary('RenewHostCert', async (req, caller) => {
      const r = await api.renewHostCert(caller, { publicKeyPem: req.publicKeyPem, dnsNames: req.dnsNames, ipAddresses: req.ipAddresses });
      return { ...r, expires: r.expires.toISOString() };
    }),
    heartbeat: unary('Heartbeat', async (req, caller) => {
      await api.heartbeat(caller, {
        kind: req.kind,
        hostId: req.hostId,
        hostname: req.hostname,
        addr: req.addr,
        version: req.version,
        ttlMs: req.ttlSeconds * 1000,
        kubeClusters: req.kubeClusters.map((k) => ({ name: k.name, labels: k.labels })),
      });
      return { proxyIds: await api.liveProxyIds() };
    }),
    watchEvents: (call: ServerWritableStream<WatchEventsRequest, WatchEvent>) => {
      let cancel: (() => void) | undefined;
      let live = false;
      let failed = false;
      const pending: Change[] = [];
      /**
       * Ends the stream with the error's status. `emit('error')` makes grpc-js send the status
       * and end the call; `destroy(err)` would tear the stream down without a status, leaving
       * the client waiting forever.
       */
      const fail = (err: unknown) => {
        if (failed) return;
        failed = true;
        cancel?.();
        if (err instanceof KeywayError) o.logger.debug({ rpc: 'WatchEvents', kind: err.kind, msg: err.message }, 'watch refused');
        else o.logger.error({ rpc: 'WatchEvents', err }, 'watch failed unexpectedly');
        try {
          if (!call.cancelled && !call.writableEnded) call.emit('error', toGrpcError(err));
        } catch (thrown) {
          o.logger.error({ err: thrown }, 'ending the watch failed');
          call.destroy();
        }
      };
      const send = (change: Change) => {
        if (failed || !call.writable) return;
        try {
          call.write({ type: change.type, resource: changeResource(change) });
        } catch (err) {
          fail(err);
        }
      };
      try {
        call.on('cancelled', () => cancel?.());
        call.on('close', () => cancel?.());
        const caller = identify(call);
        checkDecoded(call.request);
        checkRequestStrings(call.request);
        api
          .watch(caller, call.request.kinds, (change) => (live ? send(change) : pending.push(change)))
          .then(({ snapshot, cancel: c }) => {
            cancel = c;
            if (call.cancelled || failed) return c();
            for (const change of snapshot) send(change);
            if (!failed) call.write({ type: 'init', resource: undefined });
            for (const change of pending.splice(0)) send(change);
            live = true;
          })
          .catch(fail);
      } catch (err) {
        fail(err);
      }
    },
  };
}

const MALFORMED = Symbol('malformed request');

/**
 * The service definition with decoders that do not throw: grpc-js answers a decoder's throw
 * with INTERNAL, which would blame the server for the caller's bytes. A request that does not
 * decode is marked instead, and the call's wrapper answers it with INVALID_ARGUMENT.
 */
function tolerantDecoding<T extends Record<string, { requestDeserialize: (b: Buffer) => unknown }>>(service: T): T {
  return Object.fromEntries(
    Object.entries(service).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return method.requestDeserialize(bytes);
          } catch (err) {
            return { [MALFORMED]: err instanceof Error ? err.message : String(err) };
          }
        },
      },
    ]),
  ) as T;
}

function checkDecoded(request: unknown): void {
  if (typeof request === 'object' && request !== null && MALFORMED in request) {
    throw new BadParameterError(`the request is not a valid protobuf message: ${String((request as { [MALFORMED]: unknown })[MALFORMED]).slice(0, 200)}`);
  }
}

function sessionMessage(s: SessionRecordingRecord): SessionRecording {
  return { ...s, started: s.started.toISOString(), ended: s.ended?.toISOString() ?? '' };
}

function changeResource(change: Change): Resource {
  return { kind: change.kind, name: change.name, json: change.resource ? JSON.stringify(change.resource) : '', revision: change.revision ?? '' };
}

function resourceMessage(r: Pick<StoredResource, 'name' | 'resource' | 'revision'> & { kind: string }): Resource {
  return { kind: r.kind, name: r.name, json: JSON.stringify(r.resource), revision: r.revision };
}

function tokenMessage(t: { token: string; user: string; expires: Date; kind: string }) {
  return { token: t.token, user: t.user, expires: t.expires.toISOString(), kind: t.kind };
}

function certificatesMessage(c: CertificatesResult): Certificates {
  return { ...c, expires: c.expires.toISOString() };
}
