import { spawn } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { BadParameterError, ConnectionProblemError } from '@keyway/errors';
import { PAGE_HEADERS, htmlPage } from './page.js';
import { open as openSealed } from './sealed.js';

/** How long a console login waits for the browser to come back: the time to log in at the provider. */
export const SSO_CALLBACK_TIMEOUT_MS = 3 * 60_000;

/**
 * The console side of an SSO login (kw login, kwctl sso test): a loopback server that takes one
 * answer on /callback, opens it with the secret key, serves the page the browser ends on, and
 * is done. An answer it cannot open (not sealed under its key) is refused and it keeps waiting.
 */
export function callbackServer(
  secretKey: string,
  timeoutMs: number,
  success: { title: string; message: string } = { title: 'Login successful', message: 'You are logged in to Keyway. You can close this window and return to the terminal.' },
): Promise<{ port: number; result: Promise<string>; close(): void }> {
  let settle!: { resolve: (v: string) => void; reject: (e: Error) => void };
  const result = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => undefined); // observed by the caller; never unhandled if it never asks
  let done = false;
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || u.pathname !== '/callback' || done) {
      res.writeHead(404, PAGE_HEADERS);
      return res.end(htmlPage('Not found', 'This address only takes the answer of a Keyway login.'));
    }
    const error = u.searchParams.get('error');
    const sealed = u.searchParams.get('response');
    if (error !== null) {
      done = true;
      res.writeHead(200, PAGE_HEADERS);
      res.end(htmlPage('Login failed', `${error.slice(0, 500)} You can close this window.`));
      return settle.reject(new BadParameterError(`login failed: ${error.slice(0, 500)}`));
    }
    let opened: string;
    try {
      opened = openSealed(secretKey, sealed ?? '');
    } catch {
      // Not ours (a forged or garbled answer): keep waiting for the real one.
      res.writeHead(400, PAGE_HEADERS);
      return res.end(htmlPage('Login failed', 'This answer cannot be read by this login; run it again.'));
    }
    done = true;
    res.writeHead(200, PAGE_HEADERS);
    res.end(htmlPage(success.title, success.message));
    settle.resolve(opened);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const timer = setTimeout(() => settle.reject(new ConnectionProblemError(`no login came back within ${Math.round(timeoutMs / 1000)} s; run it again`)), timeoutMs);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        result,
        close: () => {
          clearTimeout(timer);
          server.close();
          for (const s of sockets) s.destroy();
        },
      }),
    );
  });
}

/** Opens the URL in the person's browser: `--browser` names a program, else the desktop's opener. */
export function openBrowser(url: string, browser: string): void {
  const command = browser && browser !== 'default' ? browser : process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined); // no opener: the printed URL is there
    child.unref();
  } catch {
    // As above.
  }
}

