#!/usr/bin/env node
// Bundles kw into apps/kw/dist so it starts fast: kubectl runs `kw kube credentials` on
// every call. Run by `npm install` (postinstall) and before the tests.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
await build({
  absWorkingDir: root,
  entryPoints: {
    main: 'apps/kw/src/main.ts',
    'fast-credentials': 'apps/kw/src/fast-credentials.ts',
  },
  outdir: 'apps/kw/dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // CommonJS dependencies (grpc-js, pino) call require() for Node's built-ins.
  banner: { js: "import { createRequire as __kwRequire } from 'node:module'; const require = __kwRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});
