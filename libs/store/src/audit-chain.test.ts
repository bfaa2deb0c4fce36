import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GENESIS, chainHash, checkpointMac, keyStartMac, keyedLink, searchColumns } from './audit-chain.js';

const key = { id: 'ak-1', key: randomBytes(32) };
const other = { id: 'ak-1', key: randomBytes(32) };

describe('audit chain links', () => {
  it('a keyed link is HMAC-SHA256 over the number, the previous link and the exact text', () => {
    const data = '{"uid":"u1","event":"kube.request"}';
    expect(keyedLink(key.key, 7, GENESIS, data)).toBe(createHmac('sha256', key.key).update(`7\n${GENESIS}\n${data}`).digest('hex'));
    // Without the key, nothing an attacker can compute matches it.
    expect(keyedLink(key.key, 7, GENESIS, data)).not.toBe(chainHash(GENESIS, data));
    expect(keyedLink(key.key, 7, GENESIS, data)).not.toBe(keyedLink(other.key, 7, GENESIS, data));
  });

  it('binds every input: a changed number, link or byte of text gives another link', () => {
    fc.assert(
      fc.property(fc.nat({ max: 1e9 }), fc.string({ maxLength: 64 }), fc.string({ maxLength: 200 }), fc.string({ minLength: 1, maxLength: 4 }), (seq, prev, data, extra) => {
        const link = keyedLink(key.key, seq, prev, data);
        expect(keyedLink(key.key, seq + 1, prev, data)).not.toBe(link);
        expect(keyedLink(key.key, seq, prev + extra, data)).not.toBe(link);
        expect(keyedLink(key.key, seq, prev, data + extra)).not.toBe(link);
      }),
      { seed: 10, numRuns: 200 },
    );
  });

  it('the key-start record and checkpoints are bound to what they say and to the key', () => {
    expect(keyStartMac(key, 5, 'h')).not.toBe(keyStartMac(key, 6, 'h'));
    expect(keyStartMac(key, 5, 'h')).not.toBe(keyStartMac({ ...key, id: 'ak-2' }, 5, 'h'));
    expect(keyStartMac(key, 5, 'h')).not.toBe(keyStartMac(other, 5, 'h'));
    const t = '2026-11-21T10:00:00.000Z';
    expect(checkpointMac(key, 10, 'h', t)).not.toBe(checkpointMac(key, 9, 'h', t));
    expect(checkpointMac(key, 10, 'h', t)).not.toBe(checkpointMac(key, 10, 'g', t));
    expect(checkpointMac(key, 10, 'h', t)).not.toBe(checkpointMac(key, 10, 'h', '2026-11-21T10:00:01.000Z'));
    // A checkpoint MAC is never a key-start MAC or a link for the same numbers.
    expect(checkpointMac(key, 5, 'h', t)).not.toBe(keyStartMac(key, 5, 'h'));
  });

  it('derives the search columns from the event JSON, empty strings as none', () => {
    expect(searchColumns({ uid: 'u', time: 't', event: 'exec', code: 'T3002I', user: 'jimbo', cluster_name: '', kubernetes_cluster: 'prod', kubernetes_pod_namespace: 'dev' })).toEqual({
      uid: 'u',
      time: 't',
      event: 'exec',
      code: 'T3002I',
      cluster_name: null,
      username: 'jimbo',
      kubernetes_cluster: 'prod',
      namespace: 'dev',
    });
  });
});
