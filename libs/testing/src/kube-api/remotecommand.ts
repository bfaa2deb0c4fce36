/**
 * The server side of Kubernetes' remote command protocol (exec and attach) over its two
 * transports.
 *
 * WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`, and the older `channel.k8s.io`, plus
 * the `base64.` text variants): every message is one channel byte then payload — 0 stdin,
 * 1 stdout, 2 stderr, 3 error, 4 resize (JSON {"Width","Height"}). v5 adds the close signal
 * [255, channel] (the client half-closes stdin with [255, 0]). v4/v5 end with a metav1.Status
 * on channel 3 (Success, or NonZeroExitCode with an ExitCode cause), then a normal close.
 * Never send an empty message: client-go's v5 reader treats it as a broken stream.
 *
 * SPDY/3.1: the client opens one stream per channel, typed by the `streamType` header
 * (error, stdin, stdout, stderr, resize); the server replies to each, waits for the set the
 * query asked for, runs the command, FINs stdout/stderr, writes the Status to the error
 * stream and FINs it.
 */
import { EventEmitter, once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import type { SpdySession, SpdyStream } from './spdy.js';
import type { ExecIo, TerminalSize } from './shell.js';

export const REMOTE_COMMAND_WS_PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v4.base64.channel.k8s.io',
  'channel.k8s.io',
  'base64.channel.k8s.io',
] as const;

export const REMOTE_COMMAND_SPDY_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

export const Channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

export interface StreamSelection {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** How the command ended: an exit code, or a failure to run at all. */
export type ExecOutcome = { exitCode: number } | { failure: string };

export type CommandRunner = (io: ExecIo) => Promise<ExecOutcome>;

/** The v4+ error-channel Status for an outcome. */
export function outcomeStatus(outcome: ExecOutcome): Record<string, unknown> {
  if ('failure' in outcome) {
    return { metadata: {}, status: 'Failure', message: outcome.failure, reason: 'InternalError', details: { causes: [{ message: outcome.failure }] }, code: 500 };
  }
  if (outcome.exitCode === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [...], exit code ${outcome.exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(outcome.exitCode) }] },
  };
}

/** Picks the first protocol the client offered that we support (kube's negotiation order). */
export function negotiate(offered: Iterable<string>, supported: readonly string[]): string | undefined {
  for (const p of offered) if (supported.includes(p)) return p;
  return undefined;
}

// ---------------------------------------------------------------------------------------
// WebSocket

/** Encodes/decodes one channel message for binary or base64 channel protocols. */
export interface ChannelCodec {
  base64: boolean;
  encode(channel: number, data: Buffer): Buffer | string;
  decode(msg: Buffer, isBinary: boolean): { channel: number; data: Buffer } | undefined;
}

export function channelCodec(protocol: string): ChannelCodec {
  const base64 = protocol.includes('base64');
  return {
    base64,
    encode(channel, data) {
      if (!base64) {
        const out = Buffer.allocUnsafe(data.length + 1);
        out[0] = channel;
        data.copy(out, 1);
        return out;
      }
      return String.fromCharCode(48 + channel) + data.toString('base64');
    },
    decode(msg) {
      if (msg.length === 0) return undefined;
      if (!base64) return { channel: msg[0] as number, data: msg.subarray(1) };
      const text = msg.toString('utf8');
      return { channel: text.charCodeAt(0) - 48, data: Buffer.from(text.slice(1), 'base64') };
    },
  };
}

/** A Writable that sends each chunk as one channel message, acknowledging once the socket took it. */
export function channelWriter(ws: WebSocket, codec: ChannelCodec, channel: number): Writable {
  return new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, cb) {
      if (chunk.length === 0) return cb();
      if (ws.readyState !== ws.OPEN) return cb();
      ws.send(codec.encode(channel, chunk), { binary: !codec.base64 }, () => cb());
    },
  });
}

