import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { publicSql, rebuildRollups, runAggregates, paths } from '../src/jobs/aggregates/job.js';
import { Engine } from '../src/jobs/engine.js';
import { promises as fs } from 'node:fs';
import { metricSet, type MetricDef } from '../src/jobs/aggregates/metrics.js';
import { pendingDays } from '../src/jobs/aggregates/pending.js';
import { prng } from '../src/segment/simulator.js';
import { LocalStore } from '../src/storage/local.js';
import type { ObjectStore } from '../src/storage/store.js';
import { TRACK_COLUMNS, type Cell } from '../src/tracking/columns.js';
import { toCsv } from '../src/tracking/csv.js';
import { dayStartMs } from '../src/lib/dates.js';
import { randomFileSteps, silent, tempDir } from './helpers.js';

type Row = Record<(typeof TRACK_COLUMNS)[number], Cell>;

/** Generated tracking rows with everything the job must handle. */
function generate(day: string, n: number, seed: number): Row[] {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const start = dayStartMs(day);
  return Array.from({ length: n }, () => ({
    time: start + Math.floor(rnd() * 86_400_000),
    tenantid: pick(['t1', 't2', 'é-tenant']),
    correlationid: null,
    deviceid: `d${Math.floor(rnd() * 20)}`,
    accountid: null,
    merchantid: pick(['m1', 'm2', null, 'm,"3"']),
    productid: pick(['p1', 'p2', 'P2', 'p\n4', null, 'ü']),
    page: pick(['Home', 'a,b', 'say "x"']),
    event: pick(['view', 'view', 'share', 'chat', 'load', 'sales', 'order']),
    value: pick([null, 1.5, 10, 0.1]),
    ip: null, long: null, lat: null, referer: null,
    bot: rnd() < 0.15,
    ua: 'Mozilla/5.0 (X11; Linux x86_64), "quoted"',
    url: null, impressions: null, devicetype: 'DESKTOP', source: 'DIRECT',
  }));
}

async function writeTracks(store: ObjectStore, key: string, rows: Row[]): Promise<void> {
  await store.put(key, toCsv(TRACK_COLUMNS, rows.map((r) => TRACK_COLUMNS.map((c) => r[c]))));
}

/** The independent computation: plain TypeScript over the generated rows. */
function expected(rows: Row[], metric: MetricDef, time: (key: string, first: number) => number): string[][] {
  // Per key and day first: a key "has the metric" on a day when that day's value is non-zero.
  const daily = new Map<string, number>();
  for (const r of rows) {
    if (!r.productid || r.bot === true || !metric.events.includes(r.event as string)) continue;
    const k = JSON.stringify([r.tenantid, r.merchantid ?? '', r.productid, dayStartMs(new Date(r.time as number).toISOString().slice(0, 10))]);
    daily.set(k, (daily.get(k) ?? 0) + (metric.measure === 'count' ? 1 : ((r.value as number | null) ?? 0)));
  }
  const acc = new Map<string, { v: number; first: number }>();
  for (const [k, v] of daily) {
    if (Math.abs(v) < 1e-9) continue;
    const [t, m, p, day] = JSON.parse(k) as [string, string, string, number];
    const key = JSON.stringify([t, m, p]);
    const a = acc.get(key) ?? { v: 0, first: Infinity };
    a.v += v;
    a.first = Math.min(a.first, day);
    acc.set(key, a);
  }
  const out = [...acc].filter(([, a]) => Math.abs(a.v) > 1e-9).map(([k, a]) => ({ key: JSON.parse(k) as [string, string, string], ...a }));
  out.sort((x, y) => Buffer.compare(Buffer.from(x.key.join('\u0000')), Buffer.from(y.key.join('\u0000'))));
  return out.map((r) => [String(time(r.key[0], r.first)), ...r.key, String(Math.round(r.v * 1e6) / 1e6)]);
}

async function read(store: ObjectStore, key: string): Promise<string[][]> {
  const body = await store.get(key);
  assert.ok(body, `${key} is missing`);
  const rows = parse(body.toString('utf8')) as string[][];
  assert.deepEqual(rows[0], ['time', 'tenantid', 'merchantid', 'productid', 'value']);
  return rows.slice(1).map((r) => [r[0]!, r[1]!, r[2]!, r[3]!, String(Math.round(Number(r[4]) * 1e6) / 1e6)]);
}

