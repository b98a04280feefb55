/**
 * The browser SDKs, for real: a headless Chromium (from the @sparticuz/chromium npm package, driven by
 * puppeteer-core) loads pages from another origin than the collector, and those pages load
 * (a) Segment's standard snippet with its host swapped for the collector's, which loads the analytics.js
 *     bundle the collector serves,
 * (b) @segment/analytics-next from npm with `cdnURL` set to the collector, in standard and batching delivery,
 * (c) @rudderstack/analytics-js, its bundled build, with the collector as data plane and config URL.
 * Each page calls page, track, identify and an order; the test then reads the tracking and identity files.
 * One browser for the whole file; a fresh browser context (cookies, storage) per client.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, HTTPRequest, HTTPResponse } from 'puppeteer-core';
import { launchBrowser, UA } from './chromium.js';
import { flushed, readRows, startCollector, T0, type TestCollector } from './helpers.js';

const require = createRequire(import.meta.url);
/** A file of an installed package (found from its main entry: not every package exports package.json). */
function pkgFile(pkg: string, file: string): string {
  const main = require.resolve(pkg);
  return path.join(main.slice(0, main.lastIndexOf(`${path.sep}node_modules${path.sep}`) + `/node_modules/`.length + pkg.length), file);
}
const snippet = require('@segment/snippet') as { min(o: Record<string, unknown>): string };

// An http referrer: from https to this http page a browser sends none.
const REFERRER = 'http://www.google.com/';
const QUERY = '?utm_source=newsletter&utm_medium=email&utm_campaign=winter';

/** The same visit through each SDK: a page, a product view, a login, a share and an order. */
const VISIT = `
  async function visit(sdk, account) {
    await sdk.page();
    await sdk.track('Product Viewed', { product_id: 'p1', merchant_id: 'm1', impressions: ['p1', 'p2'] });
    await sdk.identify(account, { email: account + '@example.com' });
    await sdk.track('Product Shared', { product_id: 'p1', merchant_id: 'm1' });
    await sdk.track('Order Completed', { order_id: 'o-' + account, revenue: 30, products: [{ product_id: 'p1', merchant_id: 'm1', price: 10, quantity: 3 }] });
  }`;
/** Messages a visit sends, and the rows it makes. */
const MESSAGES = 5;

interface Client {
  name: string;
  writeKey: string;
  tenant: string;
  /** The page's <head> content, given the collector's base URL. */
  head(collector: string): string;
  /** Paths on the collector the client must have requested. */
  requests: string[];
}

// RudderStack's calls take callbacks; this makes them awaitable like analytics.js's.
const RUDDER_ADAPTER = `
  const rudder = {
    page: () => new Promise((r) => window.rudder.page(r)),
    track: (e, p) => new Promise((r) => window.rudder.track(e, p, r)),
    identify: (u, t) => new Promise((r) => window.rudder.identify(u, t, r)),
  };`;

