/**
 * `npm run bench -- <name> [options]`: runs one benchmark, after `npm run build`, so the
 * processes it starts run the current code as production runs it (bundled). Each benchmark
 * prints its own table and PASS/FAIL lines; the exit code is 0 when all its targets pass,
 * 1 otherwise, and 2 for an unknown name.
 */
import process from 'node:process';

export interface Benchmark {
  description: string;
  /** Returns whether every target passed. */
  run(args: string[]): Promise<boolean>;
}

// Loaded lazily so one benchmark's imports do not weigh on another's numbers.
const benchmarks: Record<string, { description: string; load: () => Promise<{ benchmark: Benchmark }> }> = {
  'cert-issue': {
    description: 'user certificate issuance vs raw ECDSA P-256 signing, one core',
    load: () => import('./cert-issue.js'),
  },
  audit: {
    description: 'audit events/s through Redis + worker into Postgres vs a plain insert; p99 delay (--quick)',
    load: () => import('./audit.js'),
  },
  'kw-credentials': {
    description: 'wall time of `kw kube credentials` from the cache vs `node -e 0`',
    load: () => import('./kw-credentials.js'),
  },
  proxy: {
    description: 'direct vs through proxy + agent: latency, throughput, memory (--quick: short; --kube-listener: dedicated kube port)',
    load: () => import('./proxy.js'),
  },
};

function usage(): void {
  process.stderr.write('usage: npm run bench -- <name> [options]\n\nbenchmarks:\n');
  for (const [name, b] of Object.entries(benchmarks)) process.stderr.write(`  ${name.padEnd(14)} ${b.description}\n`);
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const entry = name ? benchmarks[name] : undefined;
  if (!entry) {
    if (name && name !== '--help' && name !== '-h') process.stderr.write(`unknown benchmark "${name}"\n\n`);
    usage();
    return 2;
  }
  const { benchmark } = await entry.load();
  return (await benchmark.run(args)) ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
