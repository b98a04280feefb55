/**
 * bench:aggregate's high-cardinality steady state: a lake with a year of history on a large catalogue, then
 * the nightly run of one new day on the 20th of a month, against the floor (bench/agg-run.ts), each in a
 * process of its own so each peak resident memory is its own.
 *
 * The lake: BENCH_STEADY_ROWS (default 3 200 000) tracking rows a day over a catalogue of 8 000 000
 * products (a product belongs to one merchant of 20 000; popularity skewed: product = 8M·u²), giving about
 * 2 000 000 view keys a day. The month's state is rolled from 19 days of such draws; the year's and the
 * overall states are synthesised at their real size (every product with a value from its popularity). The
 * earlier days' daily files and the earlier months' and years' states are small placeholders: the nightly
 * run lists them (for their ETags) but never reads them, and neither does the floor.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { paths } from '../src/jobs/aggregates/rollup.js';
import { builtFrom } from '../src/jobs/outputs.js';
import { dayPath, dayStartMs } from '../src/lib/dates.js';
import { LocalStore } from '../src/storage/local.js';
import { TRACK_COLUMNS } from '../src/tracking/columns.js';
import { copyCsv, side } from './lake.js';

const ROWS = Number(process.env.BENCH_STEADY_ROWS ?? 3_200_000);
const CATALOGUE = 8_000_000;
const SHARES: Record<string, number> = { view: 0.7, share: 0.1, chat: 0.1 }; // the rest: page loads without a product
const MONTH = '2026-11';
const DAYS = ['2026-11-20', '2026-11-21', '2026-11-22'];

async function trackingDay(c: DuckDBConnection, root: string, day: string, seed: number): Promise<void> {
  const start = dayStartMs(day);
  const cols: Record<string, string> = {
    time: `${start} + (hash(i, ${seed}) % 86400000)::BIGINT`, tenantid: "'t1'", correlationid: 'NULL', deviceid: `'d' || (hash(i, ${seed}, 2) % 1500000)::BIGINT`,
    accountid: 'NULL', merchantid: "CASE WHEN e <> 'load' THEN 'm' || (p % 20000) END", productid: "CASE WHEN e <> 'load' THEN 'p' || p END", page: "'Product page'", event: 'e',
    value: 'NULL', ip: "'198.51.100.7'", long: 'NULL', lat: 'NULL', referer: "'https://www.google.com/'", bot: 'false',
    ua: "'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'",
    url: "'https://shop.example/p/' || p", impressions: 'NULL', devicetype: "'MOBILE'", source: "'SEO'",
  };
  const events = `SELECT i, floor(${CATALOGUE} * pow(random(), 2))::BIGINT AS p, CASE WHEN r < 0.7 THEN 'view' WHEN r < 0.8 THEN 'share' WHEN r < 0.9 THEN 'chat' ELSE 'load' END AS e
    FROM (SELECT i, random() AS r FROM range(${ROWS}) t(i))`;
  await c.run(`SELECT setseed(${seed / 100})`);
  await copyCsv(c, `SELECT ${TRACK_COLUMNS.map((k) => `${cols[k]} AS "${k}"`).join(', ')} FROM (${events}) ORDER BY time`, path.join(root, 'tracks', dayPath(day), 'n1-000000000001.csv'));
}

/** The lake before the 20th: states at real size, placeholders below them, and the records that vouch for them. */
async function lake(root: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  for (const [i, day] of DAYS.entries()) await trackingDay(c, root, day, 10 + i);
  const order = 'ORDER BY tenantid, merchantid, productid';
  for (const [metric, share] of Object.entries(SHARES)) {
    // The month so far: 19 days of draws, each key's first day its earliest draw.
    await copyCsv(c, `SELECT min(${dayStartMs(`${MONTH}-01`)} + d * 86400000)::BIGINT AS time, 't1' AS tenantid, 'm' || (p % 20000) AS merchantid, 'p' || p AS productid, count(*) AS value
      FROM (SELECT floor(${CATALOGUE} * pow(random(), 2))::BIGINT AS p, (random() * 18.999)::INT AS d FROM range(${Math.round(19 * ROWS * share)})) GROUP BY p ${order}`,
    path.join(root, paths.monthlyState(MONTH, metric)));
    // The year and all time: every product's expected count from its popularity (density 1 / (2·sqrt(p·C))).
    for (const [file, days, first] of [[paths.yearlyState('2026', metric), 323, '2026-01-01'], [paths.overall(metric), 1058, '2024-01-01']] as const) {
      await copyCsv(c, `SELECT ${dayStartMs(first)} + (hash(p, 3) % ${days - 20})::BIGINT * 86400000 AS time, 't1' AS tenantid, 'm' || (p % 20000) AS merchantid, 'p' || p AS productid, v AS value
        FROM (SELECT p, round(${days * ROWS * share} / (2 * sqrt((p + 0.5) * ${CATALOGUE})) * (0.7 + 0.6 * random()))::BIGINT AS v FROM range(${CATALOGUE}) t(p)) WHERE v > 0 ${order}`,
      path.join(root, file));
    }
    const placeholder = (time: number) => `SELECT ${time}::BIGINT AS time, 't1' AS tenantid, 'm1' AS merchantid, 'p1' AS productid, 1 AS value`;
    for (let d = 1; d < 20; d++) await copyCsv(c, placeholder(dayStartMs(`${MONTH}-${String(d).padStart(2, '0')}`)), path.join(root, paths.daily(`${MONTH}-${String(d).padStart(2, '0')}`, metric)));
    for (let m = 1; m < 11; m++) await copyCsv(c, placeholder(dayStartMs(`2026-${String(m).padStart(2, '0')}-01`)), path.join(root, paths.monthlyState(`2026-${String(m).padStart(2, '0')}`, metric)));
    for (const y of ['2024', '2025']) await copyCsv(c, placeholder(dayStartMs(`${y}-01-01`)), path.join(root, paths.yearlyState(y, metric)));
  }
  c.closeSync();
  db.closeSync();
  // The records a run of the job would have left (rollup.ts, version 2): each state with the files below it.
  const store = new LocalStore(root);
  const record = async (key: string, stateKey: (m: string) => string, folder: string, below: string) => {
    const states = new Map((await store.list(folder)).map((o) => [o.key, o.etag]));
    const files = await store.list(below);
    const metrics = Object.fromEntries(Object.keys(SHARES).map((m) => [m, builtFrom(states.get(stateKey(m)), files.filter((f) => f.key.endsWith(`/${m}.csv`)))]));
    await store.put(key, `${JSON.stringify({ version: 2, metrics })}\n`);
  };
  await record(paths.monthlyInputs(MONTH), (m) => paths.monthlyState(MONTH, m), `aggregates/_state/monthly/${MONTH.replace('-', '/')}/`, `aggregates/daily/${MONTH.replace('-', '/')}/`);
  await record(paths.yearlyInputs('2026'), (m) => paths.yearlyState('2026', m), 'aggregates/_state/yearly/2026/', 'aggregates/_state/monthly/2026/');
  await record(paths.overallInputs, paths.overall, 'aggregates/overall/', 'aggregates/_state/yearly/');
}

