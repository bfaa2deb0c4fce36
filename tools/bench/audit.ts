/**
 * `npm run bench -- audit`: events per second from a producer through the BullMQ queue on
 * Redis and the auth service's worker into Postgres (hash-chained, idempotent), against a
 * plain multi-row insert of the same events in the same run; and the p99 delay from emit
 * to stored. Uses the Postgres and Redis the tests use (KEYWAY_TEST_DATABASE_URL, KEYWAY_BENCH_REDIS_URL).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { AuditWorker, EVENTS, QueueAuditLog, auditEvent } from '@keyway/audit';
import { silentLogger } from '@keyway/log';
import { Store, type AuditEventRecord } from '@keyway/store';
import { adminDatabaseUrl } from '@keyway/testing';
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
      const make = (i: number, tag: string): AuditEventRecord =>
        auditEvent(EVENTS.kubeRequest, {
          cluster_name: 'bench',
          user: `user-${i % 50}`,
          user_roles: ['access'],
          kubernetes_cluster: 'prod',
          kubernetes_groups: ['system:authenticated', 'devs'],
          proto: 'kube',
          verb: 'GET',
          request_path: `/api/v1/namespaces/default/pods/${tag}-${i}`,
          resource_kind: 'pods',
          resource_namespace: 'default',
          resource_name: `${tag}-${i}`,
          response_code: 200,
          'addr.remote': '10.0.0.1',
        });

      // Baseline: the same rows, plain multi-row inserts, no queue, no chain.
      const plain = Array.from({ length: n }, (_, i) => make(i, 'plain'));
      let start = process.hrtime.bigint();
      for (let i = 0; i < plain.length; i += 1000) {
        await store.db
          .insertInto('audit_events')
          .values(plain.slice(i, i + 1000).map((e) => ({ uid: e.uid, time: e.time, event: e.event, code: e.code, username: String(e['user']), data: JSON.stringify(e) })))
          .execute();
      }
      const plainRate = n / (Number(process.hrtime.bigint() - start) / 1e9);
      await store.db.deleteFrom('audit_events').execute();

      // The pipeline: producer → BullMQ → worker → chained insert.
      const worker = new AuditWorker({ redisUrl, store, logger, prefix });
      const log = new QueueAuditLog({ redisUrl, spoolPath: join(mkdtempSync(join(tmpdir(), 'kw-audit-bench-')), 'spool.jsonl'), logger, prefix });
      const emitted: number[] = new Array(n);
      const storedAt: number[] = [];
      let stored = 0;
      start = process.hrtime.bigint();
      const t0 = Date.now();
      const poll = setInterval(() => {
        void store.db
          .selectFrom('audit_events')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirst()
          .then((r) => {
            const now = Date.now();
            const count = Number(r?.n ?? 0);
            for (let i = stored; i < count; i++) storedAt[i] = now;
            stored = count;
          });
      }, 20);
      for (let i = 0; i < n; i++) {
        emitted[i] = Date.now();
        log.emit(make(i, 'queued'));
        if (i % 2000 === 1999) await new Promise((r) => setImmediate(r));
      }
      await log.flush();
      while (stored < n) {
        await new Promise((r) => setTimeout(r, 20));
        if (Date.now() - t0 > 600_000) throw new Error(`only ${stored} of ${n} events stored after 10 minutes`);
      }
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      clearInterval(poll);
      const rate = n / seconds;
      const delays = emitted.map((e, i) => (storedAt[i] ?? Date.now()) - e).sort((a, b) => a - b);
      const p99 = (delays[Math.floor(delays.length * 0.99)] ?? 0) / 1000;
      await log.close();
      await worker.close();

      const ratio = rate / plainRate;
      const targets: [string, string, string, boolean][] = [
        ['events/s through the pipeline', '>= 20,000', rate.toFixed(0), rate >= 20_000],
        ['share of plain insert rate', '>= 50%', `${(ratio * 100).toFixed(1)}%`, ratio >= 0.5],
        ['p99 emit-to-stored delay', '<= 2.0 s', `${p99.toFixed(2)} s`, p99 <= 2],
      ];
      process.stdout.write(
        [
          `audit: ${n} kube.request events, node ${process.version}`,
          '',
          `  plain multi-row insert          ${plainRate.toFixed(0).padStart(8)} events/s`,
          `  queue + worker + chained insert ${rate.toFixed(0).padStart(8)} events/s (${seconds.toFixed(1)} s)`,
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
