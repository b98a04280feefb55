/** The headless Chromium of the browser tests: the binary inside @sparticuz/chromium, driven by puppeteer-core. */
import chromium from '@sparticuz/chromium';
import assert from 'node:assert/strict';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/** A normal desktop Chrome's user agent: HeadlessChrome is (rightly) a bot to tracklake. */
export const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/143.0.0.0 Safari/537.36';

export async function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: await chromium.executablePath(),
    // @sparticuz/chromium's defaults are for a Lambda: web security off (CORS is part of what is tested, so
    // it stays on) and a single process (which cannot open a second browser context).
    args: [
      ...chromium.args.filter((a) => !/^--(disable-web-security|allow-running-insecure-content|disable-site-isolation-trials|single-process|no-zygote)\b/.test(a)),
      '--disable-background-networking', '--disable-component-update', '--no-first-run',
    ],
    headless: true,
  });
}

/** Waits until the dashboard has drawn every panel for its current state. */
export async function dashboardReady(page: Page): Promise<void> {
  await page.waitForFunction("document.body.dataset.ready === 'true' && document.body.dataset.loading === undefined", { timeout: 20_000 });
}

/** Opens the dashboard at url as a normal browser, once drawn, and fails the test on a script error. */
export async function openDashboard(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage();
  await page.setUserAgent(UA);
  const errors: string[] = [];
  page.on('pageerror', (e) => void errors.push(String(e)));
  await page.goto(url);
  await dashboardReady(page);
  assert.deepEqual(errors, []);
  return page;
}
