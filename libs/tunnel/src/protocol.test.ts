import { describe, expect, it } from 'vitest';
import { endToEndHeaders } from './protocol.js';

describe('endToEndHeaders', () => {
  it('drops hop-by-hop, Connection-named, pseudo and x-keyway- headers, and what the caller drops', () => {
    expect(
      endToEndHeaders(
        {
          ':path': '/x',
          Accept: 'application/json',
          connection: 'keep-alive, X-Trace',
          'x-trace': '1',
          'keep-alive': 'timeout=5',
          'transfer-encoding': 'chunked',
          upgrade: 'websocket',
          host: 'example',
          'x-keyway-kube-user': 'mallory',
          authorization: 'Bearer t',
          'impersonate-user': 'root',
          'set-cookie': ['a=1', 'b=2'],
          missing: undefined,
        },
        (n) => n === 'authorization' || n.startsWith('impersonate-'),
      ),
    ).toEqual({ accept: 'application/json', 'set-cookie': ['a=1', 'b=2'] });
  });

  it('reads a Connection header given as a list', () => {
    expect(endToEndHeaders({ connection: ['close', 'x-a'], 'x-a': '1', 'x-b': '2' })).toEqual({ 'x-b': '2' });
  });
});
