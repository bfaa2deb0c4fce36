import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeSecretFile } from '@keyway/client';
import { AccessDeniedError, ConnectionProblemError } from '@keyway/errors';
import { acquirePidLock } from '@keyway/log';
import { SSO_CALLBACK_TIMEOUT_MS } from '@keyway/sso';
import { REFRESH_MARGIN_MS } from './fast-credentials.js';
import { logIn, type LoginIo } from './login-flow.js';
import { loadProfile, profileDir, type LoadedProfile } from './profile.js';

/** How long a kubectl waits for another one's login: the browser's time, and some. */
const WAIT_FOR_OTHER_LOGIN_MS = SSO_CALLBACK_TIMEOUT_MS + 60_000;
const POLL_MS = 100;
/** A failed login is answered again, without asking, to the kubectl processes it failed for. */
const FAILURE_REMEMBERED_MS = 10 * 60_000;
const MAX_REMEMBERED_PROCESSES = 64;

/**
 * kubectl runs its exec plugin again for each request that has no credential (discovery, then
 * the request itself), so one failed login would otherwise ask again in the same command. The
 * file names the kubectl processes (kw's parents) that have been told of the failure.
 */
interface LoginFailure {
  message: string;
  at: number;
  parents: number[];
}

class LoginInProgress extends Error {
  constructor(readonly pid: number) {
    super(`kw (pid ${pid}) is logging in`);
  }
}

export function loginExpired(p: LoadedProfile, now = Date.now()): boolean {
  return p.expires.getTime() - now <= REFRESH_MARGIN_MS;
}

/** `kw login` as the person would type it again. */
export function loginCommand(p: LoadedProfile): string {
  const auth = p.profile.auth ? ` --auth=${p.profile.auth}` : '';
  const user = p.profile.auth === 'local' || !p.profile.auth ? ` --user=${p.profile.user}` : '';
  return `kw login --proxy=${p.profile.proxy}${auth}${user}`;
}

/**
 * Whether kw may ask the person anything: kubectl says so in KUBERNETES_EXEC_INFO (its stdin is
 * a terminal and the kubeconfig allows it); run by hand, stdin must be a terminal.
 */
export function canAsk(env: NodeJS.ProcessEnv, stdin: { isTTY?: boolean }): boolean {
  const info = env['KUBERNETES_EXEC_INFO'];
  if (info) {
    try {
      const interactive = (JSON.parse(info) as { spec?: { interactive?: unknown } }).spec?.interactive;
      if (typeof interactive === 'boolean') return interactive && stdin.isTTY === true;
    } catch {
      // kubectl always sends valid JSON; anything else is read as "no terminal"
    }
  }
  return stdin.isTTY === true;
}

/**
 * A login that is still valid, logging in again first when it has expired and kw may ask.
 * Many kubectl processes can find the login expired at once (a script, a watch, an editor's
 * Kubernetes view): one of them logs in (one browser tab, one password prompt) while the others
 * wait on a lock file and then use its login. If that login fails, the waiters fail with it
 * instead of each asking again.
 */
export async function validLogin(proxy: string, o: { interactive: boolean; io: LoginIo }): Promise<LoadedProfile> {
  const first = loadProfile(proxy);
  if (!loginExpired(first)) return first;
  if (!o.interactive) throw new AccessDeniedError(`your Keyway login to ${proxy} has expired: run \`${loginCommand(first)}\` in a terminal`);
  const dir = profileDir(proxy);
  const failedFile = join(dir, 'login.failed');
  const started = Date.now();
  let waited = false;
  let release: () => void;
  for (;;) {
    try {
      release = acquirePidLock(join(dir, 'login.lock'), { inUse: (pid) => new LoginInProgress(pid) });
      break;
    } catch (err) {
      if (!(err instanceof LoginInProgress)) throw err;
      if (!waited) o.io.say(`Waiting for the Keyway login to ${proxy} that another kubectl started (kw pid ${err.pid})...\n`);
      waited = true;
      if (Date.now() - started > WAIT_FOR_OTHER_LOGIN_MS) throw new ConnectionProblemError(`the Keyway login that kw pid ${err.pid} started has not finished; finish it, or run \`${loginCommand(first)}\``);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
  try {
    const current = loadProfile(proxy);
    if (!loginExpired(current)) return current;
    const failure = readFailure(failedFile);
    const parent = process.ppid;
    if (failure && (failure.parents.includes(parent) || (waited && failure.at >= started))) {
      if (!failure.parents.includes(parent)) writeFailure(failedFile, { ...failure, parents: [...failure.parents, parent].slice(-MAX_REMEMBERED_PROCESSES) });
      throw new AccessDeniedError(`the Keyway login failed (${failure.message}): run \`${loginCommand(current)}\``);
    }
    o.io.say(`Your Keyway login to ${proxy} has expired; logging in again.\n`);
    try {
      const fresh = await logIn(
        {
          proxy,
          user: current.profile.user,
          ...(current.profile.auth ? { auth: current.profile.auth } : {}),
          browser: current.profile.browser ?? 'default',
          ttlSeconds: 0,
          insecure: current.profile.insecure,
          knownCaPems: current.caPems,
        },
        o.io,
      );
      rmSync(failedFile, { force: true });
      return fresh;
    } catch (err) {
      writeFailure(failedFile, { message: (err as Error).message.slice(0, 300), at: Date.now(), parents: [parent] });
      throw err;
    }
  } finally {
    release();
  }
}

/** The last failed login, if it is recent. */
function readFailure(path: string): LoginFailure | undefined {
  try {
    const f = JSON.parse(readFileSync(path, 'utf8')) as LoginFailure;
    if (typeof f.message !== 'string' || typeof f.at !== 'number' || !Array.isArray(f.parents)) return undefined;
    return Date.now() - f.at < FAILURE_REMEMBERED_MS ? f : undefined;
  } catch {
    return undefined;
  }
}

function writeFailure(path: string, f: LoginFailure): void {
  writeSecretFile(path, JSON.stringify(f));
}
