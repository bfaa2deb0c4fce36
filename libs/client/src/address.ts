import { BadParameterError } from '@keyway/errors';

/** host:port, [v6]:port or :port (any interface); the host is '' for the last. */
export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(addr);
  if (!m) throw new BadParameterError(`"${addr}" is not host:port`);
  return { host: m[1] as string, port: Number(m[2]) };
}