const SALES: MetricDef = { name: 'sales', events: ['sales'], measure: 'sum' };
const metrics = metricSet([SALES]);

describe('the aggregate job', () => {
  it('computes daily, monthly, yearly and overall files that match an independent computation', async () => {
    const store = new LocalStore(path.join(tempDir('agg'), 'data'));
    // A year boundary and a month boundary; several files per day.
    const days = ['2025-12-31', '2026-01-01', '2026-01-31', '2026-02-01'];
    const byDay = new Map<string, Row[]>();
    for (const [i, day] of days.entries()) {
      const a = generate(day, 400, i * 2 + 1);
      const b = generate(day, 300, i * 2 + 2);
      await writeTracks(store, `tracks/${day.replaceAll('-', '/')}/n1-000000000001.csv`, a);
      await writeTracks(store, `tracks/${day.replaceAll('-', '/')}/n2-000000000007.csv`, b);
      byDay.set(day, [...a, ...b]);
    }
    const run = await runAggregates(days, { store, metrics, logger: silent });
    assert.deepEqual(run.months, ['2025-12', '2026-01', '2026-02']);
    assert.deepEqual(run.years, ['2025', '2026']);
    for (const m of metrics) {
      for (const day of days) {
        assert.deepEqual(await read(store, paths.daily(day, m.name)), expected(byDay.get(day)!, m, () => dayStartMs(day)), `${m.name} ${day}`);
      }
      const jan = [...byDay.get('2026-01-01')!, ...byDay.get('2026-01-31')!];
      assert.deepEqual(await read(store, paths.monthly('2026-01', m.name)), expected(jan, m, () => dayStartMs('2026-01-01')), `${m.name} monthly`);
      const y2026 = [...jan, ...byDay.get('2026-02-01')!];
      assert.deepEqual(await read(store, paths.yearly('2026', m.name)), expected(y2026, m, () => dayStartMs('2026-01-01')), `${m.name} yearly`);
      const all = days.flatMap((d) => byDay.get(d)!);
      assert.deepEqual(await read(store, paths.overall(m.name)), expected(all, m, (_k, first) => first), `${m.name} overall`);
    }
  });

  it('rewrites nothing on an unchanged re-run, and --force produces byte-identical files', async () => {
    const store = new LocalStore(path.join(tempDir('agg'), 'data'));
    await writeTracks(store, 'tracks/2026/03/10/n1-000000000001.csv', generate('2026-03-10', 500, 9));
    await runAggregates(['2026-03-10'], { store, metrics, logger: silent });
    const snapshot = async () => Object.fromEntries(await Promise.all((await store.list('aggregates/')).map(async (o) => [o.key, (await store.get(o.key))!.toString()] as const)));
    const before = await snapshot();
    const again = await runAggregates(['2026-03-10'], { store, metrics, logger: silent });
    assert.equal(again.filesWritten, 0);
    assert.equal(again.days[0]!.status, 'unchanged');
    const forced = await runAggregates(['2026-03-10'], { store, metrics, logger: silent, force: true });
    assert.equal(forced.days[0]!.status, 'computed');
    assert.equal(forced.filesWritten, 0, 'a forced recompute wrote different bytes');
    assert.deepEqual(await snapshot(), before);
  });

  it('recomputes a day when a late file lands, and the files above it', async () => {
    const store = new LocalStore(path.join(tempDir('agg'), 'data'));
    const first = generate('2026-03-10', 300, 3);
    await writeTracks(store, 'tracks/2026/03/10/n1-000000000001.csv', first);
    await runAggregates(['2026-03-10'], { store, metrics, logger: silent });
    const late = generate('2026-03-10', 200, 4);
    await writeTracks(store, 'tracks/2026/03/10/n1-000000000002.csv', late);
    assert.deepEqual(await pendingDays(store, '2026-03-20', 35, metrics), ['2026-03-10', '2026-03-19']);
    const run = await runAggregates(['2026-03-10'], { store, metrics, logger: silent });
    assert.equal(run.days[0]!.status, 'computed');
    const view = metrics[0]!;
    assert.deepEqual(await read(store, paths.daily('2026-03-10', 'view')), expected([...first, ...late], view, () => dayStartMs('2026-03-10')));
    assert.deepEqual(await read(store, paths.overall('view')), expected([...first, ...late], view, (_k, f) => f));
  });

  it('catches up a day whose manifest is unreadable, even without tracking files, and no empty day', async () => {
    const store = new LocalStore(path.join(tempDir('agg'), 'data'));
    await store.put(paths.manifest('2026-03-12'), Buffer.from('{ not json'));
    await store.put(paths.manifest('2026-03-14'), Buffer.from('{"version":99}'));
    assert.deepEqual(await pendingDays(store, '2026-03-20', 35, metrics), ['2026-03-12', '2026-03-14', '2026-03-19']);
  });

  it('skips and reports malformed rows and files without the header, counting the rest exactly', async () => {
    const store = new LocalStore(path.join(tempDir('agg'), 'data'));
    const good = generate('2026-03-11', 100, 5);
    const csv = toCsv(TRACK_COLUMNS, good.map((r) => TRACK_COLUMNS.map((c) => r[c])));
    const lines = csv.split('\n');
    const broken = [lines[0], 'not-a-time,t1,,d,,m1,p1,,view,,,,,,false,,,,DESKTOP,DIRECT', '1773187200000,t1,too,few', ...lines.slice(1)].join('\n');
    await store.put('tracks/2026/03/11/n1-000000000001.csv', broken);
    await store.put('tracks/2026/03/11/n1-000000000002.csv', 'a,b,c\n1,2,3\n');
    const run = await runAggregates(['2026-03-11'], { store, metrics, logger: silent });
    const report = run.days[0]!.report;
    assert.equal(report.badRowCount, 2);
    assert.deepEqual(report.badRows.map((b) => [b.key, b.line]), [['tracks/2026/03/11/n1-000000000001.csv', 2], ['tracks/2026/03/11/n1-000000000001.csv', 3]]);
    assert.deepEqual(report.skippedFiles.map((f) => f.key), ['tracks/2026/03/11/n1-000000000002.csv']);
    assert.deepEqual(await read(store, paths.daily('2026-03-11', 'view')), expected(good, metrics[0]!, () => dayStartMs('2026-03-11')));
  });

  it('reads a tracking file with \\r\\n line ends like any other', async () => {
    const store = new LocalStore(path.join(tempDir('agg'), 'data'));
    const good = generate('2026-03-12', 200, 9).filter((r) => !String(r.productid).includes('\n'));
    const csv = toCsv(TRACK_COLUMNS, good.map((r) => TRACK_COLUMNS.map((c) => r[c])));
    await store.put('tracks/2026/03/12/n1-000000000001.csv', csv.replaceAll('\n', '\r\n'));
    const run = await runAggregates(['2026-03-12'], { store, metrics, logger: silent });
    assert.equal(run.days[0]!.report.badRowCount, 0);
    assert.deepEqual(await read(store, paths.daily('2026-03-12', 'view')), expected(good, metrics[0]!, () => dayStartMs('2026-03-12')));
  });

  it('writes header-only files for a day without data', async () => {
    const store = new LocalStore(path.join(tempDir('agg'), 'data'));
    await runAggregates(['2026-03-12'], { store, metrics, logger: silent });
    assert.equal((await store.get(paths.daily('2026-03-12', 'chat')))!.toString(), 'time,tenantid,merchantid,productid,value\n');
  });
});

