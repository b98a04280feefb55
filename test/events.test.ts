/**
 * The events page: every event name with its count, violations and quarantine, from the observed-schema
 * and violation files through the read cache; checked against what the simulator sent and an independent
 * reading of the files, over the API and in a real Chromium. Merchant tokens are refused.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import type { Browser } from 'puppeteer-core';
import { simulate } from '../src/cli/simulate.js';
import { ManualClock } from '../src/lib/clock.js';
import { simulateTraffic } from '../src/segment/simulator.js';
import type { ObjectStore } from '../src/storage/store.js';
import { launchBrowser, openDashboard } from './chromium.js';
import { post, sendTagged, startCollector, tempDir } from './helpers.js';
import { until } from './receiver.js';
import { writePlan } from './plan-fixture.js';
import { api, type ReadWorld, startReadWorld, TODAY_MS } from './read-fixture.js';

/** The simulator's events, planned as a shop would: a price sent as a string is blocked, the rest allowed. */
const PLAN = `version: 1
events:
  - name: product viewed
    properties: { type: object, required: [product_id], properties: { product_id: { type: string }, price: { type: number } } }
  - name: product shared
  - name: chat started
  - name: order completed
    properties: { type: object, properties: { revenue: { type: number } } }
enforcement:
  Datatype-Mismatch: block
`;
const SIM = { events: 3000, days: 3, seed: 7, endMs: TODAY_MS, planViolations: 0.15 };

/** What the simulator sent, by event name (identify calls as `identify`; page and screen calls are not events here). */
function sentCounts(): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of simulateTraffic(SIM)) {
    const name = m.type === 'track' ? String(m.event) : m.type === 'identify' ? 'identify' : undefined;
    if (name) out.set(name, (out.get(name) ?? 0) + 1);
  }
  return out;
}

/** Violation rows straight from the files: count per event, type and action; blocked messages per event. */
async function violationCounts(store: ObjectStore): Promise<{ byType: Map<string, number>; blocked: Map<string, Set<string>> }> {
  const byType = new Map<string, number>();
  const blocked = new Map<string, Set<string>>();
  for (const o of await store.list('violations/')) {
    for (const r of parse((await store.get(o.key))!.toString('utf8'), { columns: true }) as Array<Record<string, string>>) {
      const k = `${r.event}|${r.type}|${r.action}`;
      byType.set(k, (byType.get(k) ?? 0) + 1);
      if (r.action === 'block') blocked.set(r.event!, (blocked.get(r.event!) ?? new Set()).add(r.messageid!));
    }
  }
  return { byType, blocked };
}


const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

