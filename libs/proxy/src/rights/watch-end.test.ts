import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { kubeStatus } from '@keyway/kube';
import { readAll } from '@keyway/testing';
import { EndableWatch } from './watch-end.js';

const status = kubeStatus(403, 'Forbidden', 'keyway: user "u" is locked: x');
const errorLine = `${JSON.stringify({ type: 'ERROR', object: status })}\n`;

function watchOf() {
  const source = new PassThrough();
  const watch = new EndableWatch(source);
  source.pipe(watch);
  const out = readAll(watch);
  return { source, watch, out };
}

describe('EndableWatch', () => {
  it('ends at once between events with an ERROR event carrying the Status, and stops the source', async () => {
    const { source, watch, out } = watchOf();
    source.write('{"type":"ADDED","object":{}}\n');
    await new Promise((r) => setImmediate(r));
    watch.endWith(status);
    expect((await out).toString()).toBe(`{"type":"ADDED","object":{}}\n${errorLine}`);
    expect(source.destroyed).toBe(true);
  });

  it('lets the event in flight finish before the ERROR event', async () => {
    const { source, watch, out } = watchOf();
    source.write('{"type":"ADDED",');
    await new Promise((r) => setImmediate(r));
    watch.endWith(status);
    source.write('"object":{}}\n{"type":"MODIFIED"');
    expect((await out).toString()).toBe(`{"type":"ADDED","object":{}}\n${errorLine}`);
  });

  it('cuts a watch whose event never finishes', async () => {
    const { source, watch, out } = watchOf();
    source.write('{"type":"ADDED",');
    await new Promise((r) => setImmediate(r));
    watch.endWith(status);
    await expect(out).rejects.toBeDefined();
    expect(watch.destroyed).toBe(true);
  });

  it('suits JSON watches only', () => {
    expect(EndableWatch.suits('application/json')).toBe(true);
    expect(EndableWatch.suits(['application/json;stream=watch'])).toBe(true);
    expect(EndableWatch.suits('application/vnd.kubernetes.protobuf;stream=watch')).toBe(false);
    expect(EndableWatch.suits(undefined)).toBe(false);
  });
});
