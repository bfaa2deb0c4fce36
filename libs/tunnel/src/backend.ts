import type { Duplex, Readable } from 'node:stream';

export type Headers = Record<string, string | string[]>;

/** One Kubernetes request after authorization: where it goes and as whom. */
export interface KubeRequestHead {
  method: string;
  /** Normalized path and query, exactly what was authorized. */
  path: string;
  /** End-to-end headers from the client, without credentials or impersonation headers. */
  headers: Headers;
  cluster: string;
  /** The Kubernetes user and groups to impersonate. */
  user: string;
  groups: string[];
  /**
   * The Keyway user on whose behalf the request is made: what upstream pools share fairly by
   * (many Keyway users may map to one Kubernetes user). Empty from older proxies.
   */
  requester?: string;
  /** The Upgrade protocol (websocket, SPDY/3.1) for exec, attach and port-forward. */
  upgrade?: string;
}

export interface KubeResponseHead {
  status: number;
  headers: Headers;
}

/**
 * Something that can carry a request to a cluster's API server: an agent at the far end of
 * a tunnel, or the proxy's own forwarder when it serves a cluster itself. Bodies stream
 * both ways; nothing is buffered whole.
 */
export interface KubeResponse {
  head: KubeResponseHead;
  body: Readable;
  /**
   * The whole body, when it had already arrived with the head (most responses are small
   * and come in one read), taken out of `body`; otherwise undefined and `body` untouched.
   * Lets the caller answer in one write instead of piping. Call it before touching `body`,
   * which a backend may make only on demand.
   */
  takeWhole?: () => Buffer | undefined;
}

export interface KubeBackend {
  request(head: KubeRequestHead, body: Readable | null): Promise<KubeResponse>;
  /**
   * Opens an upgraded connection. With status 101, `stream` carries the raw bytes both
   * ways (clientHead is what the client sent after its request head); otherwise it is the
   * response body.
   */
  upgrade(head: KubeRequestHead, clientHead: Buffer): Promise<{ head: KubeResponseHead; stream: Duplex }>;
}
