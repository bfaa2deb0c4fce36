/**
 * `npm run chaos [-- --quick] [--json FILE]`: the production topology (auth on Postgres, two
 * proxies behind a TCP balancer, two agents, Redis) under a steady request load while its
 * parts fail one after another. For each fault: requests failed, how long after the fault new
 * requests still failed, 404s (the stand-in API server answers every pod, so any 404 is
 * Keyway's "cluster not found"), parts that exited by themselves, and how long the audit log
 * took to hold every answered request. At the end: events answered / stored / lost /
 * duplicated. Bounded: every wait has a deadline (about 15 minutes in all, 8 with --quick).
 * Exit code 1 when a target fails.
 */
import { writeFileSync } from 'node:fs';
import process from 'node:process';
import { formatTable } from '@keyway/cli';
import { countAudit, waitForAudit } from './audit-check.js';
import { Load, sleep, type Outcome } from './load.js';
import { Topology } from './topology.js';

interface Phase {
  name: string;
  /** Injects the fault and undoes it; resolves when the fault is over. */
  fault(t: Topology, o: Durations): Promise<void>;
  /** Kill faults: a surviving replica should carry every new request within 2 s. */
  kill?: boolean;
}

interface Durations {
  outage: number;
  settle: number;
}

const killAndRestart = (part: string, downMs: number): Phase['fault'] => async (t) => {
  await t.part(part).kill();
  await sleep(downMs);
  await t.part(part).start();
};

const PHASES: Phase[] = [
  { name: 'baseline', fault: async (_t, o) => sleep(o.settle) },
  {
    name: 'redis stopped',
    fault: async (t, o) => {
      await t.redis.stop();
      await sleep(o.outage);
      await t.redis.start();
    },
  },
  {
    name: 'redis restarted empty, postgres down',
    fault: async (t, o) => {
      await t.postgres.stop();
      await sleep(o.outage / 3);
      await t.redis.stop();
      await t.redis.start();
      await sleep(o.outage / 3);
      await t.postgres.start();
    },
  },
  {
    name: 'postgres stopped',
    fault: async (t, o) => {
      await t.postgres.stop();
      await sleep(o.outage);
      await t.postgres.start();
    },
  },
  { name: 'auth killed', fault: killAndRestart('auth', 3_000) },
  { name: 'proxy0 killed', fault: killAndRestart('proxy0', 3_000), kill: true },
  { name: 'proxy1 killed', fault: killAndRestart('proxy1', 3_000), kill: true },
  { name: 'agent0 killed', fault: killAndRestart('agent0', 3_000), kill: true },
  { name: 'agent1 killed', fault: killAndRestart('agent1', 3_000), kill: true },
];

interface PhaseResult {
  name: string;
  requests: number;
  failed: number;
  notFound: number;
  noAnswer: number;
  /** The latest start, after the fault began, of a request that failed (ms), or 0. */
  failingFor: number;
  /** From the fault's start to the end of the last failed request (ms), or 0. */
  recovery: number;
  auditCaughtUpMs: number | undefined;
  exited: string[];
  samples: string[];
}