describe('the events page', () => {
  let w: ReadWorld;
  let browser: Browser;
  before(async () => {
    const plan = await writePlan(tempDir('events-plan'), PLAN);
    // The collector's clock is the simulator's: messages are received on the read side's "today".
    const clock = new ManualClock(TODAY_MS);
    const c = await startCollector({ plans: { demo: plan } }, { clock });
    const r = await simulate({ url: c.url, writeKey: 'dev', batchSize: 50, concurrency: 4, now: () => clock.now(), ...SIM }, sink());
    assert.equal(r.failed, 0);
    await c.close();
    w = await startReadWorld(c.store, { plans: { demo: plan } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await w?.close();
  });

  it('counts every event name as sent, with its violations and quarantine as the files hold them', async () => {
    const res = await api(w.url, await w.token(), { date_range: '7d' }, { path: '/api/v1/events' });
    assert.equal(res.status, 200);
    const page = res.json as { events: Array<Record<string, any>>; sparkline: { points: number } };
    const sent = sentCounts();
    const shown = new Map(page.events.map((e) => [e.event as string, e]));
    for (const [name, n] of sent) assert.equal(shown.get(name)?.count, n, `count of "${name}"`);
    assert.ok(sent.has('Add To Cart') && sent.has('product viewed by guest'), 'the simulator broke the conventions');

    const files = await violationCounts(w.store);
    assert.ok(files.byType.size > 0 && files.blocked.size > 0, 'violations, some blocked');
    const apiTypes = new Map<string, number>();
    for (const e of page.events) for (const v of e.violations) apiTypes.set(`${e.event}|${v.type}|${v.action}`, v.count);
    assert.deepEqual(apiTypes, files.byType);
    for (const e of page.events) {
      assert.equal(e.quarantined, files.blocked.get(e.event)?.size ?? 0, `quarantined "${e.event}"`);
      if (e.quarantined > 0) assert.match(e.replay, /^tracklake plan replay --tenant demo --from \d{4}-\d{2}-\d{2} --to \d{4}-\d{2}-\d{2}$/);
      if (e.violations.length > 0) assert.ok(e.sample?.message_id && e.sample.message, `a sample for "${e.event}"`);
      assert.equal(e.daily.reduce((a: number, b: number) => a + b, 0), e.count, 'the sparkline adds up to the count');
      assert.equal(e.daily.length, page.sparkline.points);
    }
    assert.equal(shown.get('product viewed')!.planned, true);
    assert.equal(shown.get('Add To Cart')!.planned, false);
    assert.ok(shown.get('Product Viewed')!.conventions.some((c: { kind: string }) => c.kind === 'naming'), 'Title Case breaks the naming rule');
    assert.ok(shown.get('product viewed by guest')!.conventions.some((c: { kind: string }) => c.kind === 'flatten'));
    assert.equal(shown.get('product viewed')!.first_seen, '2026-01-31');
  });

  it('shows the same numbers in a real browser, and no events page to a merchant token', async () => {
    const page = await openDashboard(browser, `${w.url}/?view=events&range=7d&token=${await w.token()}`);
    const rows = await page.$$eval('[data-table="events"] tbody tr[data-event]', (trs) =>
      trs.map((tr) => ({
        event: tr.getAttribute('data-event')!,
        count: Number(tr.querySelector('[data-cell="count"]')!.getAttribute('data-value')),
        quarantined: Number(tr.querySelector('[data-cell="quarantined"]')!.getAttribute('data-value')),
        violations: [...tr.querySelectorAll('[data-violation]')].map((v) => [v.getAttribute('data-violation')!, Number(v.getAttribute('data-value'))] as const),
      })));
    const sent = sentCounts();
    const shown = new Map(rows.map((r) => [r.event, r]));
    for (const [name, n] of sent) assert.equal(shown.get(name)?.count, n, `count of "${name}" on the page`);
    const files = await violationCounts(w.store);
    const onPage = new Map(rows.flatMap((r) => r.violations.map(([k, n]) => [`${r.event}|${k}`, n] as const)));
    assert.deepEqual(onPage, files.byType);
    for (const r of rows) assert.equal(r.quarantined, files.blocked.get(r.event)?.size ?? 0);
    assert.match(await page.$eval('#events-summary', (e) => e.textContent!), /event names, \d+ with violations/);

    const merchant = await openDashboard(browser, `${w.url}/?view=events&token=${await w.token({ merchant: 'm1' })}`);
    assert.equal(await merchant.$eval('#views', (e) => e.hasAttribute("hidden")), true, 'no Events button');
    assert.equal(await merchant.$eval('#events-view', (e) => e.hasAttribute("hidden")), true);
    assert.equal(await merchant.$$eval('[data-table="events"] tr', (trs) => trs.length), 0);
    await merchant.close();
    await page.close();
  });

  it('shows live traffic from every collector on the bucket, minute by minute, before anything ships', async () => {
    // Two collectors on one bucket (their own state folders), on one clock: 14:00:10 on the read side's day.
    const start = Date.parse('2026-01-31T14:00:10Z');
    const clock = new ManualClock(start);
    const a = await startCollector({ liveIntervalMs: 50 }, { clock });
    const b = await startCollector({ liveIntervalMs: 50 }, { clock, store: a.store });
    try {
      const sent = new Map<number, number>();
      const send = async (c: typeof a, tag: string) => {
        const r = await sendTagged(c.url, { tag, batches: 2 });
        const minute = clock.now() - (clock.now() % 60_000);
        sent.set(minute, (sent.get(minute) ?? 0) + r.acked.length);
      };
      await send(a, 'live-a1');
      await send(b, 'live-b1');
      clock.advance(3 * 60_000);
      await send(a, 'live-a2');
      // A retry of what was acknowledged is a duplicate: not counted again.
      const again = await post(`${a.url}/v1/batch`, { batch: [{ type: 'track', event: 'view', anonymousId: 'dev', messageId: 'live-a1-0' }] });
      assert.equal(again.status, 200);
      const total = [...sent.values()].reduce((x, y) => x + y, 0);
      assert.equal(total, 60);
      // Nothing shipped yet (the flush interval is an hour): the counts come from the collectors' live files.
      assert.equal((await a.store.list('tracks/')).length, 0);
      const live = await startReadWorld(a.store, {}, clock.now());
      try {
        const token = await live.token();
        let answer: any;
        await until(async () => (answer = (await fetch(`${live.url}/api/v1/live`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json() as Promise<any>))).total === total, 'both collectors\' counts in', 5000);
        assert.equal(answer.collectors, 2);
        assert.equal(answer.minutes.length, 30);
        const byMinute = new Map(answer.minutes.filter((m: any) => m.events > 0).map((m: any) => [Date.parse(m.minute), m.events]));
        assert.deepEqual(byMinute, sent);
        const page = await openDashboard(browser, `${live.url}/?token=${token}`);
        await page.waitForFunction(`document.getElementById('live-note').dataset.total === '${total}'`, { timeout: 10_000 });
        assert.match(await page.$eval('#live-note', (e) => e.textContent!), /^60 in 30 minutes · 2 collectors$/);
        const refused = await fetch(`${live.url}/api/v1/live`, { headers: { authorization: `Bearer ${await live.token({ merchant: 'm1' })}` } });
        assert.equal(refused.status, 403);
        await page.close();
      } finally {
        await live.close();
      }
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('refuses a merchant token and a bad range, as /query does', async () => {
    const merchant = await api(w.url, await w.token({ merchant: 'm1' }), {}, { path: '/api/v1/events' });
    assert.equal(merchant.status, 403);
    assert.equal(merchant.json.code, 'forbidden');
    const bad = await api(w.url, await w.token(), { date_range: 'forever' }, { path: '/api/v1/events' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, 'invalid_query');
    assert.equal((await api(w.url, undefined, {}, { path: '/api/v1/events' })).status, 401);
  });
});
