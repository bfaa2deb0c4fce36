import net from 'node:net';
import tls from 'node:tls';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applicationDataScanner, createRouter } from './router.js';

const record = (type: number, length: number) => {
  const r = Buffer.alloc(5 + length, 0x17); // bodies full of 0x17: a body byte must never count as a header
  r[0] = type;
  r[1] = 3;
  r[2] = 3;
  r.writeUInt16BE(length, 3);
  return r;
};

describe('applicationDataScanner (the auth relay: has the client finished its TLS handshake?)', () => {
  it('fires at the first application_data record, not at handshake or change_cipher_spec records', () => {
    let fired = 0;
    const scan = applicationDataScanner(() => fired++);
    expect(scan(Buffer.concat([record(22, 300), record(20, 1)]))).toBe(false);
    expect(fired).toBe(0);
    expect(scan(record(23, 40))).toBe(true);
    expect(fired).toBe(1);
    scan(record(23, 40));
    expect(fired).toBe(1);
  });

  it('finds the record whatever the chunk boundaries (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ type: fc.constantFrom(20, 21, 22), length: fc.nat(2_000) }), { maxLength: 6 }),
        fc.nat(2_000),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 40 }),
        (before, appLength, cuts) => {
          const handshake = Buffer.concat(before.map((r) => record(r.type, r.length)));
          const stream = Buffer.concat([handshake, record(23, appLength)]);
          let fired = 0;
          let firedAt = -1;
          const scan = applicationDataScanner(() => fired++);
          let offset = 0;
          for (let i = 0; offset < stream.length; i++) {
            const size = cuts[i % cuts.length] as number;
            const chunk = stream.subarray(offset, offset + size);
            offset += chunk.length;
            if (scan(chunk) && firedAt < 0) firedAt = offset;
          }
          expect(fired).toBe(1);
          // Not before the application_data record's header was complete.
          expect(firedAt).toBeGreaterThanOrEqual(handshake.length + 5);
        },
      ),
      { seed: 10, numRuns: 300 },
    );
  });
});

describe('the auth relay', () => {
  it("sends its header, made for the client's own connection, ahead of the client's first bytes", async () => {
    const received: Buffer[] = [];
    let enough!: () => void;
    const gotBytes = new Promise<void>((r) => (enough = r));
    const auth = net.createServer((s) =>
      s.on('data', (d: Buffer) => {
        received.push(d);
        if (Buffer.concat(received).length > 100) enough();
      }),
    );
    await new Promise<void>((r) => auth.listen(0, '127.0.0.1', r));
    const router = createRouter({
      classify: () => 'auth',
      authAddr: () => ({ host: '127.0.0.1', port: (auth.address() as net.AddressInfo).port }),
      servers: {} as never,
      relayHeader: (client) => Buffer.from(`HDR ${client.remoteAddress} ${client.remotePort}\n`),
    });
    await new Promise<void>((r) => router.listen(0, '127.0.0.1', r));
    // From another loopback address than the listener's, as a remote client would be.
    const client = net.connect({ host: '127.0.0.1', port: (router.address() as net.AddressInfo).port, localAddress: '127.0.0.2' });
    const tlsClient = tls.connect({ socket: client, servername: 'auth.keyway.cluster.local', rejectUnauthorized: false });
    tlsClient.on('error', () => undefined);
    try {
      await gotBytes;
      const all = Buffer.concat(received);
      const line = all.subarray(0, all.indexOf(0x0a) + 1).toString();
      expect(line).toBe(`HDR 127.0.0.2 ${client.localPort}\n`);
      expect(all[line.length]).toBe(0x16); // then the client's ClientHello, untouched
    } finally {
      tlsClient.destroy();
      router.close();
      auth.close();
    }
  });
});