function summarize(name: string, faultStart: number, outcomes: Outcome[]): Omit<PhaseResult, 'auditCaughtUpMs' | 'exited'> {
  const failed = outcomes.filter((o) => o.status !== 200);
  return {
    name,
    requests: outcomes.length,
    failed: failed.length,
    notFound: failed.filter((o) => o.status === 404).length,
    noAnswer: failed.filter((o) => o.status === 0).length,
    failingFor: Math.max(0, ...failed.map((o) => o.start - faultStart)),
    recovery: Math.max(0, ...failed.map((o) => o.end - faultStart)),
    samples: [...new Set(failed.map((o) => `${o.status} ${(o.error ?? o.body ?? '').replace(/\s+/g, ' ').slice(0, 120)}`))].slice(0, 3),
  };
}

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const jsonIndex = argv.indexOf('--json');
  const jsonFile = jsonIndex >= 0 ? argv[jsonIndex + 1] : undefined;
  const durations: Durations = quick ? { outage: 10_000, settle: 5_000 } : { outage: 30_000, settle: 10_000 };
  const log = (line: string) => process.stderr.write(`chaos: ${line}\n`);

  log('starting postgres, redis, auth, two proxies, a balancer, two agents');
  const t = await Topology.start(log);
  const load = new Load(t.balancer.address, t.user, { workers: 4, intervalMs: 100, timeoutMs: 5_000 });
  const results: PhaseResult[] = [];
  try {
    load.start();
    for (const phase of PHASES) {
      log(`${phase.name}…`);
      const from = load.outcomes.length;
      const faultStart = Date.now();
      await phase.fault(t, durations);
      await sleep(durations.settle);
      const audit = await waitForAudit(t.databaseUrl, load.run, load.outcomes, 60_000);
      // The phase's window runs until the next fault, so no request is left out of the table.
      const outcomes = load.outcomes.slice(from);
      const exited = [...t.parts.values()].filter((p) => !p.running()).map((p) => p.name);
      // A part that exited by itself is a finding; start it again so the next phase measures its own fault.
      for (const name of exited) await t.part(name).start();
      results.push({ ...summarize(phase.name, faultStart, outcomes), auditCaughtUpMs: audit.ms, exited });
    }
  } finally {
    await load.stop();
  }
  const final = await waitForAudit(t.databaseUrl, load.run, load.outcomes, 60_000);
  const total = final.count ?? (await countAudit(t.databaseUrl, load.run, load.outcomes));
  await t.close();

  const lines: string[] = [];
  lines.push(`chaos: ${quick ? 'quick' : 'full'} run, outages ${durations.outage / 1000} s, ${load.outcomes.length} requests (4 workers, one every 100 ms each; two keep their connection, two dial for each request as kubectl does), GET a pod through the balancer`);
  lines.push('');
  lines.push(
    formatTable(
      ['fault', 'requests', 'failed', '404', 'no answer', 'new requests failed for', 'recovered after', 'audit caught up', 'exited by itself'],
      results.map((r) => [
        r.name,
        String(r.requests),
        String(r.failed),
        String(r.notFound),
        String(r.noAnswer),
        r.failed ? `${(r.failingFor / 1000).toFixed(1)} s` : '-',
        r.failed ? `${(r.recovery / 1000).toFixed(1)} s` : '-',
        r.auditCaughtUpMs === undefined ? 'never (lost)' : `${(r.auditCaughtUpMs / 1000).toFixed(1)} s`,
        r.exited.join(', ') || '-',
      ]),
    ),
  );
  for (const r of results) for (const s of r.samples) lines.push(`  ${r.name}: ${s}`);
  lines.push('');
  lines.push(`audit: ${total.answered} answered, ${total.stored} stored, ${total.lost.length} lost, ${total.duplicated.length} duplicated`);
  if (total.lost.length) lines.push(`  lost (first 5): ${total.lost.slice(0, 5).join(', ')}`);
  const worstKill = Math.max(0, ...results.filter((r) => PHASES.find((p) => p.name === r.name)?.kill).map((r) => r.failingFor));
  const targets: [string, boolean][] = [
    ['0 events lost', total.lost.length === 0],
    ['0 events duplicated', total.duplicated.length === 0],
    ['no request answered 404 for a cluster that exists', results.every((r) => r.notFound === 0)],
    [`every new request succeeds within 2 s of a kill (worst ${(worstKill / 1000).toFixed(1)} s)`, worstKill <= 2_000],
    ['no part exited by itself', results.every((r) => r.exited.length === 0)],
  ];
  lines.push('');
  for (const [what, ok] of targets) lines.push(`  ${ok ? 'PASS' : 'FAIL'}  ${what}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ results, audit: { ...total, lost: total.lost.length, duplicated: total.duplicated.length } }, null, 2));
  return targets.every(([, ok]) => ok) ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