const CLIENTS: Client[] = [
  {
    name: "Segment's snippet, loading analytics.js from the collector",
    writeKey: 'snippet-key',
    tenant: 'snippet',
    requests: ['/analytics.js/v1/snippet-key/analytics.min.js', '/v1/projects/snippet-key/settings', '/v1/p', '/v1/t', '/v1/i'],
    head: (collector) => {
      // The standard snippet as Segment's source settings print it, with its host swapped for the
      // collector's; on plain http the bundle cannot read its CDN from the script URL, so _cdn says it.
      const code = snippet.min({ apiKey: 'snippet-key', host: new URL(collector).host, page: false, load: false }).replace('"https://', '"http://');
      return `<script>${code}
        analytics._cdn = ${JSON.stringify(collector)};
        analytics.load('snippet-key');
        ${VISIT}
        window.visitDone = new Promise((resolve) => analytics.ready(() => resolve(visit(analytics, 'acct-snippet'))));
      </script>`;
    },
  },
  {
    name: '@segment/analytics-next from npm, standard delivery',
    writeKey: 'npm-key',
    tenant: 'npm',
    requests: ['/v1/projects/npm-key/settings', '/v1/p', '/v1/t', '/v1/i'],
    head: (collector) => `<script src="/vendor/analytics-next.js"></script><script>
        const analytics = AnalyticsNext.AnalyticsBrowser.load({ writeKey: 'npm-key', cdnURL: ${JSON.stringify(collector)} });
        ${VISIT}
        window.visitDone = visit(analytics, 'acct-npm');
      </script>`,
  },
  {
    name: '@segment/analytics-next from npm, batching delivery',
    writeKey: 'batch-key',
    tenant: 'batch',
    requests: ['/v1/projects/batch-key/settings', '/v1/b'],
    head: (collector) => `<script src="/vendor/analytics-next.js"></script><script>
        const analytics = AnalyticsNext.AnalyticsBrowser.load(
          { writeKey: 'batch-key', cdnURL: ${JSON.stringify(collector)} },
          { integrations: { 'Segment.io': { deliveryStrategy: { strategy: 'batching', config: { size: 10, timeout: 300 } } } } });
        ${VISIT}
        window.visitDone = visit(analytics, 'acct-batch');
      </script>`,
  },
  {
    name: '@rudderstack/analytics-js, bundled build',
    writeKey: 'rudder-key',
    tenant: 'rudder',
    requests: ['/sourceConfig/', '/v1/page', '/v1/track', '/v1/identify'],
    head: (collector) => rudderHead(collector, 'rudder-key', 'acct-rudder', {}),
  },
  {
    name: '@rudderstack/analytics-js, bundled build, sending through the beacon',
    writeKey: 'beacon-key',
    tenant: 'beacon',
    requests: ['/sourceConfig/', '/beacon/v1/batch'],
    head: (collector) => rudderHead(collector, 'beacon-key', 'acct-beacon', { useBeacon: true, beaconQueueOptions: { maxItems: 5, flushQueueInterval: 300 } }),
  },
];

function rudderHead(collector: string, writeKey: string, account: string, options: Record<string, unknown>): string {
  const load = { configUrl: collector, polyfillIfRequired: false, logLevel: 'ERROR', ...options };
  return `<script src="/vendor/rudder.js"></script><script>
    window.rudder = new rudderanalytics.RudderAnalytics();
    window.rudder.load(${JSON.stringify(writeKey)}, ${JSON.stringify(collector)}, ${JSON.stringify(load)});
    ${RUDDER_ADAPTER}
    ${VISIT}
    window.visitDone = new Promise((resolve) => window.rudder.ready(() => resolve(visit(rudder, ${JSON.stringify(account)}))));
  </script>`;
}