/** The floor's lake: the same tracking files and states, hard-linked (both sides replace files, never write into them). */
async function linkLake(from: string, to: string): Promise<void> {
  for (const rel of [...DAYS.map((d) => `tracks/${dayPath(d)}/n1-000000000001.csv`), ...Object.keys(SHARES).flatMap((m) => [paths.monthlyState(MONTH, m), paths.yearlyState('2026', m), paths.overall(m)])]) {
    await fs.mkdir(path.dirname(path.join(to, rel)), { recursive: true });
    await fs.link(path.join(from, rel), path.join(to, rel));
  }
}

/** Generates the lake under work, runs both sides on two new days (and once on one thread), prints and returns a/b. */
export async function steadyState(work: string): Promise<number> {
  const [jobRoot, floorRoot] = [path.join(work, 'steady-job'), path.join(work, 'steady-floor')];
  console.log(`\nsteady state: ${ROWS.toLocaleString()} rows a day, a catalogue of ${CATALOGUE.toLocaleString()} products; generating the lake …`);
  let t = performance.now();
  await lake(jobRoot);
  await linkLake(jobRoot, floorRoot);
  const keys = (await fs.readFile(path.join(jobRoot, paths.monthlyState(MONTH, 'view')), 'utf8')).split('\n').length - 2;
  const size = async (rel: string) => ((await fs.stat(path.join(jobRoot, rel))).size / 1e6).toFixed(0);
  console.log(`  ${((performance.now() - t) / 1000).toFixed(0)} s; view keys: month so far ${keys.toLocaleString()}; view states ${await size(paths.monthlyState(MONTH, 'view'))} MB (month), ${await size(paths.yearlyState('2026', 'view'))} MB (year), ${await size(paths.overall('view'))} MB (overall)`);
  let a = Infinity;
  let b = Infinity;
  for (const day of DAYS.slice(0, 2)) {
    const job = side('job', jobRoot, day);
    const floor = side('floor', floorRoot, day);
    const dayKeys = (await fs.readFile(path.join(jobRoot, paths.daily(day, 'view')), 'utf8')).split('\n').length - 2;
    console.log(`  ${day} (${dayKeys.toLocaleString()} view keys): (a) tracklake aggregate ${job.seconds.toFixed(2)} s, peak ${job.peakMiB} MiB; (b) floor ${floor.seconds.toFixed(2)} s, peak ${floor.peakMiB} MiB`);
    a = Math.min(a, job.seconds);
    b = Math.min(b, floor.seconds);
  }
  t = performance.now();
  const one = side('job', jobRoot, DAYS[2]!, 1);
  const oneFloor = side('floor', floorRoot, DAYS[2]!, 1);
  console.log(`  ${DAYS[2]} on one DuckDB thread: (a) ${one.seconds.toFixed(2)} s, peak ${one.peakMiB} MiB; (b) ${oneFloor.seconds.toFixed(2)} s; two threads gain ${(one.seconds / a).toFixed(2)}x (job), ${(oneFloor.seconds / b).toFixed(2)}x (floor)`);
  console.log(`  best (a) ${a.toFixed(2)} s = ${Math.round(ROWS / a).toLocaleString()} rows/s; best (b) ${b.toFixed(2)} s`);
  const r = a / b;
  console.log(`ratio a/b = ${r.toFixed(2)} (target ≤ 1.30) ${r <= 1.3 ? 'PASS' : 'FAIL'}`);
  return r;
}
