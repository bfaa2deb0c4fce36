/**
 * The audit benchmark's producer, on a thread of its own as a proxy would be a process of
 * its own: emits kube.request events through QueueAuditLog, either as fast as it can
 * (rate 0) or paced at `rate` events/s, and writes each event's emit time (ms since the
 * epoch) into the shared array.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { QueueAuditLog } from '@keyway/audit';
import { silentLogger } from '@keyway/log';
import { benchEvent } from './audit-events.js';

export interface ProducerOptions {
  n: number;
  /** Events per second; 0 emits as fast as the producer can. */
  rate: number;
  tag: string;
  redisUrl: string;
  prefix: string;
  emitted: Float64Array;
}

const o = workerData as ProducerOptions;

const log = new QueueAuditLog({ redisUrl: o.redisUrl, spoolPath: join(mkdtempSync(join(tmpdir(), 'kw-audit-bench-')), 'spool.jsonl'), logger: silentLogger(), prefix: o.prefix });
const start = Date.now();
// Paced in 5 ms ticks: each tick emits what the rate owes so far.
const tick = 5;
let i = 0;
while (i < o.n) {
  const due = o.rate > 0 ? Math.min(o.n, Math.floor(((Date.now() - start) * o.rate) / 1000) + 1) : Math.min(o.n, i + 2000);
  for (; i < due; i++) {
    o.emitted[i] = Date.now();
    log.emit(benchEvent(i, o.tag));
  }
  await new Promise((r) => (o.rate > 0 ? setTimeout(r, tick) : setImmediate(r)));
}
await log.flush();
await log.close();
parentPort?.postMessage({ dropped: log.dropped });
