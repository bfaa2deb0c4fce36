import net from 'node:net';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

/** Two connected TCP sockets on loopback: [the dialling side, the accepted side]. */
export async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = await accepted;
  server.close();
  return [client, peer];
}

/** Everything a stream yields until it ends, as UTF-8 text. */
export function readAll(r: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    // A stream can fail before the caller gets here (its error event is then long gone).
    if (r.destroyed && !r.readableEnded) return reject(r.errored ?? new Error('stream closed before its end'));
    let s = '';
    r.on('data', (d: Buffer) => (s += d.toString()));
    r.on('end', () => resolve(s));
    r.on('error', reject);
  });
}
