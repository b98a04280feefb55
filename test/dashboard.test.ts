/**
 * The dashboard in a real headless Chromium over simulated data: its numbers against an independent count
 * from the files, filters changing every panel and living in the address, CSV export, and a merchant
 * token's page showing nothing of any other merchant.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import type { Browser, Page } from 'puppeteer-core';
import { readRows, silent, tempDir } from './helpers.js';
import { dashboardReady, launchBrowser, openDashboard } from './chromium.js';
import { metricSet } from '../src/jobs/aggregates/metrics.js';
import { runErasure } from '../src/privacy/erase.js';
import { Regulations } from '../src/privacy/regulations.js';
import { loadPrivacySecret } from '../src/privacy/secret.js';
import { expectedCounts, type ReadWorld, sessionRows, simulatedStore, startReadWorld } from './read-fixture.js';


const stat = (page: Page, metric: string) => page.$eval(`[data-stat="${metric}"]`, (e) => Number(e.getAttribute('data-value')));
const tableKeys = (page: Page, name: string) => page.$$eval(`[data-table="${name}"] tbody tr[data-key]`, (rows) => rows.map((r) => r.getAttribute('data-key')!));
const tableRows = (page: Page, name: string) => page.$$eval(`[data-table="${name}"] tbody tr`, (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.getAttribute('data-value') ?? td.textContent!)));

describe('the dashboard in a real browser', () => {
  let browser: Browser;
  let w: ReadWorld;
  let totals: { view: number; share: number; chat: number };
  before(async () => {
    const { store } = await simulatedStore();
    w = await startReadWorld(store);
    browser = await launchBrowser();
    totals = (await expectedCounts(store, () => 'all')).get('all')!;
  });
  after(async () => {
    await browser?.close();
    await w?.close();
  });

  it('shows the numbers of the files, keeps the token out of the address, and filters every panel', async () => {
    const page = await openDashboard(browser, `${w.url}/?token=${await w.token()}`);
    assert.ok(!page.url().includes('token='), page.url());
    assert.equal(await stat(page, 'view'), totals.view);
    assert.equal(await stat(page, 'share'), totals.share);
    assert.equal(await stat(page, 'chat'), totals.chat);
    const sessions = (await sessionRows(w.store)).filter((s) => s.tenantid === 'demo');
    assert.equal(await stat(page, 'sessions'), sessions.length);

    // Top products: the ten most viewed, as counted from the tracking files.
    const byProduct = await expectedCounts(w.store, (r) => r.productid);
    const products = await tableRows(page, 'products');
    assert.equal(products.length, Math.min(10, byProduct.size));
    for (const [product, view, share, chat] of products) assert.deepEqual([Number(view), Number(share), Number(chat)], Object.values(byProduct.get(product!)!));

    // Click the top merchant: every panel now shows that merchant, and the address says so.
    const before = { chart: await page.$eval('#chart', (e) => e.innerHTML), funnel: await tableRows(page, 'funnel'), sessions: await stat(page, 'sessions') };
    const merchant = (await tableKeys(page, 'merchants'))[0]!;
    await page.click(`[data-table="merchants"] tr[data-key="${merchant}"]`);
    await dashboardReady(page);
    assert.match(page.url(), new RegExp(`merchant=${merchant}`));
    const mine = (await expectedCounts(w.store, (r) => r.merchantid)).get(merchant)!;
    assert.equal(await stat(page, 'view'), mine.view);
    assert.equal(await stat(page, 'chat'), mine.chat);
    const ofMerchant = new Set((await readRows(w.store)).filter((r) => r.merchantid === merchant).map((r) => r.productid));
    const shown = await tableKeys(page, 'products');
    assert.ok(shown.length > 0 && shown.every((p) => ofMerchant.has(p)), 'only the merchant\'s products');
    assert.deepEqual(await tableKeys(page, 'merchants'), [merchant]);
    assert.ok((await stat(page, 'sessions')) < before.sessions, 'sessions: those with an event of the merchant');
    assert.notEqual(await page.$eval('#chart', (e) => e.innerHTML), before.chart);
    assert.notDeepEqual(await tableRows(page, 'funnel'), before.funnel);

    // The state is in the address: a reload shows the same page.
    await page.reload();
    await dashboardReady(page);
    assert.equal(await stat(page, 'view'), mine.view);
    assert.equal(await page.$$eval('[data-filter="merchant"]', (e) => e.length), 1);
    await page.close();
  });

  it('exports a table as the CSV of exactly the rows shown', async () => {
    const page = await openDashboard(browser, `${w.url}/?token=${await w.token()}&range=2026-01-30,2026-01-31`);
    const downloads = tempDir('downloads');
    const cdp = await page.createCDPSession();
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
    const shown = await tableRows(page, 'products');
    await page.click('[data-export="products"]');
    let files: string[] = [];
    for (let i = 0; i < 100 && !files.some((f) => f.endsWith('.csv')); i++) {
      await new Promise((r) => setTimeout(r, 100));
      files = await fs.readdir(downloads);
    }
    const file = files.find((f) => f.endsWith('.csv'));
    assert.ok(file, `a CSV was downloaded (${files.join(', ')})`);
    const rows = parse(await fs.readFile(path.join(downloads, file!), 'utf8'), { columns: true }) as Array<Record<string, string>>;
    assert.deepEqual(rows.map((r) => [r.product, r.view, r.share, r.chat]), shown);
    await page.close();
  });

  it("shows a merchant token nothing of any other merchant's", async () => {
    const all = await readRows(w.store);
    const byMerchant = await expectedCounts(w.store, (r) => r.merchantid || undefined);
    const merchant = [...byMerchant].sort((a, b) => b[1].view - a[1].view)[0]![0];
    const page = await openDashboard(browser, `${w.url}/?token=${await w.token({ merchant })}`);
    assert.equal(await stat(page, 'view'), byMerchant.get(merchant)!.view);
    assert.equal(await page.$('[data-table="merchants"]'), null);
    assert.equal(await page.$('[data-stat="sessions"]'), null);
    const own = new Set(all.filter((r) => r.merchantid === merchant).map((r) => r.productid));
    const others = new Set(all.filter((r) => r.merchantid && r.merchantid !== merchant).flatMap((r) => [r.merchantid!, r.productid!]).filter((x) => x && !own.has(x)));
    const html = await page.content();
    const words = new Set(html.split(/[^A-Za-z0-9_.-]+/));
    const leaked = [...others].filter((x) => words.has(x));
    assert.deepEqual(leaked, []);
    assert.ok((await tableKeys(page, 'products')).length > 0);
    await page.close();
  });

  // Last: it erases a user from the world the tests above read.
  it('no longer shows a user\'s sessions or views once a deletion has run', async () => {
    const sessions = (await sessionRows(w.store)).filter((r) => r.tenantid === 'demo');
    const accounts = new Set((await readRows(w.store)).filter((r) => r.accountid).map((r) => r.accountid));
    const perUser = new Map<string, number>();
    for (const r of sessions) if (accounts.has(r.userid!)) perUser.set(r.userid!, (perUser.get(r.userid!) ?? 0) + 1);
    const [subject, theirs] = [...perUser].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]!;
    assert.ok(theirs >= 2, 'a user with sessions to erase');
    const page = await openDashboard(browser, `${w.url}/?token=${await w.token()}`);
    assert.equal(await stat(page, 'sessions'), sessions.length);

    const secret = await loadPrivacySecret(undefined, w.store);
    await new Regulations(w.store, secret, w.clock).create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: [subject] });
    await runErasure({ store: w.store, clock: w.clock, logger: silent, secret, metrics: metricSet(), sessions: { inactivityMinutes: 30, includeBots: false, lookbackDays: 35 } });
    await w.cache.refresh();
    await page.reload();
    await dashboardReady(page);
    const left = (await sessionRows(w.store)).filter((r) => r.tenantid === 'demo');
    assert.equal(left.filter((r) => r.userid === subject).length, 0);
    assert.equal(left.length, sessions.length - theirs, 'exactly the subject\'s sessions are gone');
    assert.equal(await stat(page, 'sessions'), left.length);
    assert.equal(await stat(page, 'view'), (await expectedCounts(w.store, () => 'all')).get('all')!.view, 'views as the remaining files count them');
    await page.close();
  });
});
