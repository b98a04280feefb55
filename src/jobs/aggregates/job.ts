/**
 * The aggregate job: daily metric files from a day's tracking files, then the month, year and overall files
 * that contain each recomputed day, each rolled up from the level below (cost grows with the number of
 * periods touched, never with history).
 *
 * A day is recomputed when its tracking files differ from those its manifest records (late data, a
 * collector replaying its log), when a metric's definition changed, when it was never computed, or on
 * --force. Outputs are deterministic and written only when their bytes change.
 */
import { promises as fs } from 'node:fs';
import type { Logger } from 'pino';
import { dayPath, dayStartMs } from '../../lib/dates.js';
import type { ObjectInfo, ObjectStore } from '../../storage/store.js';
import { type Engine, sql, sqlString } from '../engine.js';
import { withJob } from '../context.js';
import { collectRejects, type Manifest, manifestBody, type Outputs, parseManifest, sameInputs, type RunReport } from '../outputs.js';
import { listCsv, type Stager } from '../staging.js';
import { readCsvSql, readTracksSql, TRACK_HEADER } from '../tracks.js';
import { AGGREGATE_HEADER, metricFingerprint, type MetricDef } from './metrics.js';

export interface AggregateOptions {
  store: ObjectStore;
  metrics: readonly MetricDef[];
  logger: Logger;
  force?: boolean;
  tmpDir?: string;
  onProgress?: (done: number, total: number, day: string) => void;
}

export interface DayResult {
  day: string;
  status: 'computed' | 'unchanged';
  inputs: number;
  report: RunReport;
}

export interface AggregateRun {
  days: DayResult[];
  months: string[];
  years: string[];
  overall: boolean;
  filesWritten: number;
}

const CONCAT_LIMIT = 8 * 1024 * 1024;
const AGG_COLUMNS = { time: 'BIGINT', tenantid: 'VARCHAR', merchantid: 'VARCHAR', productid: 'VARCHAR', value: 'DOUBLE' };

export const paths = {
  tracks: (day: string) => `tracks/${dayPath(day)}/`,
  daily: (day: string, metric: string) => `aggregates/daily/${dayPath(day)}/${metric}.csv`,
  manifest: (day: string) => `aggregates/_state/daily/${dayPath(day)}/manifest.json`,
  monthly: (month: string, metric: string) => `aggregates/monthly/${month.replace('-', '/')}/${metric}.csv`,
  monthlyState: (month: string, metric: string) => `aggregates/_state/monthly/${month.replace('-', '/')}/${metric}.csv`,
  yearly: (year: string, metric: string) => `aggregates/yearly/${year}/${metric}.csv`,
  yearlyState: (year: string, metric: string) => `aggregates/_state/yearly/${year}/${metric}.csv`,
  overall: (metric: string) => `aggregates/overall/${metric}.csv`,
};

const definitionOf = (metrics: readonly MetricDef[]) => metrics.map(metricFingerprint).sort().join(',');

/**
 * A day's tracking files, its manifest (`hasManifest` also when it is unreadable), and whether its
 * aggregates are current: computed from exactly these files with this metric set (else: never computed,
 * inputs changed, or the metric set changed).
 */
export async function dayState(store: ObjectStore, day: string, metrics: readonly MetricDef[]): Promise<{ listed: ObjectInfo[]; manifest: Manifest | undefined; hasManifest: boolean; current: boolean }> {
  const [body, listed] = await Promise.all([store.get(paths.manifest(day)), listCsv(store, paths.tracks(day))]);
  const manifest = parseManifest(body);
  const current = manifest !== undefined && manifest.definition === definitionOf(metrics) && sameInputs(manifest.inputs, listed);
  return { listed, manifest, hasManifest: body !== undefined, current };
}

export async function runAggregates(days: readonly string[], o: AggregateOptions): Promise<AggregateRun> {
  return withJob(o.store, o.tmpDir, async ({ engine, stager, out }) => {
    const run: AggregateRun = { days: [], months: [], years: [], overall: false, filesWritten: 0 };
    const definition = definitionOf(o.metrics);
    for (const [i, day] of days.entries()) {
      const { listed, manifest, current } = await dayState(o.store, day, o.metrics);
      if (current && !o.force) {
        run.days.push({ day, status: 'unchanged', inputs: listed.length, report: manifest!.report });
      } else {
        const staged = await stager.objects(listed, TRACK_HEADER);
        const report = await computeDay(engine, day, staged.files, o.metrics, out, i);
        report.skippedFiles = staged.skipped;
        await out.flush(); // the manifest vouches for the day's files: they are stored first
        out.writeText(paths.manifest(day), manifestBody(definition, listed, report));
        await stager.cleanup();
        run.days.push({ day, status: 'computed', inputs: listed.length, report });
        if (report.badRowCount > 0 || report.skippedFiles.length > 0) {
          o.logger.warn({ day, badRows: report.badRowCount, skippedFiles: report.skippedFiles.length }, 'malformed input skipped');
        }
      }
      o.onProgress?.(i + 1, days.length, day);
    }
    const changed = run.days.filter((d) => d.status === 'computed').map((d) => d.day);
    run.months = [...new Set(changed.map((d) => d.slice(0, 7)))].sort();
    run.years = [...new Set(changed.map((d) => d.slice(0, 4)))].sort();
    for (const month of run.months) await rollMonth(stager, o, out, month);
    for (const year of run.years) await rollYear(stager, o, out, year);
    if (run.years.length > 0) {
      await rollOverall(stager, o, out);
      run.overall = true;
    }
    await out.flush();
    run.filesWritten = out.written;
    return run;
  });
}