export async function serveWebSocketRemoteCommand(ws: WebSocket, protocol: string, sel: StreamSelection, run: CommandRunner): Promise<void> {
  const codec = channelCodec(protocol);
  const v5 = protocol === 'v5.channel.k8s.io';
  const structuredErrors = protocol.startsWith('v4.') || v5;
  const abort = new AbortController();
  const resize = new EventEmitter();
  const stdin = sel.stdin ? new PassThrough({ highWaterMark: 256 * 1024 }) : null;
  const stdout = channelWriter(ws, codec, Channel.stdout);
  const stderr = sel.tty ? stdout : channelWriter(ws, codec, Channel.stderr);

  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    const msg = codec.decode(Buffer.isBuffer(raw) ? raw : Buffer.from(raw as ArrayBuffer), isBinary);
    if (!msg) return;
    if (v5 && msg.channel === Channel.close) {
      if (msg.data[0] === Channel.stdin) stdin?.end();
      return;
    }
    if (msg.channel === Channel.stdin && stdin && !stdin.writableEnded) {
      if (msg.data.length > 0 && !stdin.write(msg.data)) {
        ws.pause();
        stdin.once('drain', () => ws.resume());
      }
    } else if (msg.channel === Channel.resize) {
      try {
        const size = JSON.parse(msg.data.toString('utf8')) as { Width?: number; Height?: number };
        resize.emit('resize', { width: size.Width ?? 0, height: size.Height ?? 0 } satisfies TerminalSize);
      } catch {
        // ignore a malformed resize
      }
    }
  });
  ws.on('close', () => {
    abort.abort();
    stdin?.end();
  });

  const outcome = await run({ stdin, stdout, stderr, tty: sel.tty, resize, signal: abort.signal }).catch(
    (err: unknown): ExecOutcome => ({ failure: (err as Error).message }),
  );
  await finish(stdout);
  if (stderr !== stdout) await finish(stderr);
  if (ws.readyState === ws.OPEN) {
    if (structuredErrors) {
      ws.send(codec.encode(Channel.error, Buffer.from(JSON.stringify(outcomeStatus(outcome)))), { binary: !codec.base64 });
    } else if ('failure' in outcome || outcome.exitCode !== 0) {
      const text = 'failure' in outcome ? outcome.failure : `command terminated with non-zero exit code: exit code ${outcome.exitCode}`;
      ws.send(codec.encode(Channel.error, Buffer.from(text)), { binary: !codec.base64 });
    }
    ws.close(1000);
  }
}

async function finish(w: Writable): Promise<void> {
  if (w.writableFinished || w.destroyed) return;
  w.end();
  await Promise.race([once(w, 'finish'), once(w, 'close'), once(w, 'error')]).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------
// SPDY

export async function serveSpdyRemoteCommand(session: SpdySession, protocol: string, sel: StreamSelection, run: CommandRunner): Promise<void> {
  const expected = new Set<string>(['error']);
  if (sel.stdin) expected.add('stdin');
  if (sel.stdout) expected.add('stdout');
  if (sel.stderr && !sel.tty) expected.add('stderr');
  if (sel.tty) expected.add('resize');
  const streams = new Map<string, SpdyStream>();
  const abort = new AbortController();
  session.on('close', () => abort.abort());

  const ready = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 30_000);
    const onStream = (stream: SpdyStream) => {
      stream.reply();
      const type = stream.header('streamtype') ?? '';
      streams.set(type, stream);
      if ([...expected].every((t) => streams.has(t))) {
        clearTimeout(timer);
        session.off('stream', onStream);
        resolve(true);
      }
    };
    session.on('stream', onStream);
    session.once('close', () => (clearTimeout(timer), resolve(false)));
  });
  if (!(await ready)) {
    session.destroy();
    return;
  }
  const errorStream = streams.get('error') as SpdyStream;
  const resize = new EventEmitter();
  const resizeStream = streams.get('resize');
  if (resizeStream) {
    // A sequence of JSON objects, one per resize.
    let buf = '';
    resizeStream.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let depth = 0;
      let start = 0;
      for (let i = 0; i < buf.length; i++) {
        if (buf[i] === '{') depth++;
        else if (buf[i] === '}' && --depth === 0) {
          try {
            const size = JSON.parse(buf.slice(start, i + 1)) as { Width?: number; Height?: number };
            resize.emit('resize', { width: size.Width ?? 0, height: size.Height ?? 0 } satisfies TerminalSize);
          } catch {
            // ignore
          }
          start = i + 1;
        }
      }
      buf = buf.slice(start);
    });
  }
  const stdout = streams.get('stdout') ?? new PassThrough().resume();
  const stderr = sel.tty ? stdout : (streams.get('stderr') ?? new PassThrough().resume());
  const stdin = streams.get('stdin') ?? null;
  errorStream.resume();

  const outcome = await run({ stdin, stdout, stderr, tty: sel.tty, resize, signal: abort.signal }).catch(
    (err: unknown): ExecOutcome => ({ failure: (err as Error).message }),
  );
  await finish(stdout);
  if (stderr !== stdout) await finish(stderr);
  resizeStream?.end();
  if (!session.closed) {
    if (protocol.startsWith('v4.') || protocol.startsWith('v5.')) errorStream.write(JSON.stringify(outcomeStatus(outcome)));
    else if ('failure' in outcome || outcome.exitCode !== 0) errorStream.write('failure' in outcome ? outcome.failure : `command terminated with non-zero exit code ${outcome.exitCode}`);
    await finish(errorStream);
  }
  // The client closes the connection once it has read everything; make sure it goes.
  const timer = setTimeout(() => session.close(), 5_000);
  if (!session.closed) await once(session, 'close');
  clearTimeout(timer);
}
