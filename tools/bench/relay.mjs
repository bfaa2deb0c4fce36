// Helpers for the proxy benchmark's floor measurement: what two extra processes on the request
// path cost on this machine before any TLS, HTTP or Keyway logic.
// Usage: node relay.mjs TARGET_PORT (a bare TCP relay) or node relay.mjs echo (the far end);
// prints the port it listens on.
import net from 'node:net';

const mode = process.argv[2];
const server = net.createServer({ noDelay: true }, (client) => {
  if (mode === 'echo') {
    client.on('data', (d) => client.write(d));
    client.on('error', () => client.destroy());
    return;
  }
  const upstream = net.connect({ port: Number(mode), host: '127.0.0.1', noDelay: true });
  client.pipe(upstream);
  upstream.pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
