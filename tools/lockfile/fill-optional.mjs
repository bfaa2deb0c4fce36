#!/usr/bin/env node
// Some registries serve only the platform binaries of the machines they are used from
// (for example no darwin or win32 builds of @bufbuild/buf and rollup). npm install then
// leaves those optional packages out of package-lock.json, and `npm ci` refuses the lock
// as out of sync. This records each missing optional platform package with the os/cpu/libc
// its name declares, so npm ci accepts the lock and skips it on every other platform, as it
// would with a lock written against the full registry. Run after `npm install` that changed
// dependencies (`npm run lock:fill`); `npm run check` runs it with --check, which only says
// what is missing. It is not a postinstall step: installing must not rewrite the lock.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const path = fileURLToPath(new URL('../../package-lock.json', import.meta.url));
const lock = JSON.parse(readFileSync(path, 'utf8'));
const packages = lock.packages;

const OS = ['darwin', 'linux', 'win32', 'android', 'freebsd', 'openbsd', 'netbsd', 'openharmony', 'sunos', 'aix'];
const CPU = [
  [/(^|-)(arm64|aarch64)(-|$)/, 'arm64'],
  [/(^|-)x64(-|$)/, 'x64'],
  [/(^|-)ia32(-|$)/, 'ia32'],
  [/(^|-)(armv7|arm)(-|$)/, 'arm'],
  [/(^|-)loong64(-|$)/, 'loong64'],
  [/(^|-)ppc64(-|$)/, 'ppc64'],
  [/(^|-)riscv64(-|$)/, 'riscv64'],
  [/(^|-)s390x(-|$)/, 's390x'],
];

function platformOf(name) {
  const base = name.split('/').pop();
  const os = OS.find((o) => base.split('-').includes(o));
  const cpu = CPU.find(([re]) => re.test(base))?.[1];
  if (!os || !cpu) return undefined;
  const libc = /-musl/.test(base) ? ['musl'] : /-gnu/.test(base) && os === 'linux' ? ['glibc'] : undefined;
  return { os: [os], cpu: [cpu], ...(libc ? { libc } : {}) };
}

let added = 0;
for (const [key, entry] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const at = `node_modules/${dep}`;
    if (packages[at]) continue;
    const platform = platformOf(dep);
    if (!platform) {
      console.error(`fill-optional: ${dep} (optional for ${key || 'root'}) is missing and names no platform; left as is`);
      continue;
    }
    packages[at] = { version, ...(entry.dev ? { dev: true } : {}), optional: true, ...platform };
    added++;
  }
}
if (added === 0) process.exit(0);
if (process.argv.includes('--check')) {
  console.error(`fill-optional: package-lock.json lacks ${added} optional platform package(s); run npm run lock:fill and commit the lock`);
  process.exit(1);
}
lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`fill-optional: recorded ${added} optional platform package(s) the registry did not serve`);
