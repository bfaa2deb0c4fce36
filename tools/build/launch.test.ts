import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bundleIsFresh, launch } from './launch.mjs';

describe('launch', () => {
  let dir: string;
  let repo: URL;
  let app: URL;
  const at = (path: string, seconds: number) => utimesSync(join(dir, path), seconds, seconds);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kw-launch-'));
    mkdirSync(join(dir, 'libs/x/src'), { recursive: true });
    mkdirSync(join(dir, 'apps/demo/src'), { recursive: true });
    mkdirSync(join(dir, 'apps/demo/dist'), { recursive: true });
    writeFileSync(join(dir, 'libs/x/src/x.ts'), 'export const x = 1;\n');
    writeFileSync(join(dir, 'apps/demo/src/main.ts'), "const ran: string = 'source';\n(globalThis as Record<string, unknown>)['launched'] = ran;\n");
    writeFileSync(join(dir, 'apps/demo/dist/main.mjs'), "globalThis.launched = 'bundle';\n");
    writeFileSync(join(dir, 'apps/demo/dist/inputs.json'), JSON.stringify({ inputs: ['libs/x/src/x.ts', 'apps/demo/src/main.ts'] }));
    at('libs/x/src/x.ts', 1_000);
    at('apps/demo/src/main.ts', 1_000);
    at('apps/demo/dist/main.mjs', 2_000);
    repo = pathToFileURL(`${dir}/`);
    app = new URL('apps/demo/', repo);
  });
  afterEach(() => {
    delete (globalThis as Record<string, unknown>)['launched'];
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes a bundle newer than all its sources', () => {
    expect(bundleIsFresh(new URL('dist/', app), repo)).toBe(true);
  });

  it('refuses a bundle once any source is newer, gone, or unlisted', () => {
    at('libs/x/src/x.ts', 3_000);
    expect(bundleIsFresh(new URL('dist/', app), repo)).toBe(false);
    at('libs/x/src/x.ts', 1_000);
    rmSync(join(dir, 'libs/x/src/x.ts'));
    expect(bundleIsFresh(new URL('dist/', app), repo)).toBe(false);
    writeFileSync(join(dir, 'apps/demo/dist/inputs.json'), '{"inputs":[]}');
    expect(bundleIsFresh(new URL('dist/', app), repo)).toBe(false);
    rmSync(join(dir, 'apps/demo/dist/inputs.json'));
    expect(bundleIsFresh(new URL('dist/', app), repo)).toBe(false);
  });

  it('runs a fresh bundle', async () => {
    await launch(app, repo);
    expect((globalThis as Record<string, unknown>)['launched']).toBe('bundle');
  });

  it('runs the sources through tsx when the bundle is stale', async () => {
    at('apps/demo/src/main.ts', 3_000);
    await launch(app, repo);
    expect((globalThis as Record<string, unknown>)['launched']).toBe('source');
  });
});
