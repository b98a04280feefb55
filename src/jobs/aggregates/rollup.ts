/**
 * The month, year and overall levels above the daily files, kept up to date incrementally: a level's state
 * is updated from its previous state and the change of the recomputed days (what a day held before minus
 * what it holds now), in one ordered merge per level and metric. No level re-reads the periods below it, so
 * a night costs the size of what changed plus what is written.
 *
 * Each level records the ETags of the files below it that its state was built from (`_inputs.json`). A
 * level is updated incrementally only when that record matches the files as they are (apart from the
 * rewritten ones, which must match what they held before), the metric is a count (positive values: a key
 * with a value has an occurrence, which the first-day rule relies on), and few days changed; otherwise,
 * and with --rebuild, it is rolled up from all its files as before. Both paths give the same bytes.
 */
import { AGGREGATE_TYPES, keys } from '../../lake/layout.js';
import { dayPath, dayStartMs } from '../../lib/dates.js';
import type { ObjectInfo, ObjectStore } from '../../storage/store.js';
import { allSettled } from '../context.js';
import type { Engine } from '../engine.js';
import { sql } from '../engine.js';
import { type BuiltFrom, builtFrom, builtFromMatches, type Outputs } from '../outputs.js';
import type { Snapshot, Stager } from '../staging.js';
import { readCsvSql, relationSql } from '../tracks.js';
import { AGGREGATE_HEADER, type MetricDef } from './metrics.js';

/** Days recomputed in a run up to which a level is updated day by day; more is a backfill, rolled from its files. */
export const INCREMENTAL_DAYS = 7;
const CONCAT_LIMIT = 8 * 1024 * 1024;
/** Aggregate files have short rows: 8 MiB read buffers instead of DuckDB's 32 (a merge reads three files at once). */
const MERGE_READ = { bufferBytes: 8 * 2 ** 20 };
export const AGG_COLUMNS = AGGREGATE_TYPES;

export const paths = {
  tracks: keys.tracksDay,
  daily: keys.daily,
  manifest: keys.aggregateManifest,
  monthly: keys.monthly,
  monthlyState: (month: string, metric: string) => `aggregates/_state/monthly/${month.replace('-', '/')}/${metric}.csv`,
  monthlyInputs: (month: string) => `aggregates/_state/monthly/${month.replace('-', '/')}/_inputs.json`,
  yearly: keys.yearly,
  yearlyState: (year: string, metric: string) => `aggregates/_state/yearly/${year}/${metric}.csv`,
  yearlyInputs: (year: string) => `aggregates/_state/yearly/${year}/_inputs.json`,
  overall: keys.overall,
  overallInputs: 'aggregates/_state/overall_inputs.json',
};

export interface RollContext {
  engine: Engine;
  stager: Stager;
  out: Outputs;
  store: ObjectStore;
  metrics: readonly MetricDef[];
  /** Roll every level up from its files (repair). */
  rebuild: boolean;
  /** Holds the snapshots of replaced files until the run ends. */
  keep: Stager;
}

/** One recomputed day of one metric: what its file held, what it holds now (local files; undefined: none). */
interface Delta {
  metric: string;
  day: number;
  old: string | undefined;
  now: string | undefined;
}

/** A file below a level that this run rewrote, with the ETag it had before (undefined: it is new). */
interface Replaced {
  metric: string;
  key: string;
  etag: string | undefined;
}

interface Level {
  name: string;
  /** Folder of the files one level below (e.g. a month's days). */
  source: string;
  /** Folder of this level's state files. */
  stateFolder: string;
  state: (metric: string) => string;
  public: (metric: string) => string;
  /** The public files' time (the period's start); none when the state is the public file. */
  start?: number;
  inputs: string;
}

export interface RollupReport {
  level: string;
  metric: string;
  mode: 'incremental' | 'full';
}

/**
 * Updates the month, year and overall levels above the recomputed days; `days` snapshots what their files
 * held. Every level is updated by the days' own change (a key's first day in a month, a year or all time
 * moves by the same rule), so a year never reads a month's state, nor the overall a year's.
 */
