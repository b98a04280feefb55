/** The headless Chromium of the browser tests: the binary inside @sparticuz/chromium, driven by puppeteer-core. */
import chromium from '@sparticuz/chromium';
import puppeteer, { type Browser } from 'puppeteer-core';

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
