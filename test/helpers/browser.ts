/**
 * A real browser for the web page's tests: the Debian package `chromium` (installed by .ci/run),
 * headless, driven by playwright-core. One browser per test file keeps the tests quick.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { defaultWebRoot } from '../../src/api/web.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing (Debian package chromium; .ci/run installs it)`;
  if (defaultWebRoot() === undefined) return 'the web page is not built (npm run build bundles it into dist/web/)';
  return undefined;
}

export async function launchBrowser(): Promise<Browser> {
  // Root (CI containers) cannot use Chromium's sandbox.
  const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/** Screenshots go to the tests' output folder, dist/test-output/web/. */
export function screenshotDir(): string {
  const dir = join(process.cwd(), 'dist', 'test-output', 'web');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A page that fails the test on a script error or a console error. */
export async function newPage(browser: Browser, errors: string[]): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  // Waits are for correctness, not speed: the server shares this process and a busy machine can
  // hold a click for longer than playwright's 30 s default. Times are printed, never asserted.
  page.setDefaultTimeout(300_000);
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // An error answer the page handles (the tests ask for some) is logged by the browser too.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console error: ${m.text()}`);
  });
  return page;
}
