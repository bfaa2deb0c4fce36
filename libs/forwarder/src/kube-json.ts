import { Agent, request, type Dispatcher } from 'undici';
import { ConnectionProblemError } from '@keyway/errors';
import type { ClusterCredentials } from './kubeconfig.js';

export interface KubeJsonAnswer {
  status: number;
  /** The answer's JSON object; empty for an answer that is not JSON (a proxy's error page). */
  json: Record<string, unknown>;
}

/**
 * JSON requests to a Kubernetes API server with a kubeconfig's credentials (the agent's Secret
 * store, `keyway-kube-agent configure`). Small on purpose: a few calls, no watch. There is no
 * Kubernetes client library among the dependencies, and these few calls do not justify one.
 */
export function kubeJsonClient(
  creds: ClusterCredentials,
  o: { where: string; connectTimeoutMs?: number; timeoutMs?: number },
): (method: Dispatcher.HttpMethod, path: string, body?: unknown) => Promise<KubeJsonAnswer> {
  const dispatcher = new Agent({
    connect: {
      ...(creds.caPem ? { ca: creds.caPem } : {}),
      ...(creds.clientCertPem ? { cert: creds.clientCertPem } : {}),
      ...(creds.clientKeyPem ? { key: creds.clientKeyPem } : {}),
      ...(creds.tlsServerName ? { servername: creds.tlsServerName } : {}),
      rejectUnauthorized: !creds.insecureSkipTlsVerify,
    },
    ...(o.connectTimeoutMs ? { connectTimeout: o.connectTimeoutMs } : {}),
  });
  const base = creds.server.pathname.replace(/\/$/, '');
  return async (method, path, body) => {
    const token = creds.token?.();
    let res: Dispatcher.ResponseData;
    try {
      res = await request(new URL(base + path, creds.server.origin), {
        method,
        dispatcher,
        ...(o.timeoutMs ? { headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs } : {}),
        headers: {
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      const e = err as Error & { code?: string };
      throw new ConnectionProblemError(`cannot reach ${o.where}: ${e.code ?? ''}${e.code ? ' ' : ''}${e.message}`, { server: creds.server.origin }, { cause: err });
    }
    const text = await res.body.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // A non-JSON answer: its status says enough.
    }
    return { status: res.statusCode, json };
  };
}
