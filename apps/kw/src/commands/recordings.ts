import type { Command } from 'commander';
import { Option } from 'commander';
import type { AuthClient } from '@keyway/client';
import { BadParameterError } from '@keyway/errors';
import { profileClient } from '../connect.js';
import type { CommandContext } from '../context.js';
import { loadProfile } from '../profile.js';
import { formatTable, sessionDuration } from '@keyway/cli';

/** One recorded event (see the proxy's session observer). */
interface RecordedEvent {
  t: number;
  type: string;
  data?: string;
  b64?: string;
}

/** `kw recordings ls` and `kw play SESSION_ID`. */
export function register(program: Command, ctx: CommandContext): void {
  const recordings = program.command('recordings').description('View session recordings (exec and attach).');

  recordings
    .command('ls')
    .description('List recorded sessions, newest first.')
    .option('--proxy <host:port>', 'profile of this proxy (default: the current one)')
    .option('--limit <n>', 'at most this many sessions', '100')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (opts: { proxy?: string; limit: string; format: 'text' | 'json' }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BadParameterError('--limit must be a whole number from 1 to 1000');
      const client = profileClient(loadProfile(opts.proxy));
      try {
        const { sessions } = await client.call('listSessions', { limit });
        if (opts.format === 'json') {
          ctx.out.write(`${JSON.stringify(sessions, null, 2)}\n`);
          return;
        }
        const rows = sessions.map((s) => [s.id, s.user, s.cluster, `${s.namespace}/${s.pod}`, s.started, sessionDuration(s.started, s.ended)]);
        ctx.out.write(formatTable(['ID', 'User', 'Cluster', 'Pod', 'Start', 'Duration'], rows, { gap: ' ' }));
      } finally {
        client.close();
      }
    });

  program
    .command('play')
    .description('Replay the recorded session, with its original timing.')
    .argument('<session-id>')
    .option('--proxy <host:port>', 'profile of this proxy (default: the current one)')
    .option('--speed <n>', 'playback speed (2: twice as fast)', '1')
    .addOption(new Option('--format <format>', 'text: replay the output; json: every event, one per line').choices(['text', 'json']).default('text'))
    .action(async (id: string, opts: { proxy?: string; speed: string; format: 'text' | 'json' }) => {
      const speed = Number(opts.speed);
      if (!Number.isFinite(speed) || speed <= 0) throw new BadParameterError('--speed must be a number greater than 0');
      const client = profileClient(loadProfile(opts.proxy));
      try {
        let shown = 0;
        for await (const e of sessionEvents(client, id)) {
          if (opts.format === 'json') {
            ctx.out.write(`${JSON.stringify(e)}\n`);
            continue;
          }
          if (e.type !== 'stdout' && e.type !== 'stderr') continue;
          const wait = (e.t - shown) / speed;
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          shown = Math.max(shown, e.t);
          ctx.out.write(e.b64 !== undefined ? Buffer.from(e.b64, 'base64') : (e.data ?? ''));
        }
      } finally {
        client.close();
      }
    });
}

/** The session's events in order, a page of chunks at a time. */
async function* sessionEvents(client: AuthClient, id: string): AsyncGenerator<RecordedEvent> {
  let after = -1;
  for (;;) {
    const { chunks } = await client.call('getSessionEvents', { sessionId: id, afterSeq: after, limit: 50 });
    if (chunks.length === 0) return;
    for (const chunk of chunks) {
      after = chunk.seq;
      for (const line of chunk.events.split('\n')) if (line) yield JSON.parse(line) as RecordedEvent;
    }
  }
}

