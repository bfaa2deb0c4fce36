/**
 * A real headless Chromium for end-to-end tests (Debian's package, driven by playwright-core,
 * which ships no browser of its own). Each `open` gets a fresh browser context — no cookies,
 * storage or cache from an earlier page — the way a person's first login would look.
 */
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export type { Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

// The flags keep a test browser quiet and self-contained: no sandbox (tests run as root in a
// container), no GPU, no calls home (updates, sync, field trials), no QUIC to the test servers.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface TestBrowser {
  /** Opens url in a new, empty context and waits for its first page to load. */
  open(url: string): Promise<Page>;
  /** Closes every context and the browser process. */
  close(): Promise<void>;
}

export interface LaunchTestBrowserOptions {
  /** Default /usr/bin/chromium. */
  executablePath?: string;
  /** Playwright's default for waits and navigations on the pages opened (default 15 s). */
  timeoutMs?: number;
}

export async function launchTestBrowser(o: LaunchTestBrowserOptions = {}): Promise<TestBrowser> {
  const executablePath = o.executablePath ?? CHROMIUM_PATH;
  try {
    accessSync(executablePath, constants.X_OK);
  } catch {
    throw new Error(
      `no Chromium at ${executablePath}: the browser end-to-end tests need Debian's Chromium. ` +
        'Install it with: DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium ' +
        '(run apt-get update first if apt-get cannot find it)',
    );
  }
  const browser: Browser = await chromium.launch({ executablePath, args: ARGS, headless: true });
  const contexts = new Set<BrowserContext>();
  return {
    async open(url) {
      // The proxy's web route has the cluster's own certificate, which no public CA signed.
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      contexts.add(context);
      context.setDefaultTimeout(o.timeoutMs ?? 15_000);
      context.setDefaultNavigationTimeout(o.timeoutMs ?? 15_000);
      const page = await context.newPage();
      await page.goto(url);
      return page;
    },
    async close() {
      for (const c of contexts) await c.close().catch(() => undefined);
      contexts.clear();
      await browser.close();
    },
  };
}
