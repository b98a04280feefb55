/**
 * bench:sessions' high-cardinality steady state: the nightly run of one new day (BENCH_STEADY_ROWS, default
 * 3 200 000 rows from 1 500 000 devices, 30% of them logged in) after a year of history (an alias map of
 * 2 000 000 links and the per-(user, device) state of 6 000 000 pairs, at their real size; the year's day
 * states are placeholders, listed for their ETags and never read), against the same day after one day of
 * history. Each run in a process of its own (bench/agg-run.ts), with its peak resident memory. The alias map
 * and the user facts are whole-history outputs, rewritten every night: what history adds is their size.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { builtFrom } from '../src/jobs/outputs.js';
import { sessionPaths } from '../src/jobs/sessions/job.js';
import { addDays, dayPath, dayStartMs, daysBetween } from '../src/lib/dates.js';
import { LocalStore } from '../src/storage/local.js';
import { TRACK_COLUMNS } from '../src/tracking/columns.js';
import { copyCsv, side } from './lake.js';

const ROWS = Number(process.env.BENCH_STEADY_ROWS ?? 3_200_000);
const DEVICES = 1_500_000;
const LINKS = 2_000_000;
const PAIRS = 6_000_000;
const DAY = '2026-11-20';
const q = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** A day of visits: devices with 1-12 events minutes apart, a third of them logged in, products skewed. */
async function trackingDay(c: DuckDBConnection, root: string, day: string, seed: number): Promise<void> {
  const start = dayStartMs(day);
  const cols: Record<string, string> = {
    time: 'time', tenantid: "'t1'", correlationid: 'NULL', deviceid: "'d' || dev", accountid: "CASE WHEN hash(dev, 7) % 10 < 3 THEN 'u' || (hash(dev, 8) % 600000)::BIGINT END",
    merchantid: "CASE WHEN e <> 'load' THEN 'm' || (p % 20000) END", productid: "CASE WHEN e <> 'load' THEN 'p' || p END", page: "'Product page'", event: 'e',
    value: 'NULL', ip: "'198.51.100.7'", long: 'NULL', lat: 'NULL', referer: "'https://www.google.com/'", bot: 'false', ua: "'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)'",
    url: "'https://shop.example/p/' || p", impressions: 'NULL', devicetype: "'MOBILE'", source: "'SEO'",
  };
  await c.run(`SELECT setseed(${seed / 100})`);
  const rows = `SELECT (hash(i, ${seed}) % ${DEVICES})::BIGINT AS dev, ${start} + (hash(i // 6, ${seed}) % 82800000)::BIGINT + (i % 6) * 120000 AS time,
      floor(8000000 * pow(random(), 2))::BIGINT AS p, ['view', 'view', 'view', 'view', 'view', 'view', 'view', 'share', 'chat', 'load'][1 + (hash(i, 3) % 10)::BIGINT] AS e
    FROM range(${ROWS}) t(i)`;
  await copyCsv(c, `SELECT ${TRACK_COLUMNS.map((k) => `${cols[k]} AS "${k}"`).join(', ')} FROM (${rows}) ORDER BY time`, path.join(root, 'tracks', dayPath(day), 'n1-000000000001.csv'));
}

/** A lake with the day and the one before; with `history`, a year's alias map and user state at real size. */
async function lake(root: string, history: boolean): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  for (const [i, day] of [addDays(DAY, -1), DAY].entries()) await trackingDay(c, root, day, 20 + i);
  const yearStart = dayStartMs(addDays(DAY, -365));
  if (history) {
    await copyCsv(c, `SELECT 't1' AS tenantid, 'd' || i AS deviceid, 'u' || (hash(i, 8) % 600000)::BIGINT AS userid, ${yearStart} + (hash(i, 9) % 31000000000)::BIGINT AS time
      FROM range(${LINKS}) t(i) ORDER BY tenantid, deviceid`, path.join(root, sessionPaths.aliasMap));
    for (const d of daysBetween(addDays(DAY, -365), addDays(DAY, -2))) {
      await copyCsv(c, `SELECT ${q(d)} AS day, 'user' AS kind, 't1' AS tenantid, 'u1' AS userid, 'd1' AS deviceid, ${dayStartMs(d)}::BIGINT AS first_seen, ${dayStartMs(d)}::BIGINT AS last_seen, 1::BIGINT AS events, 1::BIGINT AS sessions`,
        path.join(root, sessionPaths.state(d)));
    }
  }
  // The day before is computed (its sessions, state and the alias map's new links): the new day is a nightly run.
  side('sessions', root, addDays(DAY, -1));
  if (history) {
    // The year's per-(user, device) state at its real size, and the record a year of runs would have left.
    await copyCsv(c, `SELECT 't1' AS tenantid, CASE WHEN i % 3 = 0 THEN 'u' || (i % 600000) ELSE 'd' || i END AS userid, 'd' || i AS deviceid,
        ${yearStart} + (hash(i, 1) % 15000000000)::BIGINT AS first_seen, ${yearStart} + 15000000000 + (hash(i, 2) % 15000000000)::BIGINT AS last_seen,
        1 + hash(i, 3) % 200 AS events, 1 + hash(i, 4) % 20 AS sessions
      FROM range(${PAIRS}) t(i) ORDER BY tenantid, userid, deviceid`, path.join(root, sessionPaths.userDevices));
    const store = new LocalStore(root);
    const states = (await store.list('sessions/_state/')).filter((x) => x.key.endsWith('/state.csv'));
    const state = (await store.list(sessionPaths.userDevices))[0]!;
    await store.put(sessionPaths.userInputs, `${JSON.stringify({ version: 2, ...builtFrom(state.etag, states) })}\n`);
  }
  c.closeSync();
  db.closeSync();
}

/** Generates both lakes under work, runs the new day on each, prints and returns year/one-day. */
export async function sessionsSteadyState(work: string): Promise<number> {
  console.log(`\nsteady state: ${ROWS.toLocaleString()} rows a day; a year of history: ${LINKS.toLocaleString()} alias links, ${PAIRS.toLocaleString()} (user, device) pairs; generating …`);
  const [year, one] = [path.join(work, 'steady-year'), path.join(work, 'steady-one')];
  await lake(year, true);
  await lake(one, false);
  const size = async (root: string, key: string) => `${((await fs.stat(path.join(root, key)).then((s) => s.size, () => 0)) / 1e6).toFixed(0)} MB`;
  const a = side('sessions', year, DAY);
  const b = side('sessions', one, DAY);
  console.log(`  after a year: ${a.seconds.toFixed(2)} s, peak ${a.peakMiB} MiB (alias map ${await size(year, sessionPaths.aliasMap)}, user state ${await size(year, sessionPaths.userDevices)}, user facts ${await size(year, sessionPaths.userFacts)})`);
  console.log(`  after a day:  ${b.seconds.toFixed(2)} s, peak ${b.peakMiB} MiB (alias map ${await size(one, sessionPaths.aliasMap)}, user state ${await size(one, sessionPaths.userDevices)})`);
  const r = a.seconds / b.seconds;
  console.log(`  a year of history costs ${(a.seconds - b.seconds).toFixed(2)} s more (x${r.toFixed(2)}): rewriting the whole-history alias map and user facts`);
  return r;
}
