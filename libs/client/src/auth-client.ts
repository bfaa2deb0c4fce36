import { credentials, Metadata, type CallOptions, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { AccessDeniedError, ConnectionProblemError, fromGrpcError, type KeywayError } from '@keyway/errors';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { decodeIdentity, spkiPin } from '@keyway/pki';
import { AuthServiceClient, type Resource, type WatchEvent } from '@keyway/proto';
import type { IdentityFile } from './identity-file.js';
import { THE_AUTH_SERVICE, callFailure } from './unreachable.js';

/**
 * The name every auth server certificate carries, so clients verify the server by its role
 * rather than by whichever address (IP, load balancer, proxy relay) they dialled.
 */
export const AUTH_SERVER_NAME = 'auth.keyway.cluster.local';

/**
 * The largest gRPC message either end sends or accepts, the same on the auth server and
 * every client: a message one end sends must never be one the other refuses (a watch whose
 * peer refuses a message reconnects in a loop). Resources and heartbeats are bounded well
 * below it when they are written (see MAX_RESOURCE_BYTES in @keyway/resources).
 */
export const GRPC_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface AuthClientOptions {
  /** host:port of the auth server. */
  address: string;
  /** Client identity for mTLS; without it only the unauthenticated calls work. */
  identity?: IdentityFile;
  /** CA certificates that verify the server; defaults to the identity's CAs. */
  caPems?: string[];
  /** Per-call deadline. */
  timeoutMs?: number;
  /**
   * Skip server verification. Only for the bootstrap Ping of `trustOnPin`, whose answer
   * is checked against a CA pin the user got out of band.
   */
  insecureSkipVerify?: boolean;
  /** How failures name the server this reaches, e.g. "the Keyway proxy" (default: the auth service). */
  serverName?: string;
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

type RequestOf<M> = M extends (req: infer R, metadata: Metadata, options: Partial<CallOptions>, cb: infer _C) => ClientUnaryCall ? R : never;
type ResponseOf<M> = M extends (
  req: infer _R,
  metadata: Metadata,
  options: Partial<CallOptions>,
  cb: (error: ServiceError | null, response: infer S) => void,
) => ClientUnaryCall
  ? S
  : never;

type UnaryMethodNames = {
  [K in keyof AuthServiceClient]: AuthServiceClient[K] extends UnaryMethod<infer _A, infer _B> ? K : never;
}[keyof AuthServiceClient];

/** Promise-based AuthService client whose failures are typed Keyway errors. */
export class AuthClient {
  private readonly client: AuthServiceClient;
  private readonly timeoutMs: number;
  /** How failures name the server (THE_PROXY when the auth API is reached through a proxy). */
  readonly serverName: string;
  readonly address: string;

  constructor(options: AuthClientOptions) {
    this.address = options.address;
    const ca = options.caPems ?? options.identity?.caPems ?? [];
    const creds = credentials.createSsl(
      ca.length > 0 ? Buffer.from(ca.join('')) : null,
      options.identity ? Buffer.from(options.identity.privateKeyPem) : null,
      options.identity ? Buffer.from(options.identity.certPem) : null,
      options.insecureSkipVerify
        ? { rejectUnauthorized: false, checkServerIdentity: () => undefined }
        : { checkServerIdentity: checkAuthServer },
    );
    this.client = new AuthServiceClient(options.address, creds, {
      'grpc.ssl_target_name_override': AUTH_SERVER_NAME,
      'grpc.default_authority': AUTH_SERVER_NAME,
      'grpc.max_receive_message_length': GRPC_MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': GRPC_MAX_MESSAGE_BYTES,
    });
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.serverName = options.serverName ?? THE_AUTH_SERVICE;
  }

  call<K extends UnaryMethodNames>(
    method: K,
    request: RequestOf<AuthServiceClient[K]>,
  ): Promise<ResponseOf<AuthServiceClient[K]>> {
    const fn = this.client[method] as unknown as UnaryMethod<RequestOf<AuthServiceClient[K]>, ResponseOf<AuthServiceClient[K]>>;
    return new Promise((resolve, reject) => {
      fn.call(this.client, request, new Metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err) reject(callFailure(err, this.serverName, this.address, this.timeoutMs));
        else resolve(res);
      });
    });
  }

  /**
   * Every resource of a kind, page by page (one ListResources call per page, each of which
   * fits in a message whatever the resources' sizes). Refuses a server whose pages do not
   * move forward instead of looping.
   */
  async listAllResources(kind: string, withSecrets = false): Promise<Resource[]> {
    const all: Resource[] = [];
    let startKey = '';
    for (;;) {
      const page = await this.call('listResources', { kind, withSecrets, limit: 0, startKey });
      all.push(...page.resources);
      if (!page.nextKey) return all;
      if (page.nextKey <= startKey) throw new ConnectionProblemError(`${this.serverName} returned a list page that does not move forward (at "${page.nextKey}")`);
      startKey = page.nextKey;
    }
  }

  /**
   * Streams WatchEvents: a snapshot of the kinds, an "init" marker, then changes. `onEnd`
   * is called once, with the typed error when the stream failed.
   */
  watch(kinds: string[], onEvent: (event: WatchEvent) => void, onEnd: (err?: KeywayError) => void): { cancel(): void } {
    const stream = this.client.watchEvents({ kinds });
    let ended = false;
    const end = (err?: KeywayError) => {
      if (ended) return;
      ended = true;
      onEnd(err);
    };
    stream.on('data', onEvent);
    stream.on('error', (err) => end(fromGrpcError(err)));
    stream.on('end', () => end());
    return { cancel: () => stream.cancel() };
  }

  close(): void {
    this.client.close();
  }
}

