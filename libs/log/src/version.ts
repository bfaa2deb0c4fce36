import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The release every Keyway program reports (servers in ping and heartbeats, CLIs in `version`). */
export const KEYWAY_VERSION = '0.1.0';

/**
 * The version line of Keyway's CLIs, shaped like tsh's and tctl's ("Teleport v17.1.0
 * git:v17.1.0-0-g1a2b3c4 go1.22"): the release, the commit it was built from
 * (KEYWAY_GIT_COMMIT, else the checkout it runs from) and the Node.js that runs it.
 */
export function versionLine(env: NodeJS.ProcessEnv = process.env): string {
  return `Keyway v${KEYWAY_VERSION} git:${env['KEYWAY_GIT_COMMIT'] || checkoutCommit()} node${process.version.slice(1)}`;
}

let commit: string | undefined;
function checkoutCommit(): string {
  if (commit !== undefined) return commit;
  try {
    commit =
      execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
        cwd: fileURLToPath(new URL('.', import.meta.url)),
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 2000,
      }).trim() || 'unknown';
  } catch {
    commit = 'unknown';
  }
  return commit;
}