/** The shop's own site: pages for each client, and the npm packages' browser builds (as a shop's bundle would hold them). */
function startSite(collector: () => string): Promise<{ url: string; close(): Promise<void> }> {
  const vendor: Record<string, string> = {
    '/vendor/analytics-next.js': readFileSync(pkgFile('@segment/analytics-next', 'dist/umd/index.js'), 'utf8'),
    '/vendor/rudder.js': readFileSync(pkgFile('@rudderstack/analytics-js', 'dist/npm/modern/bundled/umd/index.js'), 'utf8'),
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://site');
    if (vendor[url.pathname]) {
      res.writeHead(200, { 'content-type': 'application/javascript' }).end(vendor[url.pathname]);
      return;
    }
    const client = CLIENTS.find((c) => url.pathname === `/${c.tenant}.html`);
    if (!client) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><head><title>Shop ${client.tenant}</title>${client.head(collector())}</head><body><h1>Shop</h1></body></html>`);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

describe('browser SDKs in a real Chromium', () => {
  let browser: Browser;
  let c: TestCollector;
  let site: { url: string; close(): Promise<void> };

  before(async () => {
    c = await startCollector({ sources: Object.fromEntries(CLIENTS.map((k) => [k.writeKey, k.tenant])) });
    site = await startSite(() => c.url);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    await c?.close();
  });

  for (const client of CLIENTS) {
    it(`${client.name}: every event lands with its columns mapped`, async () => {
      const context = await browser.createBrowserContext();
      const requests: string[] = [];
      const failures: string[] = [];
      const errors: string[] = [];
      try {
        const page = await context.newPage();
        await page.setUserAgent(UA);
        page.on('request', (r: HTTPRequest) => void requests.push(r.url()));
        page.on('pageerror', (e) => void errors.push(String(e)));
        page.on('console', (m) => {
          if (m.type() === 'error') errors.push(m.text());
        });
        page.on('requestfailed', (r: HTTPRequest) => void failures.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
        page.on('response', (r: HTTPResponse) => {
          if (r.url().startsWith(c.url) && r.status() >= 400) failures.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
        });
        await page.goto(`${site.url}/${client.tenant}.html${QUERY}`, { referer: REFERRER, waitUntil: 'load' });
        const diagnosis = () => `failed requests: ${failures.join('; ') || 'none'}; page errors: ${errors.join('; ') || 'none'}`;
        await page.waitForFunction('window.visitDone !== undefined', { timeout: 20_000 });
        await Promise.race([
          page.evaluate('window.visitDone'),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`the visit did not finish in 20 s; ${diagnosis()}`)), 20_000)),
        ]);
        await waitForAccepted(c, client.tenant, MESSAGES, diagnosis);
        assert.deepEqual(failures, [], 'no request to the collector failed');
        assert.deepEqual(errors, [], 'the page logged no error');
        const paths = new Set(requests.filter((u) => u.startsWith(c.url)).map((u) => new URL(u).pathname));
        for (const p of client.requests) assert.ok(paths.has(p), `${client.tenant} requested ${p}: ${[...paths].join(', ')}`);
        const foreign = requests.filter((u) => !u.startsWith(c.url) && !u.startsWith(site.url));
        assert.deepEqual(foreign, [], 'no request left for a third-party host');
      } finally {
        await context.close();
      }

      await flushed(c);
      const rows = (await readRows(c.store)).filter((r) => r.tenantid === client.tenant);
      assert.deepEqual(rows.map((r) => r.event).sort(), ['load', 'order', 'sales', 'share', 'view']);
      const by = Object.fromEntries(rows.map((r) => [r.event, r]));
      const account = `acct-${client.tenant}`;
      const pageUrl = `${site.url}/${client.tenant}.html${QUERY}`;

      const devices = new Set(rows.map((r) => r.deviceid));
      assert.equal(devices.size, 1, `one stable device id: ${[...devices].join(', ')}`);
      const [device] = devices;
      assert.match(device!, /^[0-9a-f-]{36}$/, 'the SDK\'s anonymous id');
      assert.equal(by.load!.accountid, '');
      assert.equal(by.view!.accountid, '');
      for (const e of ['share', 'order', 'sales']) assert.equal(by[e]!.accountid, account, `${e} after identify carries the account`);
      const links = (await readRows(c.store, 'identities/')).filter((l) => l.tenantid === client.tenant);
      assert.deepEqual(links.map((l) => [l.deviceid, l.accountid]), [[device, account]]);

      for (const r of rows) {
        // The browser's clock is the wall clock; the time is corrected by its sentAt onto the collector's (T0).
        assert.ok(Math.abs(Number(r.time) - T0) < 60_000, `${r.event} time ${r.time}`);
        assert.equal(r.ua, UA);
        assert.equal(r.bot, 'false');
        assert.equal(r.devicetype, 'DESKTOP');
        assert.equal(r.ip, '127.0.0.1');
        assert.equal(r.url, pageUrl, `${r.event} url`);
        assert.equal(r.referer, REFERRER, `${r.event} referer`);
        assert.equal(r.source, 'EMAIL', `${r.event}: utm_medium=email`);
        assert.equal(r.page, `/${client.tenant}.html`, `${r.event} page: the page's path (no page name was given)`);
      }
      assert.deepEqual([by.view!.productid, by.view!.merchantid, by.view!.impressions], ['p1', 'm1', 'p1|p2']);
      assert.deepEqual([by.share!.productid, by.share!.merchantid], ['p1', 'm1']);
      assert.equal(by.order!.value, '30');
      assert.deepEqual([by.sales!.productid, by.sales!.merchantid, by.sales!.value], ['p1', 'm1', '30']);
    });
  }
});

/** Waits until the collector has accepted n messages for the tenant (the SDKs send in the background). */
async function waitForAccepted(c: TestCollector, tenant: string, n: number, diagnosis: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = await (await fetch(`${c.url}/metrics`)).text();
    const m = new RegExp(`tracklake_events_accepted_total\\{tenant="${tenant}"\\} (\\d+)`).exec(text);
    const got = m ? Number(m[1]) : 0;
    if (got >= n) return;
    if (Date.now() > deadline) assert.fail(`the collector accepted ${got} of ${n} messages for ${tenant}; ${diagnosis()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
