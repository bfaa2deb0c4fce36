import net from 'node:net';

export interface TcpBalancer {
  address: string;
  /** Connections handed to each backend so far. */
  counts: Map<string, number>;
  close(): Promise<void>;
}

/**
 * A round-robin TCP load balancer on loopback, like the one in front of a proxy pool: each
 * connection goes to the next backend; a backend that refuses is skipped for that connection,
 * which then tries each of the others once (as haproxy's `option redispatch` does).
 */
export function startTcpBalancer(backends: string[], opts: { port?: number } = {}): Promise<TcpBalancer> {
  let next = 0;
  const counts = new Map<string, number>(backends.map((b) => [b, 0]));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    client.pause();
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    // Its own order, from the round-robin position: with a shared cursor, connections made
    // meanwhile could send its retry to the same dead backend.
    const first = next++;
    const tryBackend = (attempt: number) => {
      if (attempt >= backends.length) return client.destroy();
      const target = backends[(first + attempt) % backends.length] as string;
      const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
      const upstream = net.connect({ host, port });
      upstream.once('error', () => tryBackend(attempt + 1));
      upstream.once('connect', () => {
        counts.set(target, (counts.get(target) ?? 0) + 1);
        upstream.removeAllListeners('error');
        upstream.on('error', () => client.destroy());
        sockets.add(upstream);
        upstream.on('close', () => {
          sockets.delete(upstream);
          client.destroy();
        });
        client.on('close', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    tryBackend(0);
  });
  return new Promise((resolve) => {
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        address: `127.0.0.1:${port}`,
        counts,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