export async function rollUp(ctx: RollContext, changedDays: readonly string[], days: ReadonlyMap<string, Snapshot>, report: RollupReport[]): Promise<{ months: string[]; years: string[] }> {
  const months = [...new Set(changedDays.map((d) => d.slice(0, 7)))].sort();
  const years = [...new Set(months.map((m) => m.slice(0, 4)))].sort();
  if (changedDays.length === 0) return { months, years };
  // A backfill rolls every level from its files: staging every day's file for merges no level would take.
  if (changedDays.length > INCREMENTAL_DAYS) ctx = { ...ctx, rebuild: true };
  await ctx.out.flush();
  // The days' files as they are now, staged once for every level (in place on a local store).
  const now = new Map<string, string>();
  for (const month of ctx.rebuild ? [] : months) {
    const listed = (await ctx.store.list(`aggregates/daily/${month.replace('-', '/')}/`)).filter((o) => changedDays.some((d) => o.key.startsWith(keys.dailyDay(d))));
    for (const f of (await ctx.keep.objects(listed, AGGREGATE_HEADER)).files) now.set(f.key, f.file);
  }
  const deltas = (ds: readonly string[]): Delta[] =>
    ds.flatMap((day) => ctx.metrics.map((m) => ({ metric: m.name, day: dayStartMs(day), old: days.get(paths.daily(day, m.name))?.file, now: now.get(paths.daily(day, m.name)) })));

  const monthEtags = new Map<string, string | undefined>();
  for (const month of months) {
    const inMonth = changedDays.filter((d) => d.startsWith(month));
    const replaced = inMonth.flatMap((day) => ctx.metrics.map((m) => ({ metric: m.name, key: paths.daily(day, m.name), etag: days.get(paths.daily(day, m.name))?.etag })));
    const level: Level = {
      name: month, source: `aggregates/daily/${month.replace('-', '/')}/`, stateFolder: `aggregates/_state/monthly/${month.replace('-', '/')}/`,
      state: (m) => paths.monthlyState(month, m), public: (m) => paths.monthly(month, m), start: dayStartMs(`${month}-01`), inputs: paths.monthlyInputs(month),
    };
    for (const [k, v] of await updateLevel(ctx, level, deltas(inMonth), replaced, report)) monthEtags.set(k, v);
  }
  const yearEtags = new Map<string, string | undefined>();
  for (const year of years) {
    const replaced = months.filter((m) => m.startsWith(year)).flatMap((month) => ctx.metrics.map((m) => ({ metric: m.name, key: paths.monthlyState(month, m.name), etag: monthEtags.get(paths.monthlyState(month, m.name)) })));
    const level: Level = {
      name: year, source: `aggregates/_state/monthly/${year}/`, stateFolder: `aggregates/_state/yearly/${year}/`,
      state: (m) => paths.yearlyState(year, m), public: (m) => paths.yearly(year, m), start: dayStartMs(`${year}-01-01`), inputs: paths.yearlyInputs(year),
    };
    for (const [k, v] of await updateLevel(ctx, level, deltas(changedDays.filter((d) => d.startsWith(year))), replaced, report)) yearEtags.set(k, v);
  }
  const replaced = years.flatMap((year) => ctx.metrics.map((m) => ({ metric: m.name, key: paths.yearlyState(year, m.name), etag: yearEtags.get(paths.yearlyState(year, m.name)) })));
  // The overall file is its own state: its time is each key's first day.
  await updateLevel(ctx, { name: 'overall', source: 'aggregates/_state/yearly/', stateFolder: 'aggregates/overall/', state: paths.overall, public: paths.overall, inputs: paths.overallInputs }, deltas(changedDays), replaced, report);
  return { months, years };
}

/** The `<metric>.csv` files one folder level below prefix (e.g. each day of a month), with their metric. */
async function listMetricFiles(store: ObjectStore, prefix: string, metrics: readonly MetricDef[]): Promise<Array<ObjectInfo & { metric: string }>> {
  const names = new Set(metrics.map((m) => m.name));
  return (await store.list(prefix)).flatMap((x) => {
    const [period, file] = x.key.slice(prefix.length).split('/');
    const metric = file?.endsWith('.csv') ? file.slice(0, -4) : '';
    return /^\d+$/.test(period!) && names.has(metric) ? [{ ...x, metric }] : [];
  });
}

/** Per metric: what its state was built from. */
type Inputs = Record<string, BuiltFrom>;

