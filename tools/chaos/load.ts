/**
 * A steady kubectl-like load through the balancer: each request names a pod of its own
 * (chaos-<run>-<n>), so the audit log can be checked request by request afterwards.
 */
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { KUBE_SNI } from '@keyway/client';
import type { UserCredentials } from './topology.js';

export interface Outcome {
  name: string;
  start: number;
  end: number;
  /** HTTP status, or 0 when no response arrived (connection refused, reset, timeout). */
  status: number;
  error?: string;
  /** For a refused or failed request: the first bytes of the body, to tell a 404 of Keyway's from the cluster's. */
  body?: string;
}

export class Load {
  readonly outcomes: Outcome[] = [];
  readonly run = randomBytes(3).toString('hex');
  private seq = 0;
  private stopped = false;
  private workers: Promise<void>[] = [];
  /** Half the workers keep their connection (a controller's client); the other half dial for every request, as each kubectl command does. */
  private readonly keepAlive: https.Agent;
  private readonly fresh: https.Agent;

  constructor(
    private readonly address: string,
    private readonly user: UserCredentials,
    private readonly o: { workers: number; intervalMs: number; timeoutMs: number },
  ) {
    const tls = { ca: user.ca, cert: user.cert, key: user.key, servername: KUBE_SNI };
    this.keepAlive = new https.Agent({ keepAlive: true, maxSockets: o.workers, ...tls });
    this.fresh = new https.Agent({ keepAlive: false, ...tls });
  }

  start(): void {
    for (let i = 0; i < this.o.workers; i++) this.workers.push(this.worker(i));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
    this.keepAlive.destroy();
    this.fresh.destroy();
  }

  private async worker(i: number): Promise<void> {
    // Spread the workers over the interval so the load is steady, not in bursts.
    await sleep((this.o.intervalMs / this.o.workers) * i);
    while (!this.stopped) {
      const began = Date.now();
      this.outcomes.push(await this.request(`chaos-${this.run}-${this.seq++}`, i % 2 === 0 ? this.keepAlive : this.fresh));
      await sleep(Math.max(0, this.o.intervalMs - (Date.now() - began)));
    }
  }

  private request(name: string, agent: https.Agent): Promise<Outcome> {
    const [host, port] = this.address.split(':') as [string, string];
    const start = Date.now();
    return new Promise((resolve) => {
      const done = (o: Omit<Outcome, 'name' | 'start' | 'end'>) => resolve({ name, start, end: Date.now(), ...o });
      const req = https.request(
        { host, port: Number(port), path: `/api/v1/namespaces/default/pods/${name}`, method: 'GET', agent, timeout: this.o.timeoutMs },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (body.length < 300) body += d;
          });
          res.on('end', () => done({ status: res.statusCode ?? 0, ...(res.statusCode === 200 ? {} : { body: body.slice(0, 300) }) }));
          res.on('error', (err) => done({ status: 0, error: err.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.o.timeoutMs} ms`)));
      req.on('error', (err) => done({ status: 0, error: err.message }));
      req.end();
    });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
