#!/usr/bin/env node
// kubectl runs `kw kube credentials` on every call: a cached certificate is printed by a
// small module before anything else loads. The bundle in dist/ (built by npm install) is
// used when present; from a bare checkout the TypeScript runs through tsx.
import { existsSync } from 'node:fs';

const dist = new URL('../dist/', import.meta.url);
const bundled = existsSync(new URL('main.mjs', dist));
const argv = process.argv.slice(2);
if (argv[0] === 'kube' && argv[1] === 'credentials') {
  const fast = bundled ? await import(new URL('fast-credentials.mjs', dist).href) : await viaTsx('../src/fast-credentials.ts');
  if (fast.tryCachedCredentials(argv)) process.exit(0);
}
if (bundled) await import(new URL('main.mjs', dist).href);
else await viaTsx('../src/main.ts');

let registered = false;
async function viaTsx(path) {
  if (!registered) {
    const { register } = await import('tsx/esm/api');
    register();
    registered = true;
  }
  return import(new URL(path, import.meta.url).href);
}
