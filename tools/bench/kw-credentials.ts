/**
 * `npm run bench -- kw-credentials`: kubectl runs `kw kube credentials` on every call, so
 * its start-up is the user's latency. Measures, in one run, the median wall time of that
 * command served from the certificate cache and of `node -e 0`, and their ratio.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '@keyway/pki';
import type { Benchmark } from './main.js';

const kwBin = fileURLToPath(new URL('../../apps/kw/bin/kw.mjs', import.meta.url));

export const benchmark: Benchmark = {
  description: 'wall time of `kw kube credentials` from the cache vs `node -e 0`',
  async run(args) {
    const runs = args.includes('--quick') ? 15 : 41;
    const home = mkdtempSync(join(tmpdir(), 'kw-bench-home-'));
    const proxy = '127.0.0.1:3080';
    const profile = join(home, 'profiles', proxy.replace(/[^A-Za-z0-9._-]/g, '_'));
    mkdirSync(join(profile, 'kube'), { recursive: true });
    writeFileSync(join(profile, 'key.pem'), generateKeyPair().privateKeyPem, { mode: 0o600 });
    // Any certificate text will do: the cached path does not parse it.
    writeFileSync(join(profile, 'kube', 'bench.json'), JSON.stringify({ certPem: '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n', expires: Date.now() + 3600_000 }), { mode: 0o600 });
    const env = { ...process.env, KW_HOME: home };
    const time = (cmd: string, argv: string[]) => {
      const samples: number[] = [];
      for (let i = 0; i < runs; i++) {
        const start = process.hrtime.bigint();
        const r = spawnSync(cmd, argv, { env, encoding: 'utf8' });
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${r.stderr}`);
        samples.push(ms);
      }
      samples.sort((a, b) => a - b);
      return samples[Math.floor(samples.length / 2)] as number;
    };
    time(process.execPath, ['-e', '0']); // warm the file cache
    const baseline = time(process.execPath, ['-e', '0']);
    const kw = time(process.execPath, [kwBin, 'kube', 'credentials', '--kube-cluster=bench', '--keyway-cluster=acme', `--proxy=${proxy}`]);
    const ratio = kw / baseline;
    process.stdout.write(
      [
        `kw-credentials: median of ${runs} runs each, node ${process.version}`,
        '',
        `  node -e 0                         ${baseline.toFixed(1).padStart(7)} ms`,
        `  kw kube credentials (cached)      ${kw.toFixed(1).padStart(7)} ms`,
        `  ratio                             ${ratio.toFixed(2).padStart(7)}x   target <= 1.50x   ${ratio <= 1.5 ? 'PASS' : 'FAIL'}`,
        '',
      ].join('\n'),
    );
    return ratio <= 1.5;
  },
};