/**
 * The server must be the auth server: its name, and the Auth role in its certificate. Any
 * host of the cluster holds a certificate from the same CA, so the name alone is not enough.
 */
function checkAuthServer(hostname: string, cert: PeerCertificate): Error | undefined {
  const nameError = checkServerIdentity(hostname, cert);
  if (nameError) return nameError;
  try {
    const identity = decodeIdentity(cert.raw);
    if (identity.systemRoles.includes('Auth')) return undefined;
    return new Error(`the server presents a certificate of a ${identity.systemRoles.join(',') || 'user'}, not of the auth service`);
  } catch (err) {
    return err as Error;
  }
}

/**
 * Learns the cluster's CA certificates from an auth server that is not trusted yet, and
 * accepts them only if the host CA matches the pin (`sha256:<hex>` of its public key, as
 * `kwctl status` prints it), the way Teleport agents join with --ca-pin.
 */
export async function trustOnPin(address: string, pin: string, serverName?: string): Promise<string[]> {
  const named = serverName ? { serverName } : {};
  const bootstrap = new AuthClient({ address, insecureSkipVerify: true, ...named });
  try {
    const ping = await bootstrap.call('ping', {});
    const host = ping.certAuthorities.find((ca) => ca.type === 'host');
    if (!host || spkiPin(host.certPem) !== pin.trim().toLowerCase()) {
      throw new AccessDeniedError(
        `the server at ${address} does not present the expected CA (pin ${pin}); check the address and the pin`,
        { address },
      );
    }
    // Only the pinned CA is trusted from the unverified answer; the rest is asked again over
    // a connection verified with it, so a server cannot slip in a CA of its own.
    const verified = new AuthClient({ address, caPems: [host.certPem], ...named });
    try {
      const trusted = await verified.call('ping', {});
      if (!trusted.certAuthorities.some((ca) => ca.type === 'host' && spkiPin(ca.certPem) === spkiPin(host.certPem))) {
        throw new AccessDeniedError(`the auth server at ${address} changed its host CA during the handshake`, { address });
      }
      return trusted.certAuthorities.map((ca) => ca.certPem);
    } finally {
      verified.close();
    }
  } finally {
    bootstrap.close();
  }
}