async function computeDay(engine: Engine, day: string, files: Array<{ key: string; file: string }>, metrics: readonly MetricDef[], out: Outputs, n: number): Promise<RunReport> {
  const report: RunReport = { badRows: [], badRowCount: 0, skippedFiles: [] };
  const start = dayStartMs(day);
  if (files.length === 0) {
    for (const m of metrics) out.writeText(paths.daily(day, m.name), `${AGGREGATE_HEADER}\n`);
    return report;
  }
  const rejects = `rejects_${n}`;
  const column = (m: MetricDef) => `"m_${m.name}"`; // metric names are [a-z][a-z0-9_]*
  const measures = metrics.map((m) => `${m.measure === 'count' ? 'count(*)' : 'sum(value)'} FILTER (WHERE event IN (${m.events.map(sqlString).join(', ')})) AS ${column(m)}`);
  await engine.run(sql('aggregate_day', { tracks: readTracksSql(files.map((f) => f.file), rejects), measures: measures.join(',\n  ') }));
  // Rendered side by side: each COPY of a small result is mostly one thread.
  await Promise.all(metrics.map((m) => out.write(paths.daily(day, m.name), sql('day_metric_rows', { column: column(m), time: String(start) }))));
  const { badRows, badRowCount } = await collectRejects(engine, rejects, files);
  Object.assign(report, { badRows, badRowCount });
  return report;
}

/**
 * An aggregate CSV with every record's time (its first field, an unquoted integer) set to `time`. Records
 * are found by newlines outside quotes: a product id may itself contain a quoted newline.
 */
export function withTime(csv: string, time: number): string {
  // Without a quote no field holds a newline: every line after the header starts with its time.
  if (!csv.includes('"')) return csv.replace(/(?<=\n)\d+(?=,)/g, String(time));
  const parts: string[] = [];
  let inQuotes = false;
  let recordStart = -1; // the header is kept as it is
  let copied = 0;
  for (let i = 0; i < csv.length; i++) {
    const c = csv.charCodeAt(i);
    if (c === 34 /* " */) inQuotes = !inQuotes;
    else if (c === 10 /* \n */ && !inQuotes) {
      if (recordStart >= 0) {
        parts.push(csv.slice(copied, recordStart), String(time));
        copied = csv.indexOf(',', recordStart);
      }
      recordStart = i + 1 < csv.length ? i + 1 : -1;
    }
  }
  parts.push(csv.slice(copied));
  return parts.join('');
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

/**
 * One level of the rollup: from the files below `source`, each metric's state file (time = first day) and
 * public file (time = the period's start). Each metric is its own query, and they run side by side.
 */
async function rollLevel(stager: Stager, o: AggregateOptions, out: Outputs, level: { source: string; state: (m: string) => string; public: (m: string) => string; start?: number }) {
  await out.flush(); // this level reads what the level below just wrote
  const inputs = await listMetricFiles(o.store, level.source, o.metrics);
  const staged = await stager.objects(inputs, AGGREGATE_HEADER);
  const metricOf = new Map(inputs.map((i) => [i.key, i.metric]));
  await Promise.all(o.metrics.map(async (m) => {
    const [state, pub] = [level.state(m.name), level.public(m.name)];
    const files = staged.files.filter((f) => metricOf.get(f.key) === m.name);
    if (files.length === 0) {
      for (const key of new Set([state, pub])) out.writeText(key, `${AGGREGATE_HEADER}\n`);
      return;
    }
    // One file where the files are small (a month of small days), so DuckDB opens 1, not 31.
    const small = files.length > 1 && files.reduce((n, f) => n + f.size, 0) <= CONCAT_LIMIT;
    const sources = small ? [await stager.concat(files.map((f) => f.file), AGGREGATE_HEADER)] : files.map((f) => f.file);
    const file = await out.render(sql('rollup', { files: readCsvSql(sources, AGG_COLUMNS) }));
    // The public file is the state file with each row's first day replaced by the period's start: the
    // leading integer field is rewritten here rather than running the query a second time.
    const publicBody = pub === state ? undefined : withTime(await fs.readFile(file, 'utf8'), level.start!);
    out.writeFile(state, file);
    if (publicBody !== undefined) out.writeText(pub, publicBody);
  }));
  await stager.cleanup();
}

const rollMonth = (stager: Stager, o: AggregateOptions, out: Outputs, month: string) =>
  rollLevel(stager, o, out, {
    source: `aggregates/daily/${month.replace('-', '/')}/`,
    state: (m) => paths.monthlyState(month, m),
    public: (m) => paths.monthly(month, m),
    start: dayStartMs(`${month}-01`),
  });

const rollYear = (stager: Stager, o: AggregateOptions, out: Outputs, year: string) =>
  rollLevel(stager, o, out, {
    source: `aggregates/_state/monthly/${year}/`,
    state: (m) => paths.yearlyState(year, m),
    public: (m) => paths.yearly(year, m),
    start: dayStartMs(`${year}-01-01`),
  });

// The overall file is its own state: its time is each key's first day.
const rollOverall = (stager: Stager, o: AggregateOptions, out: Outputs) =>
  rollLevel(stager, o, out, { source: 'aggregates/_state/yearly/', state: paths.overall, public: paths.overall });
