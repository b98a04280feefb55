/**
 * bench:aggregate — in one run (BENCH_ONLY=small|history|steady runs one part):
 *  1. one day of tracking files (default 5 000 000 rows, BENCH_ROWS to change): (a) `tracklake aggregate` for
 *     that day vs (b) one hand-written DuckDB query computing the same three daily results straight from the
 *     CSV files, the floor for this engine here. Target a/b ≤ 1.3.
 *  2. aggregating one day after 1 day of history vs after 365 days of small history. Target ≤ 1.2.
 *  3. the high-cardinality steady state (bench/aggregate-steady.ts): the nightly run of a new day with
 *     ~2 000 000 keys on the 20th of a month, after a year of history, vs the floor. Target ≤ 1.3.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { runAggregates } from '../src/jobs/aggregates/job.js';
import { metricSet } from '../src/jobs/aggregates/metrics.js';
import { addDays } from '../src/lib/dates.js';
import { LocalStore } from '../src/storage/local.js';
import { writeDay } from './tracks-gen.js';
import { steadyState } from './aggregate-steady.js';
import { side } from './lake.js';

const ONLY = process.env.BENCH_ONLY;

const ROWS = Number(process.env.BENCH_ROWS ?? 5_000_000);
/** DuckDB's threads on both sides (BENCH_THREADS; default one per core): how the jobs scale with cores. */
const THREADS = process.env.BENCH_THREADS ? Number(process.env.BENCH_THREADS) : undefined;
const logger = pino({ level: 'silent' });
const metrics = metricSet();

const work = mkdtempSync(path.join(os.tmpdir(), 'bench-agg-'));
let pass = true;
try {
  if (!ONLY || ONLY === 'small') pass = (await smallKeys()) && pass;
  if (!ONLY || ONLY === 'history') pass = (await history()) && pass;
  if (!ONLY || ONLY === 'steady') pass = (await steadyState(work)) <= 1.3 && pass;
  process.exitCode = pass ? 0 : 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** 1. One big day with ~25 000 keys: the job against one hand-written query. */
async function smallKeys(): Promise<boolean> {
  const day = '2026-03-15';
  const root = path.join(work, 'big');
  console.log(`bench:aggregate — generating ${ROWS.toLocaleString()} rows for ${day} …`);
  const files = await writeDay(root, day, ROWS, 8, 1);
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  console.log(`  ${files.length} files, ${(bytes / 1e9).toFixed(2)} GB, ${os.cpus().length} cores`);
  side('raw', root, day, THREADS); // warm the page cache for both
  side('job-force', root, day, THREADS);
  // Interleaved rounds, best of each: both sides see the same machine state.
  let a = { seconds: Infinity, peakMiB: 0 };
  let b = { seconds: Infinity, peakMiB: 0 };
  for (let round = 0; round < 3; round++) {
    const rb = side('raw', root, day, THREADS);
    const ra = side('job-force', root, day, THREADS);
    if (rb.seconds < b.seconds) b = rb;
    if (ra.seconds < a.seconds) a = ra;
  }
  console.log(`(a) tracklake aggregate (day + month/year/overall)  ${a.seconds.toFixed(2)} s  ${Math.round(ROWS / a.seconds).toLocaleString()} rows/s  peak ${a.peakMiB} MiB`);
  console.log(`(b) one hand-written DuckDB query                  ${b.seconds.toFixed(2)} s  ${Math.round(ROWS / b.seconds).toLocaleString()} rows/s  peak ${b.peakMiB} MiB`);
  const r1 = a.seconds / b.seconds;
  console.log(`ratio a/b = ${r1.toFixed(2)} (target ≤ 1.30) ${r1 <= 1.3 ? 'PASS' : 'FAIL'}`);
  return r1 <= 1.3;
}

/**
 * 2. Cost must not grow with history: the same new day (BENCH_HISTORY_ROWS, default 1 000 000 rows, a
 * mid-sized site) after 1 day and after 365 days of small history (200 rows a day).
 */
async function history(): Promise<boolean> {
  const small = Number(process.env.BENCH_HISTORY_ROWS ?? 1_000_000);
  const one = path.join(work, 'history-1');
  const many = path.join(work, 'history-365');
  const target = '2026-03-15';
  await writeDay(one, addDays(target, -1), 200, 1, 2);
  await runAggregates([addDays(target, -1)], { store: new LocalStore(one), metrics, logger });
  const historyDays = Array.from({ length: 365 }, (_, i) => addDays(target, -365 + i));
  for (const [i, d] of historyDays.entries()) await writeDay(many, d, 200, 1, 10 + i);
  console.log(`  aggregating 365 days of history …`);
  await runAggregates(historyDays, { store: new LocalStore(many), metrics, logger });
  await writeDay(one, target, small, 4, 3);
  await writeDay(many, target, small, 4, 3);
  side('job-force', one, target, THREADS);
  side('job-force', many, target, THREADS);
  const best = (root: string) => [side('job-force', root, target, THREADS), side('job-force', root, target, THREADS), side('job-force', root, target, THREADS)].sort((x, y) => x.seconds - y.seconds)[0]!;
  const [r1day, r365] = [best(one), best(many)];
  const [h1, h365] = [r1day.seconds, r365.seconds];
  console.log(`one new day (${small.toLocaleString()} rows) after   1 day  of history: ${h1.toFixed(3)} s, peak ${r1day.peakMiB} MiB`);
  console.log(`one new day (${small.toLocaleString()} rows) after 365 days of history: ${h365.toFixed(3)} s, peak ${r365.peakMiB} MiB`);
  console.log(`  history adds ${((h365 - h1) * 1000).toFixed(0)} ms`);
  const r2 = h365 / h1;
  console.log(`ratio 365/1 = ${r2.toFixed(2)} (target ≤ 1.20) ${r2 <= 1.2 ? 'PASS' : 'FAIL'}`);
  return r2 <= 1.2;
}
