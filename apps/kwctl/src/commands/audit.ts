import type { Command } from 'commander';
import { Option } from 'commander';
import { BadParameterError } from '@keyway/errors';
import { parseDuration } from '@keyway/resources';
import type { CommandContext } from '../context.js';
import { formatTable } from '@keyway/cli';

/** `kwctl audit search|verify`. */
export function register(program: Command, ctx: CommandContext): void {
  const audit = program.command('audit').description('search and verify the audit log');

  audit
    .command('search')
    .description('events, newest first')
    .option('--since <duration>', 'events of the last DURATION, e.g. 1h')
    .option('--from <time>', 'RFC 3339 start')
    .option('--to <time>', 'RFC 3339 end')
    .option('--event <name>', 'e.g. kube.request, user.login')
    .option('--user <name>')
    .option('--cluster <name>', 'Kubernetes cluster')
    .option('--namespace <ns>')
    .option('--limit <n>', 'at most this many events', '100')
    .option('--before-id <id>', 'the next page: events older than this id (printed after a full page)')
    .addOption(new Option('--format <format>', 'text: a table; json: one event per line').choices(['text', 'json']).default('text'))
    .action(
      async (
        opts: {
          since?: string;
          from?: string;
          to?: string;
          event?: string;
          user?: string;
          cluster?: string;
          namespace?: string;
          limit: string;
          beforeId?: string;
          format: 'text' | 'json';
        },
        cmd: Command,
      ) => {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new BadParameterError('--limit must be a whole number from 1 to 10000');
        const from = opts.since ? new Date(Date.now() - parseDuration(opts.since)) : opts.from ? time('--from', opts.from) : undefined;
        const to = opts.to ? time('--to', opts.to) : undefined;
        await ctx.withClient(cmd, async (client) => {
          const { events } = await client.call('searchEvents', {
            from: from?.toISOString() ?? '',
            to: to?.toISOString() ?? '',
            event: opts.event ?? '',
            user: opts.user ?? '',
            cluster: opts.cluster ?? '',
            namespace: opts.namespace ?? '',
            limit,
            beforeId: opts.beforeId ?? '',
          });
          // A full page may have more behind it: say how to get it (on stderr, so JSON lines stay clean).
          const last = events.at(-1);
          if (events.length === limit && last) ctx.err.write(`next page: --before-id=${last.id}\n`);
          if (opts.format === 'json') {
            for (const e of events) ctx.out.write(`${e.json}\n`);
            return;
          }
          const rows = events.map((e) => {
            const d = JSON.parse(e.json) as Record<string, unknown>;
            const what =
              d['event'] === 'kube.request'
                ? `${String(d['verb'] ?? '')} ${String(d['request_path'] ?? '')} -> ${String(d['response_code'] ?? '')}`
                : String(d['name'] ?? d['error'] ?? d['kubernetes_cluster'] ?? '');
            return [String(d['time'] ?? ''), String(d['event'] ?? ''), String(d['code'] ?? ''), String(d['user'] ?? ''), what];
          });
          ctx.out.write(formatTable(['Time', 'Event', 'Code', 'User', 'Details'], rows));
        });
      },
    );

  audit
    .command('verify')
    .description('recompute the keyed chain of the audit log, check it reaches its last checkpoint, and name the first event edited, missing, out of order or whose search columns disagree')
    .option('--since <duration>', 'only events of the last DURATION')
    .action(async (opts: { since?: string }, cmd: Command) => {
      const since = opts.since ? new Date(Date.now() - parseDuration(opts.since)).toISOString() : '';
      await ctx.withClient(cmd, async (client) => {
        const r = await client.call('verifyAuditChain', { since });
        if (r.ok) {
          ctx.out.write(`The audit log is intact: ${r.checked} event(s) checked.\n`);
          return;
        }
        throw new BadParameterError(verifyFailure(r));
      });
    });
}

/** One sentence naming the first bad or missing event, or what is wrong when no event can be named. */
export function verifyFailure(r: { checked: number; brokenId: string; brokenUid: string; brokenEvent: string; reason: string }): string {
  const intact = `${r.checked} event(s) checked before that are intact`;
  if (!r.brokenId) return `the audit log was tampered with: ${r.reason}; ${intact}`;
  return `the audit log was tampered with: event ${r.brokenId} (${r.brokenEvent}, uid ${r.brokenUid}) ${r.reason}; ${intact}`;
}

function time(flag: string, value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new BadParameterError(`${flag} must be an RFC 3339 time, e.g. 2026-11-21T10:00:00Z`);
  return d;
}
