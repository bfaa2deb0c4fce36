#!/usr/bin/env node
// Regenerates libs/proto/src/gen from proto/ with buf + ts-proto (both from npm, no system
// protoc). With --check it generates into a temporary folder and fails when the committed
// code differs, so drift between .proto sources and generated code cannot land.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const committed = join(root, 'libs/proto/src/gen');
const check = process.argv.includes('--check');
const buf = join(root, 'node_modules/.bin/buf');

execFileSync(buf, ['lint'], { cwd: root, stdio: 'inherit' });

const work = mkdtempSync(join(tmpdir(), 'keyway-proto-'));
try {
  const out = join(work, 'gen');
  execFileSync(buf, ['generate', '--template', 'buf.gen.yaml', '-o', work], { cwd: root, stdio: 'inherit' });
  // buf writes to <-o>/<plugin out>; move that tree under our temporary "gen".
  cpSync(join(work, 'libs/proto/src/gen'), out, { recursive: true });
  if (!check) {
    rmSync(committed, { recursive: true, force: true });
    cpSync(out, committed, { recursive: true });
    console.log(`generated ${listFiles(committed).length} file(s) into ${relative(root, committed)}`);
  } else {
    const drift = diffTrees(out, committed);
    if (drift.length > 0) {
      console.error(`generated protobuf code is out of date (run npm run proto:gen):\n  ${drift.join('\n  ')}`);
      process.exit(1);
    }
    console.log('generated protobuf code is up to date');
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

function listFiles(dir, base = dir) {
  let files = [];
  let entries = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return files;
  }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files = files.concat(listFiles(p, base));
    else files.push(relative(base, p));
  }
  return files.sort();
}

function diffTrees(fresh, current) {
  const a = listFiles(fresh);
  const b = listFiles(current);
  const drift = [];
  for (const f of new Set([...a, ...b])) {
    if (!a.includes(f)) drift.push(`${f}: committed but no longer generated`);
    else if (!b.includes(f)) drift.push(`${f}: missing from the committed code`);
    else if (!readFileSync(join(fresh, f)).equals(readFileSync(join(current, f)))) drift.push(`${f}: differs`);
  }
  return drift;
}
