#!/usr/bin/env node
// Bundles Keyway's commands into apps/<app>/dist so they run plain JavaScript: no TypeScript
// loader in the process (tsx keeps an esbuild service beside each one and wraps every
// function to keep its name), and kw starts fast, since kubectl runs `kw kube credentials`
// on every call. Run by `npm install` (postinstall) and before the tests and benchmarks.
//
// kw is one self-contained file. The others leave third-party packages to node_modules and
// bundle only Keyway's own code; next to each, inputs.json lists the sources it was built
// from, so tools/build/launch.mjs can tell a stale bundle and run the sources instead.
import { build } from 'esbuild';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const common = { absWorkingDir: root, bundle: true, platform: 'node', format: 'esm', target: 'node20', outExtension: { '.js': '.mjs' }, logLevel: 'warning', legalComments: 'none' };

/** Bare imports other than @keyway/* are left to Node's resolver at run time. */
const thirdPartyExternal = {
  name: 'third-party-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@keyway/') ? undefined : { path: args.path, external: true }));
  },
};

const kw = build({
  ...common,
  entryPoints: { main: 'apps/kw/src/main.ts', 'fast-credentials': 'apps/kw/src/fast-credentials.ts' },
  outdir: 'apps/kw/dist',
  // CommonJS dependencies (grpc-js, pino) call require() for Node's built-ins.
  banner: { js: "import { createRequire as __kwRequire } from 'node:module'; const require = __kwRequire(import.meta.url);" },
});

const servers = ['auth', 'proxy', 'kube-agent', 'kwctl'].map(async (app) => {
  const result = await build({
    ...common,
    entryPoints: { main: `apps/${app}/src/main.ts` },
    outdir: `apps/${app}/dist`,
    sourcemap: 'linked',
    metafile: true,
    plugins: [thirdPartyExternal],
  });
  const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.includes('node_modules/'));
  writeFileSync(`${root}apps/${app}/dist/inputs.json`, `${JSON.stringify({ inputs })}\n`);
});

await Promise.all([kw, ...servers]);
