/** `tracklake aggregate`: one day, a range (a backfill), or the scheduler's catch-up (--pending). */
import { SingleBar, Presets } from 'cli-progress';
import type { Config } from '../config/config.js';
import { jobResources, s3Settings } from '../config/config.js';
import { rebuildRollups, runAggregates, type AggregateRun } from '../jobs/aggregates/job.js';
import { metricSet } from '../jobs/aggregates/metrics.js';
import { pendingDays } from '../jobs/aggregates/pending.js';
import type { NightlyTask } from '../jobs/scheduler.js';
import { ConfigError } from '../lib/errors.js';
import { addDays, dayOf, daysBetween, isDay } from '../lib/dates.js';
import { openStore } from '../storage/open.js';
import { printSkipped } from './common.js';
import type { ObjectStore } from '../storage/store.js';
import type { Logger } from 'pino';

export interface DaySelection {
  date?: string;
  from?: string;
  to?: string;
  pending?: boolean;
  today?: string;
  /** `7d`: the 7 days ending today (UTC), today included. */
  last?: string;
}

/** --date, --from/--to, --last or --pending, validated; the days to run (resolved for --pending later). */
export function selectDays(sel: DaySelection, now: number): { days?: string[]; pendingToday?: string } {
  for (const [name, v] of [['date', sel.date], ['from', sel.from], ['to', sel.to], ['today', sel.today]] as const) {
    if (v !== undefined && !isDay(v)) throw new ConfigError(name, `"${v}" is not a date (YYYY-MM-DD)`);
  }
  const modes = [sel.date !== undefined, sel.from !== undefined || sel.to !== undefined, sel.pending === true, sel.last !== undefined].filter(Boolean).length;
  if (modes !== 1) throw new ConfigError('date', 'give exactly one of --date, --from/--to, --last or --pending');
  if (sel.date) return { days: [sel.date] };
  if (sel.last !== undefined) {
    const n = /^([1-9]\d{0,3})d$/.exec(sel.last);
    if (!n) throw new ConfigError('last', `"${sel.last}" is not a number of days such as 7d (1d to 9999d)`);
    const today = dayOf(now);
    return { days: daysBetween(addDays(today, 1 - Number(n[1])), today) };
  }
  if (sel.pending) return { pendingToday: sel.today ?? dayOf(now) };
  if (!sel.from || !sel.to) throw new ConfigError(sel.from ? 'to' : 'from', '--from and --to go together');
  if (sel.from > sel.to) throw new ConfigError('from', `--from ${sel.from} is after --to ${sel.to}`);
  return { days: daysBetween(sel.from, sel.to) };
}

export function progressBar(label: string): ((done: number, total: number, day: string) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} days  {day}`, stream: process.stderr }, Presets.shades_classic);
  let started = false;
  return (done, total, day) => {
    if (!started) bar.start(total, 0, { day });
    started = true;
    bar.update(done, { day });
    if (done === total) bar.stop();
  };
}

export function summarize(run: AggregateRun): Record<string, unknown> {
  return {
    computed: run.days.filter((d) => d.status === 'computed').map((d) => d.day),
    unchanged: run.days.filter((d) => d.status === 'unchanged').length,
    months: run.months,
    years: run.years,
    // Levels brought up to date from their previous state and the change, and those rolled up from their files.
    incremental: run.rollups.filter((r) => r.mode === 'incremental').length,
    rolledUp: run.rollups.filter((r) => r.mode === 'full').length,
    filesWritten: run.filesWritten,
    badRows: run.days.reduce((n, d) => n + (d.status === 'computed' ? d.report.badRowCount : 0), 0),
    skippedFiles: run.days.flatMap((d) => (d.status === 'computed' ? d.report.skippedFiles : [])),
  };
}

export function aggregateTask(config: Config, store: ObjectStore, logger: Logger): NightlyTask {
  const metrics = metricSet(config.metrics);
  return {
    name: 'aggregates',
    async run(today) {
      const days = await pendingDays(store, today, config.lookbackDays, metrics);
      return summarize(await runAggregates(days, { ...jobResources(config), store, metrics, logger }));
    },
  };
}

export async function aggregateCommand(config: Config, sel: DaySelection & { force?: boolean; rebuild?: boolean }, logger: Logger): Promise<number> {
  const store = await openStore(config.storage, s3Settings(config));
  const metrics = metricSet(config.metrics);
  if (sel.rebuild) {
    if (sel.date || sel.from || sel.to || sel.last || sel.pending || sel.force) throw new ConfigError('rebuild', '--rebuild rolls every month, year and overall file up from the daily files; give no days with it');
    process.stdout.write(`${JSON.stringify(summarize(await rebuildRollups({ ...jobResources(config), store, metrics, logger })))}\n`);
    return 0;
  }
  const chosen = selectDays(sel, Date.now());
  const days = chosen.days ?? (await pendingDays(store, chosen.pendingToday!, config.lookbackDays, metrics));
  const run = await runAggregates(days, { ...jobResources(config), store, metrics, logger, force: sel.force, onProgress: days.length > 1 ? progressBar('aggregate') : undefined });
  const summary = summarize(run);
  for (const d of run.days) printSkipped(d.report, `${d.day}: `);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return 0;
}
