import net from 'node:net';
import { ConnectionProblemError } from '@keyway/errors';

/** tsh's: a proxy named without a port is on the web port, 3080, or on 443 where it listens there. */
export const WEB_PORTS = [3080, 443] as const;
const PROBE_TIMEOUT_MS = 3_000;

/**
 * `--proxy=host` as tsh reads it: host:3080 when something listens there, else host:443 (a
 * proxy behind a load balancer on the HTTPS port). A port given is kept as it is.
 */
export async function resolveProxyAddress(proxy: string, probe: (host: string, port: number) => Promise<boolean> = canConnect): Promise<string> {
  if (/^\[[^\]]+\]:\d+$/.test(proxy) || /^[^:[\]]+:\d+$/.test(proxy)) return proxy;
  const host = proxy.replace(/^\[|\]$/g, '');
  const shown = host.includes(':') ? `[${host}]` : host;
  for (const port of WEB_PORTS) if (await probe(host, port)) return `${shown}:${port}`;
  throw new ConnectionProblemError(`cannot reach the Keyway proxy at ${shown} on port ${WEB_PORTS.join(' or ')}; give its port (--proxy=${shown}:PORT)`);
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