function parseInputs(body: Buffer | undefined): Inputs | undefined {
  if (!body) return undefined;
  try {
    const x = JSON.parse(body.toString('utf8')) as { version?: number; metrics?: Inputs };
    return x.version === 2 && x.metrics && typeof x.metrics === 'object' ? x.metrics : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One level: each metric's state (and public) file, incrementally where it can be, else from all files
 * below; then the record of the files below it was built from. Returns the ETags the state files had
 * before, for the level above.
 */
async function updateLevel(ctx: RollContext, level: Level, deltas: readonly Delta[], replaced: readonly Replaced[], report: RollupReport[]): Promise<Map<string, string | undefined>> {
  await ctx.out.flush(); // this level reads what the level below just wrote
  const files = await listMetricFiles(ctx.store, level.source, ctx.metrics);
  const recorded = ctx.rebuild ? undefined : parseInputs(await ctx.store.get(level.inputs));
  const states = new Map((await ctx.store.list(level.stateFolder)).map((o) => [o.key, o] as const));
  const before = new Map(ctx.metrics.map((m) => [level.state(m.name), states.get(level.state(m.name))?.etag]));
  await allSettled(ctx.metrics.map(async (m) => {
    const mine = files.filter((f) => f.metric === m.name);
    const changes = deltas.filter((d) => d.metric === m.name).sort((a, b) => a.day - b.day);
    const current = states.get(level.state(m.name));
    let file: string | undefined;
    if (!ctx.rebuild && m.measure === 'count' && current && changes.length <= INCREMENTAL_DAYS && builtFromMatches(recorded?.[m.name], current.etag, mine, replaced.filter((r) => r.metric === m.name))) {
      file = await merge(ctx, current, changes);
    }
    report.push({ level: level.name, metric: m.name, mode: file ? 'incremental' : 'full' });
    file ??= await rollFromFiles(ctx, mine);
    const [state, pub] = [level.state(m.name), level.public(m.name)];
    if (file === undefined) {
      for (const key of new Set([state, pub])) ctx.out.writeText(key, `${AGGREGATE_HEADER}\n`);
      return;
    }
    // The public file is the state file with each row's first day replaced by the period's start.
    const publicFile = pub === state ? undefined : await ctx.out.render(publicSql(file, level.start!));
    ctx.out.writeFile(state, file);
    if (publicFile !== undefined) ctx.out.writeFile(pub, publicFile);
  }));
  await ctx.out.flush(); // the record vouches for the state files: they are stored first
  const written = new Map((await ctx.store.list(level.stateFolder)).map((o) => [o.key, o.etag]));
  const metrics = Object.fromEntries(ctx.metrics.map((m) => [m.name, builtFrom(written.get(level.state(m.name)), files.filter((f) => f.metric === m.name))]));
  ctx.out.writeText(level.inputs, `${JSON.stringify({ version: 2, metrics })}\n`);
  await ctx.stager.cleanup();
  return before;
}

/** The state updated by each day's change in turn, or undefined when a key's first day cannot be known from them. */
async function merge(ctx: RollContext, state: ObjectInfo, deltas: readonly Delta[]): Promise<string | undefined> {
  let current = (await ctx.stager.objects([state], AGGREGATE_HEADER)).files[0]?.file;
  if (current === undefined) return undefined;
  for (const d of deltas) {
    const statement = sql('rollup_merge', {
      level: readCsvSql([current], AGG_COLUMNS, MERGE_READ),
      old: relationSql(d.old ? [d.old] : [], AGG_COLUMNS, MERGE_READ),
      new: relationSql(d.now ? [d.now] : [], AGG_COLUMNS, MERGE_READ),
      start: String(d.day),
      end: String(d.day),
    });
    try {
      current = await ctx.out.render(statement);
    } catch (e) {
      if (/first day unknown/.test((e as Error).message)) return undefined;
      throw e;
    }
  }
  return current;
}

/** The state of one metric rolled up from all its files below (undefined when there are none). */
async function rollFromFiles(ctx: RollContext, files: ReadonlyArray<ObjectInfo>): Promise<string | undefined> {
  if (files.length === 0) return undefined;
  const staged = await ctx.stager.objects([...files], AGGREGATE_HEADER);
  if (staged.files.length === 0) return undefined;
  // One file where the files are small (a month of small days), so DuckDB opens 1, not 31.
  const small = staged.files.length > 1 && staged.files.reduce((n, f) => n + f.size, 0) <= CONCAT_LIMIT;
  const sources = small ? [await ctx.stager.concat(staged.files.map((f) => f.file), AGGREGATE_HEADER)] : staged.files.map((f) => f.file);
  return ctx.out.render(sql('rollup', { files: readCsvSql(sources, AGG_COLUMNS, MERGE_READ) }));
}

const STATE_TEXT = { time: 'BIGINT', tenantid: 'VARCHAR', merchantid: 'VARCHAR', productid: 'VARCHAR', value: 'VARCHAR' };

/**
 * The select of a period's public file from its state file (time = the period's start). Rendered by DuckDB,
 * streaming: a year's state of ten million keys never becomes one string in JavaScript.
 */
export const publicSql = (stateFile: string, time: number) => sql('with_time', { state: readCsvSql([stateFile], STATE_TEXT), time: String(time) });
