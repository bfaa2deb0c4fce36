/**
 * `npm run bench -- audit`: events per second from a producer through the BullMQ queue on
 * Redis and the auth service's worker into Postgres (hash-chained, idempotent), against a
 * plain multi-row insert of the same events in the same run; and the p99 delay from emit
 * to stored. Uses the Postgres and Redis the tests use (KEYWAY_TEST_DATABASE_URL, KEYWAY_BENCH_REDIS_URL).
 */
import { randomBytes } from 'node:crypto';
import { Worker as Thread } from 'node:worker_threads';
import pg from 'pg';
import { AuditWorker } from '@keyway/audit';
import { silentLogger } from '@keyway/log';
import { Store, auditEventRow, useAuditKeys } from '@keyway/store';
import { adminDatabaseUrl } from '@keyway/testing';
import { benchEvent } from './audit-events.js';
import type { ProducerOptions } from './audit-producer.js';
import type { Benchmark } from './main.js';

export const benchmark: Benchmark = {
  description: 'audit events/s through Redis + worker into Postgres vs a plain insert; p99 emit-to-stored delay',
  async run(args) {
    const n = args.includes('--quick') ? 20_000 : 100_000;
    const name = `keyway_bench_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: adminDatabaseUrl() });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    const url = new URL(adminDatabaseUrl());
    url.pathname = `/${name}`;
    const store = await Store.open({ location: { type: 'postgres', connString: url.toString() } });
    const redisUrl = process.env['KEYWAY_BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
    const prefix = `kwbench-${randomBytes(4).toString('hex')}`;
    const logger = silentLogger();
    try {

      // Baseline: the same rows and indexed columns, plain multi-row inserts, no queue, no chain.
      const plain = Array.from({ length: n }, (_, i) => benchEvent(i, 'plain'));
      const start = process.hrtime.bigint();
      for (let i = 0; i < plain.length; i += 1000) {
        await store.db
          .insertInto('audit_events')
          .values(
            plain.slice(i, i + 1000).map(auditEventRow),
          )
          .execute();
      }
      const plainRate = n / (Number(process.hrtime.bigint() - start) / 1e9);

      // Keyed links, as the auth service writes them.
      useAuditKeys(store, [{ id: 'bench', key: randomBytes(32) }]);
      // The pipeline: producer thread → BullMQ → worker → chained COPY. Stored so far = newest
      // id − the id before the run: ids are handed out in chain order under the chain lock,
      // and max(id) is one index probe, where count(*) would scan the table every 20 ms and
      // take the database's CPU from the writer being measured.
      const worker = new AuditWorker({ redisUrl, store, logger, prefix });
      const run = async (count: number, rate: number, tag: string) => {
        const idBefore = Number((await store.db.selectFrom('audit_events').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst())?.id ?? 0);
        const emitted = new Float64Array(new SharedArrayBuffer(count * 8));
        const storedAt = new Float64Array(count);
        let stored = 0;
        const poll = setInterval(() => {
          void store.db
            .selectFrom('audit_events')
            .select((eb) => eb.fn.max('id').as('id'))
            .executeTakeFirst()
            .then((r) => {
              const now = Date.now();
              const total = Math.min(count, r?.id ? Number(r.id) - idBefore : 0);
              for (let i = stored; i < total; i++) storedAt[i] = now;
              stored = Math.max(stored, total);
            });
        }, 20);
        const t0 = Date.now();
        const producer = new Thread(new URL('./thread.mjs', import.meta.url), {
          workerData: { module: new URL('./audit-producer.ts', import.meta.url).href, n: count, rate, tag, redisUrl, prefix, emitted } satisfies ProducerOptions & { module: string },
        });
        const done = new Promise<{ dropped: number }>((resolve, reject) => {
          producer.once('message', resolve);
          producer.once('error', reject);
        });
        try {
          while (stored < count) {
            await new Promise((r) => setTimeout(r, 20));
            if (Date.now() - t0 > 600_000) throw new Error(`only ${stored} of ${count} events stored after 10 minutes`);
          }
          const { dropped } = await done;
          if (dropped > 0) throw new Error(`the producer dropped ${dropped} events`);
        } finally {
          clearInterval(poll);
          await producer.terminate();
        }
        // From the first emit (the thread's start-up is not the pipeline's) to the last stored.
        const seconds = ((storedAt[count - 1] as number) - (emitted[0] as number)) / 1000;
        const delays = Array.from(emitted, (e, i) => (storedAt[i] as number) - e).sort((a, b) => a - b);
        const quantile = (q: number) => (delays[Math.floor(delays.length * q)] ?? 0) / 1000;
        return { rate: count / seconds, seconds, p50: quantile(0.5), p99: quantile(0.99) };
      };
      // Throughput: everything emitted at once, drained as fast as the pipeline goes. The
      // delay in a burst measures the backlog (it grows with n), so the delay target is read
      // at a sustained 20,000 events/s offered.
      const burst = await run(n, 0, 'burst');
      const paced = await run(n / 2, 20_000, 'paced');
      await worker.close();
      const rate = burst.rate;
      const p99 = paced.p99;
      const seconds = burst.seconds;

      const ratio = rate / plainRate;
      const targets: [string, string, string, boolean][] = [
        ['events/s through the pipeline', '>= 20,000', rate.toFixed(0), rate >= 20_000],
        ['share of plain insert rate', '>= 50%', `${(ratio * 100).toFixed(1)}%`, ratio >= 0.5],
        ['p99 delay at 20,000/s', '<= 2.0 s', `${p99.toFixed(2)} s`, p99 <= 2],
      ];
      process.stdout.write(
        [
          `audit: ${n} kube.request events, node ${process.version}`,
          '',
          `  plain multi-row insert          ${plainRate.toFixed(0).padStart(8)} events/s`,
          `  queue + worker + chained insert ${rate.toFixed(0).padStart(8)} events/s (${seconds.toFixed(1)} s; emit-to-stored p99 in this burst ${burst.p99.toFixed(2)} s)`,
          `  20,000 events/s offered for ${(n / 2 / 20_000).toFixed(1)} s: emit-to-stored p50 ${paced.p50.toFixed(2)} s, p99 ${paced.p99.toFixed(2)} s`,
          '',
          ...targets.map((t) => `  ${t[0].padEnd(32)} ${t[1].padStart(10)} ${t[2].padStart(10)}  ${t[3] ? 'PASS' : 'FAIL'}`),
          '',
        ].join('\n'),
      );
      return targets.every((t) => t[3]);
    } finally {
      await store.close();
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    }
  },
};