/** Every aggregate output (public and state files), without the manifests and input records. */
async function outputs(store: ObjectStore): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const o of await store.list('aggregates/')) if (o.key.endsWith('.csv')) out[o.key] = (await store.get(o.key))!.toString('utf8');
  return out;
}

describe('incremental rollups', () => {
  it('give the bytes a rebuild from the daily files gives, over a long random sequence of runs', async () => {
    // Days across a year boundary and a month boundary; keys shared between days, an empty merchant, quoted ids.
    const days = ['2025-12-30', '2025-12-31', '2026-01-01', '2026-01-02', '2026-02-27', '2026-02-28', '2026-03-01'];
    const a = new LocalStore(path.join(tempDir('incr'), 'data'));
    const b = new LocalStore(path.join(tempDir('rebuilt'), 'data'));
    const modes = new Set<string>();
    // A file going away takes keys out of the day, some of them from their first day.
    await randomFileSteps({
      days,
      seed: 99,
      steps: 14,
      maxTouched: 3,
      stores: [a, b],
      add: async (day, step, rnd) => {
        const key = `${paths.tracks(day)}n1-${String(step).padStart(12, '0')}.csv`;
        const rows = generate(day, 30 + Math.floor(rnd() * 40), step * 7 + 1);
        for (const store of [a, b]) await writeTracks(store, key, rows);
        return key;
      },
      check: async (touched, step) => {
        const run = await runAggregates(touched, { store: a, metrics, logger: silent });
        for (const r of run.rollups) modes.add(`${r.metric}:${r.mode}`);
        // The reference: the same days, then every level rolled up from the daily files (the way it always was).
        await runAggregates(touched, { store: b, metrics, logger: silent });
        await rebuildRollups({ store: b, metrics, logger: silent });
        assert.deepEqual(await outputs(a), await outputs(b), `after step ${step} (${touched.join(', ')})`);
      },
    });
    // Both paths were taken: counts incrementally, sums (and keys that left their first day) from the files.
    assert.ok(modes.has('view:incremental') && modes.has('sales:full'), [...modes].join(' '));
  });

  it('give a backfill the bytes of the same days run one by one', async () => {
    const days = ['2026-02-25', '2026-02-26', '2026-02-27', '2026-02-28', '2026-03-01', '2026-03-02', '2026-03-03', '2026-03-04', '2026-03-05'];
    const [backfill, daily] = [new LocalStore(path.join(tempDir('backfill'), 'data')), new LocalStore(path.join(tempDir('daily'), 'data'))];
    for (const [i, day] of days.entries()) for (const store of [backfill, daily]) await writeTracks(store, `${paths.tracks(day)}n1-000000000001.csv`, generate(day, 60, 300 + i));
    const run = await runAggregates(days, { store: backfill, metrics, logger: silent });
    assert.ok(run.rollups.every((r) => r.mode === 'full'), 'nine days: every level rolled from its files');
    for (const day of days) await runAggregates([day], { store: daily, metrics, logger: silent });
    assert.deepEqual(await outputs(backfill), await outputs(daily));
  });

  it('roll up from the files when a level\'s state does not match the files below it', async () => {
    const store = new LocalStore(path.join(tempDir('repair'), 'data'));
    await writeTracks(store, `${paths.tracks('2026-05-01')}n1-000000000001.csv`, generate('2026-05-01', 50, 1));
    await writeTracks(store, `${paths.tracks('2026-05-02')}n1-000000000001.csv`, generate('2026-05-02', 50, 2));
    await runAggregates(['2026-05-01', '2026-05-02'], { store, metrics, logger: silent });
    const good = await outputs(store);
    // A stale month state (as a crash between a day's files and its month's would leave it).
    await store.put(paths.monthlyState('2026-05', 'view'), 'time,tenantid,merchantid,productid,value\n');
    await writeTracks(store, `${paths.tracks('2026-05-02')}n1-000000000002.csv`, []);
    const run = await runAggregates(['2026-05-02'], { store, metrics, logger: silent });
    assert.deepEqual(run.rollups.find((r) => r.level === '2026-05' && r.metric === 'view')?.mode, 'full');
    assert.deepEqual(await outputs(store), good);
  });
});

