// Starts an app from its bundle (apps/<app>/dist/main.mjs, built by tools/build/bundles.mjs),
// or from its TypeScript sources through tsx's loader when there is no bundle or any source
// it was built from changed since: an edited checkout never runs stale code.
import { readFileSync, statSync } from 'node:fs';

const root = new URL('../../', import.meta.url);

/** Whether the bundle at `dist` is newer than every source listed in its inputs.json. */
export function bundleIsFresh(distDir, repoRoot = root) {
  try {
    const built = statSync(new URL('main.mjs', distDir)).mtimeMs;
    const { inputs } = JSON.parse(readFileSync(new URL('inputs.json', distDir), 'utf8'));
    return Array.isArray(inputs) && inputs.length > 0 && inputs.every((p) => statSync(new URL(p, repoRoot)).mtimeMs <= built);
  } catch {
    return false;
  }
}

/**
 * `appDir`: the app's folder URL (the bin's `new URL('..', import.meta.url)`).
 * KEYWAY_FROM_SOURCE=1 runs the sources whatever the bundle.
 */
export async function launch(appDir, repoRoot = root) {
  const dist = new URL('dist/', appDir);
  if (process.env.KEYWAY_FROM_SOURCE !== '1' && bundleIsFresh(dist, repoRoot)) {
    // Stack traces point into the TypeScript sources.
    process.setSourceMapsEnabled(true);
    return import(new URL('main.mjs', dist).href);
  }
  const { register } = await import('tsx/esm/api');
  register();
  return import(new URL('src/main.ts', appDir).href);
}

