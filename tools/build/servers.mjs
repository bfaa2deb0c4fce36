#!/usr/bin/env node
// Bundles the long-running apps and kwctl into apps/<app>/dist, so that production runs plain
// JavaScript: no TypeScript compiler in the process (tsx keeps an esbuild service beside each
// one and wraps every function to keep its name). Third-party packages stay in node_modules;
// only Keyway's own code is bundled. Next to each bundle, inputs.json lists the sources it was
// built from, so tools/build/launch.mjs can tell a stale bundle and run the sources instead.
// Run by `npm install` (postinstall) and before the tests.
import { build } from 'esbuild';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const apps = ['auth', 'proxy', 'kube-agent', 'kwctl'];

/** Bare imports other than @keyway/* are left to Node's resolver at run time. */
const thirdPartyExternal = {
  name: 'third-party-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@keyway/') ? undefined : { path: args.path, external: true }));
  },
};

await Promise.all(
  apps.map(async (app) => {
    const result = await build({
      absWorkingDir: root,
      entryPoints: { main: `apps/${app}/src/main.ts` },
      outdir: `apps/${app}/dist`,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'linked',
      metafile: true,
      plugins: [thirdPartyExternal],
      logLevel: 'warning',
      legalComments: 'none',
    });
    const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.includes('node_modules/'));
    writeFileSync(`${root}apps/${app}/dist/inputs.json`, `${JSON.stringify({ inputs })}\n`);
  }),
);