describe('publishing a period file', () => {
  it('sets every record\'s time and nothing else, with or without quoted fields', async () => {
    const engine = await Engine.open();
    const dir = tempDir('publish');
    const withTime = async (csv: string, time: number) => {
      await fs.writeFile(path.join(dir, 'state.csv'), csv);
      await engine.copyToCsv(publicSql(path.join(dir, 'state.csv'), time), path.join(dir, 'public.csv'));
      return fs.readFile(path.join(dir, 'public.csv'), 'utf8');
    };
    try {
      const header = 'time,tenantid,merchantid,productid,value';
      const plain = `${header}\n1773532800000,t,,p1,3\n1773619200000,t,m,p2,1.5\n`;
      assert.equal(await withTime(plain, 5), `${header}\n5,t,,p1,3\n5,t,m,p2,1.5\n`);
      const quoted = `${header}\n1773532800000,t,,"p,1\n17,x",3\n1773619200000,t,"m ""q""",p2,0.0000000001\n`;
      assert.equal(await withTime(quoted, 5), `${header}\n5,t,,"p,1\n17,x",3\n5,t,"m ""q""",p2,0.0000000001\n`);
      assert.equal(await withTime(`${header}\n`, 5), `${header}\n`);
    } finally {
      engine.close();
    }
  });
});
