/** The query API over a read cache of simulated data, against an independent computation from the files. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { runAggregates } from '../src/jobs/aggregates/job.js';
import { metricSet } from '../src/jobs/aggregates/metrics.js';
import { flow, funnel } from '../src/jobs/sessions/funnel.js';
import { runSessions } from '../src/jobs/sessions/job.js';
import { createToken } from '../src/query/tokens.js';
import { TRACK_COLUMNS } from '../src/tracking/columns.js';
import { toCsv } from '../src/tracking/csv.js';
import { readRows, silent } from './helpers.js';
import { api, DAYS, expectedCounts, type ReadWorld, sessionRows, simulatedStore, startReadWorld } from './read-fixture.js';

describe('the query API', () => {
  let w: ReadWorld;
  let token: string;
  before(async () => {
    const { store } = await simulatedStore();
    w = await startReadWorld(store);
    token = await w.token();
  });
  after(() => w?.close());

  it('works on simulated traffic that bounces as shops see (a third to a half of sessions), more on phones', async () => {
    const sessions = (await sessionRows(w.store)).filter((s) => s.tenantid === 'demo');
    const share = (xs: Array<Record<string, string>>) => xs.filter((s) => s.bounce === 'true').length / xs.length;
    const all = share(sessions);
    assert.ok(all >= 0.33 && all <= 0.5, `bounce rate ${all}`);
    const by = (k: string) => share(sessions.filter((s) => s.devicetype === k));
    assert.ok(by('MOBILE') > by('DESKTOP') && by('DESKTOP') > by('APP'), `by device: ${['MOBILE', 'DESKTOP', 'APP'].map(by)}`);
    // Sessions that never reach a product, and logins partway through a session.
    assert.ok(sessions.filter((s) => s.bounce === 'false' && Number(s.views) === 0).length > 0, 'sessions without a product view');
    const byDevice = new Map<string, Array<Record<string, string>>>();
    for (const r of await readRows(w.store)) if (r.tenantid === 'demo') byDevice.set(r.deviceid!, [...(byDevice.get(r.deviceid!) ?? []), r]);
    const loginsInSession = [...byDevice.values()].filter((rs) => {
      rs.sort((a, b) => Number(a.time) - Number(b.time));
      return rs.some((r, i) => i > 0 && r.accountid && !rs[i - 1]!.accountid && Number(r.time) - Number(rs[i - 1]!.time) < 30 * 60_000);
    });
    assert.ok(loginsInSession.length > 0, 'a login partway through a session');
  });

  it('reads computed days from the aggregates and the newest day from its tracking files', async () => {
    assert.equal(w.cache.computedThrough.aggregates, '2026-01-30');
    const expected = await expectedCounts(w.store, (r) => r.day);
    const r = await api(w.url, token, { metrics: ['view', 'share', 'chat'], date_range: [DAYS[0], DAYS[2]], dimensions: ['time:day'] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.results, DAYS.map((d) => ({ dimensions: [d], metrics: [expected.get(d)!.view, expected.get(d)!.share, expected.get(d)!.chat] })));
    assert.equal(r.json.meta.computed_through, '2026-01-30');
    assert.ok(expected.get(DAYS[2]!)!.view > 0, 'the tail day has data');
  });

  it('breaks views down by product, biggest first, with total_rows, limit and offset', async () => {
    const expected = await expectedCounts(w.store, (r) => `${r.merchantid ?? ''}|${r.productid}`);
    const rows = [...expected].map(([k, c]) => ({ merchant: k.split('|')[0]!, product: k.split('|')[1]!, view: c.view })).filter((x) => x.view > 0);
    rows.sort((a, b) => b.view - a.view || (a.merchant < b.merchant ? -1 : a.merchant > b.merchant ? 1 : 0) || (a.product < b.product ? -1 : a.product > b.product ? 1 : 0));
    const r = await api(w.url, token, { metrics: ['view'], date_range: 'all', dimensions: ['merchant', 'product'], limit: 5, offset: 2 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.meta.total_rows, rows.length);
    assert.deepEqual(r.json.results, rows.slice(2, 7).map((x) => ({ dimensions: [x.merchant, x.product], metrics: [x.view] })));
  });

  it('counts sessions, bounce rate and duration from the session files', async () => {
    const sessions = (await sessionRows(w.store)).filter((s) => s.tenantid === 'demo');
    const r = await api(w.url, token, { metrics: ['sessions', 'bounce_rate', 'avg_session_seconds', 'events'], date_range: 'all' });
    assert.equal(r.status, 200, r.text);
    const [n, bounce, avg, events] = r.json.results[0].metrics as number[];
    assert.equal(n, sessions.length);
    assert.ok(Math.abs(bounce! - sessions.filter((s) => s.bounce === 'true').length / sessions.length) < 1e-9);
    assert.ok(Math.abs(avg! - sessions.reduce((t, s) => t + Number(s.duration), 0) / sessions.length / 1000) < 1e-6);
    assert.equal(events, sessions.reduce((t, s) => t + Number(s.events), 0));
    const bySource = await api(w.url, token, { metrics: ['sessions'], date_range: 'all', dimensions: ['source'] });
    const counts = new Map<string, number>();
    for (const s of sessions) counts.set(s.source ?? '', (counts.get(s.source ?? '') ?? 0) + 1);
    assert.deepEqual(new Map(bySource.json.results.map((x: any) => [x.dimensions[0], x.metrics[0]])), counts);
  });

  it('joins aggregate and session metrics of one query on their dimensions', async () => {
    const both = await api(w.url, token, { metrics: ['view', 'sessions'], date_range: 'all', dimensions: ['time:day'] });
    assert.equal(both.status, 200, both.text);
    const views = await api(w.url, token, { metrics: ['view'], date_range: 'all', dimensions: ['time:day'] });
    const sessions = await api(w.url, token, { metrics: ['sessions'], date_range: 'all', dimensions: ['time:day'] });
    const s = new Map(sessions.json.results.map((r: any) => [r.dimensions[0], r.metrics[0]]));
    assert.deepEqual(both.json.results, views.json.results.map((r: any) => ({ dimensions: r.dimensions, metrics: [r.metrics[0], s.get(r.dimensions[0]) ?? 0] })));
    assert.equal(both.json.meta.computed_through, '2026-01-30', 'the earlier of the two families');
  });

  it('compares with the previous period, day by day', async () => {
    const expected = await expectedCounts(w.store, (r) => r.day);
    const r = await api(w.url, token, { metrics: ['view'], date_range: [DAYS[1], DAYS[1]], dimensions: ['time:day'], compare: 'previous_period' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.results, [{ dimensions: [DAYS[1]], metrics: [expected.get(DAYS[1]!)!.view], comparison: [expected.get(DAYS[0]!)!.view] }]);
  });

  it('filters, and takes SQL-like filter values as plain values', async () => {
    const expected = await expectedCounts(w.store, (r) => r.productid);
    const [product, counts] = [...expected].sort((a, b) => b[1].view - a[1].view)[0]!;
    const r = await api(w.url, token, { metrics: ['view'], date_range: 'all', filters: [['is', 'product', [product]]] });
    assert.deepEqual(r.json.results[0].metrics, [counts.view]);
    const all = [...expected.values()].reduce((t, c) => t + c.view, 0);
    const not = await api(w.url, token, { metrics: ['view'], date_range: 'all', filters: [['is_not', 'product', [product]]] });
    assert.deepEqual(not.json.results[0].metrics, [all - counts.view]);
    const sneaky = await api(w.url, token, { metrics: ['view'], date_range: 'all', dimensions: ['product'], filters: [['is', 'product', ["x' OR '1'='1", "'); DROP TABLE agg; --"]]] });
    assert.equal(sneaky.status, 200, sneaky.text);
    assert.deepEqual(sneaky.json.results, []);
    assert.equal((await api(w.url, token, { metrics: ['view'], date_range: 'all' })).json.results[0].metrics[0], all, 'the cache is intact');
  });

  it('filters sessions by a product: the sessions with an event of it', async () => {
    const facts = parse((await w.store.get(`track_facts/2026/01/30/track_facts.csv`))!.toString('utf8'), { columns: true }) as Array<Record<string, string>>;
    const product = facts.find((f) => f.productid)!.productid!;
    const r = await api(w.url, token, { metrics: ['sessions'], date_range: [DAYS[1], DAYS[1]], filters: [['is', 'product', [product]]] });
    assert.equal(r.status, 200, r.text);
    const day = (await sessionRows(w.store)).filter((s) => s.day === DAYS[1]).map((s) => s.session_id);
    const withProduct = new Set<string>();
    for (const d of ['2026/01/30', '2026/01/31']) {
      for (const f of parse((await w.store.get(`track_facts/${d}/track_facts.csv`))!.toString('utf8'), { columns: true }) as Array<Record<string, string>>) {
        if (f.productid === product) withProduct.add(f.session_id!);
      }
    }
    assert.equal(r.json.results[0].metrics[0], day.filter((id) => withProduct.has(id!)).length);
    assert.ok(r.json.results[0].metrics[0] > 0);
  });

  it('returns CSV for Accept: text/csv', async () => {
    const json = await api(w.url, token, { metrics: ['view', 'chat'], date_range: 'all', dimensions: ['product'], limit: 10 });
    const csv = await api(w.url, token, { metrics: ['view', 'chat'], date_range: 'all', dimensions: ['product'], limit: 10 }, { accept: 'text/csv' });
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type')!, /^text\/csv/);
    assert.equal(csv.text, toCsv(['product', 'view', 'chat'], json.json.results.map((r: any) => [...r.dimensions, ...r.metrics])));
  });

  it('limits a merchant token to its merchant in every endpoint', async () => {
    const expected = await expectedCounts(w.store, (r) => r.merchantid || undefined);
    const [merchant, counts] = [...expected].sort((a, b) => b[1].view - a[1].view)[0]!;
    const mt = await w.token({ merchant });
    const r = await api(w.url, mt, { metrics: ['view', 'share', 'chat'], date_range: 'all', dimensions: ['merchant'] });
    assert.deepEqual(r.json.results, [{ dimensions: [merchant], metrics: [counts.view, counts.share, counts.chat] }]);
    assert.deepEqual(r.json.query.filters, [['is', 'merchant', [merchant]]]);
    const other = [...expected.keys()].find((m) => m !== merchant)!;
    assert.equal((await api(w.url, mt, { metrics: ['view'], filters: [['is', 'merchant', [other]]] })).status, 403);
    assert.equal((await api(w.url, mt, { metrics: ['sessions'] })).status, 403);
    assert.equal((await api(w.url, mt, { steps: ['view', 'chat'], filters: [['is', 'merchant', [other]]] }, { path: '/api/v1/funnel' })).status, 403);
    // Its funnel counts only its own rows: no more sessions view its products than the tenant's funnel filtered to it.
    const own = await api(w.url, mt, { steps: ['view', 'chat'], date_range: 'all' }, { path: '/api/v1/funnel' });
    const filtered = await api(w.url, token, { steps: ['view', 'chat'], date_range: 'all', filters: [['is', 'merchant', [merchant]]] }, { path: '/api/v1/funnel' });
    assert.deepEqual(own.json.steps, filtered.json.steps);
    const meta = await fetch(`${w.url}/api/v1/meta`, { headers: { authorization: `Bearer ${mt}` } }).then((x) => x.json() as Promise<any>);
    assert.equal(meta.merchant, merchant);
    assert.deepEqual(meta.metrics.sessions, []);
  });

  it('answers funnels and flows as tracklake funnel does', async () => {
    const steps = ['load', 'view', 'chat', 'order'];
    const r = await api(w.url, token, { steps, date_range: 'all' }, { path: '/api/v1/funnel' });
    assert.equal(r.status, 200, r.text);
    const cli = await funnel(w.store, { from: '2025-12-28', to: DAYS[2]!, steps, tenant: 'demo' });
    assert.deepEqual(r.json.steps, cli.map((s) => ({ event: s.step, sessions: s.sessions, conversion: s.conversion })));
    assert.ok(r.json.steps[0].sessions > 0);
    const f = await api(w.url, token, { from: 'view', date_range: 'all', limit: 5 }, { path: '/api/v1/flow' });
    assert.equal(f.status, 200, f.text);
    assert.deepEqual(f.json.paths, await flow(w.store, { from: '2025-12-28', to: DAYS[2]!, event: 'view', tenant: 'demo', limit: 5 }));
  });

  it('refuses bad tokens with 401 and bad queries with 400, naming the problem', async () => {
    const q = { metrics: ['view'] };
    const missing = await api(w.url, undefined, q);
    assert.equal(missing.status, 401);
    assert.deepEqual([missing.json.success, missing.json.code], [false, 'missing_token']);
    const forged = await createToken({ tenant: 'demo' }, 3600, new TextEncoder().encode('another-secret-of-at-least-32-bytes!!'), w.clock);
    assert.equal((await api(w.url, forged, q)).json.code, 'invalid_token');
    assert.equal((await api(w.url, 'not.a.jwt', q)).json.code, 'invalid_token');
    const expired = await w.token({}, 60);
    w.clock.advance(120_000);
    const exp = await api(w.url, expired, q);
    w.clock.advance(-120_000);
    assert.deepEqual([exp.status, exp.json.code], [401, 'expired_token']);
    const stranger = await w.token({ tenant: 'nobody' });
    assert.deepEqual([(await api(w.url, stranger, q)).status], [403]);
    const cases: Array<[unknown, RegExp]> = [
      [{ metrics: ['views'] }, /Unknown metric "views"/],
      [{ metrics: ['view'], date_range: 'lastweek' }, /date_range/],
      [{ metrics: ['view'], date_range: ['2026-02-30', '2026-03-01'] }, /date_range/],
      [{ metrics: ['view'], limit: 10_001 }, /limit/],
      [{ metrics: ['view'], dimensions: ['source'] }, /no dimension "source"/],
    ];
    for (const [body, message] of cases) {
      const r = await api(w.url, token, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.code, 'invalid_query');
      assert.match(r.json.message, message);
    }
    const notJson = await api(w.url, token, undefined, { raw: '{"metrics": [' });
    assert.deepEqual([notJson.status, notJson.json.code], [400, 'invalid_query']);
  });

  it('sees late tracking files of the newest day, and the day once the aggregate job computes it', async () => {
    const q = { metrics: ['view'], date_range: [DAYS[2], DAYS[2]] };
    const before = (await api(w.url, token, q)).json.results[0].metrics[0] as number;
    const row = Object.fromEntries(TRACK_COLUMNS.map((c) => [c, null])) as Record<string, unknown>;
    Object.assign(row, { time: Date.parse('2026-01-31T17:00:00Z'), tenantid: 'demo', deviceid: 'late-device', merchantid: 'm-late', productid: 'p-late', event: 'view', bot: false, devicetype: 'DESKTOP', source: 'DIRECT' });
    await w.store.put('tracks/2026/01/31/late-000000000001.csv', toCsv(TRACK_COLUMNS, [TRACK_COLUMNS.map((c) => row[c] as string | number | boolean | null)]));
    const refreshed = await w.cache.refresh();
    assert.equal(refreshed.tailFiles, 1);
    assert.equal((await api(w.url, token, q)).json.results[0].metrics[0], before + 1);
    await runAggregates([DAYS[2]!], { store: w.store, metrics: metricSet(), logger: silent });
    const after = await w.cache.refresh();
    assert.equal(after.aggregateDays, 1);
    assert.equal(w.cache.computedThrough.aggregates, DAYS[2]);
    assert.equal((await api(w.url, token, q)).json.results[0].metrics[0], before + 1, 'not counted twice');
    assert.equal((await w.cache.refresh()).tailFiles, 0, 'nothing to do when nothing changed');
  });
});

describe('the newest days before the nightly run', () => {
  it('count sessions from the tracking files with the sessions job itself: the numbers it then writes', async () => {
    const { store } = await simulatedStore(3000, DAYS.slice(0, 2));
    const w = await startReadWorld(store);
    try {
      const token = await w.token();
      assert.equal(w.cache.computedThrough.sessions, DAYS[1]);
      const queries = [
        { metrics: ['sessions', 'bounce_rate', 'avg_session_seconds', 'events'], date_range: 'all', dimensions: ['time:day'] },
        { metrics: ['sessions'], date_range: [DAYS[2], DAYS[2]], dimensions: ['source', 'devicetype'] },
      ];
      const funnelBody = { steps: ['load', 'view', 'chat'], date_range: [DAYS[1], DAYS[2]] };
      const before = [...(await Promise.all(queries.map((q) => api(w.url, token, q)))).map((r) => r.json.results), (await api(w.url, token, funnelBody, { path: '/api/v1/funnel' })).json.steps];
      assert.ok(before[0].some((r: { dimensions: string[] }) => r.dimensions[0] === DAYS[2]), 'the newest day has sessions before the job ran');
      assert.equal(w.cache.computedThrough.sessions, DAYS[1]);
      assert.deepEqual(await store.list('sessions/2026/01/31/'), [], 'nothing written to the bucket');
      // The nightly run for the day: the cache takes its files, and every answer stays the same.
      await runSessions([DAYS[2]!], { store, logger: silent, inactivityMinutes: 30, includeBots: false, lookbackDays: 35 });
      const r = await w.cache.refresh();
      assert.deepEqual([r.sessionDays, w.cache.computedThrough.sessions], [1, DAYS[2]]);
      const after = [...(await Promise.all(queries.map((q) => api(w.url, token, q)))).map((x) => x.json.results), (await api(w.url, token, funnelBody, { path: '/api/v1/funnel' })).json.steps];
      assert.deepEqual(after, before);
    } finally {
      await w.close();
    }
  });
});

describe('the per-token rate limit', () => {
  it('answers 429 with Retry-After past the limit, for that token only', async () => {
    const { store } = await simulatedStore(200);
    const w = await startReadWorld(store, { apiRateLimit: 3 });
    try {
      const a = await w.token();
      const b = await w.token({ merchant: 'm1' });
      for (let i = 0; i < 3; i++) assert.equal((await api(w.url, a, { metrics: ['view'] })).status, 200);
      const limited = await api(w.url, a, { metrics: ['view'] });
      assert.deepEqual([limited.status, limited.json.code], [429, 'rate_limited']);
      assert.ok(Number(limited.headers.get('retry-after')) > 0);
      assert.equal((await api(w.url, b, { metrics: ['view'] })).status, 200, 'another token has its own budget');
    } finally {
      await w.close();
    }
  });
});
