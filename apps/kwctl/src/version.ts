import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * kwctl's version line, shaped like tctl's ("Teleport v17.1.0 git:v17.1.0-0-g1a2b3c4 go1.22"):
 * the package version, the commit it was built from (KEYWAY_GIT_COMMIT, else the checkout it
 * runs from) and the Node.js that runs it.
 */
export function versionLine(env: NodeJS.ProcessEnv = process.env): string {
  return `Keyway v${packageVersion()} git:${env['KEYWAY_GIT_COMMIT'] || checkoutCommit()} node${process.version.slice(1)}`;
}

function packageVersion(): string {
  // src/version.ts and dist/main.mjs both sit one level below the package.
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

function checkoutCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: fileURLToPath(new URL('.', import.meta.url)),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 2000,
    }).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}
