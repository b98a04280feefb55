/**
 * The aggregate job: daily metric files from a day's tracking files, then the month, year and overall files
 * that contain each recomputed day, each updated from its previous state and the change of the recomputed
 * periods below it (rollup.ts): the cost grows with what changed, never with history.
 *
 * A day is recomputed when its tracking files differ from those its manifest records (late data, a
 * collector replaying its log), when a metric's definition changed, when it was never computed, or on
 * --force. Outputs are deterministic and written only when their bytes change.
 */
import type { Logger } from 'pino';
import { dayOfKey, dayPath, dayStartMs } from '../../lib/dates.js';
import type { ObjectInfo, ObjectStore } from '../../storage/store.js';
import { type Engine, sql, sqlString } from '../engine.js';
import { allSettled, type JobContext, type JobResources, withJob } from '../context.js';
import { collectRejects, type Manifest, manifestBody, type Outputs, parseManifest, sameInputs, type RunReport } from '../outputs.js';
import { listCsv, type Snapshot, snapshotFiles } from '../staging.js';
import { readTracksSql, TRACK_HEADER } from '../tracks.js';
import { AGGREGATE_HEADER, metricFingerprint, type MetricDef } from './metrics.js';
import { INCREMENTAL_DAYS, paths, type RollContext, rollUp, type RollupReport } from './rollup.js';

export { paths, publicSql } from './rollup.js';

export interface AggregateOptions extends JobResources {
  store: ObjectStore;
  metrics: readonly MetricDef[];
  logger: Logger;
  force?: boolean;
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
  /** How each level and metric was brought up to date. */
  rollups: RollupReport[];
}

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
  return withRollups(o, async ({ engine, stager, out }, ctx) => {
    const run: AggregateRun = { days: [], months: [], years: [], overall: false, filesWritten: 0, rollups: [] };
    const definition = definitionOf(o.metrics);
    /** What each recomputed day's metric files held before: the change the levels above are updated by. */
    const snapshots = new Map<string, Snapshot>();
    let snapshotted = 0;
    for (const [i, day] of days.entries()) {
      const { listed, manifest, current } = await dayState(o.store, day, o.metrics);
      if (current && !o.force) {
        run.days.push({ day, status: 'unchanged', inputs: listed.length, report: manifest!.report });
      } else {
        // A backfill (more days than the levels take one by one) rolls every level from its files: no
        // snapshot is kept beyond that, or a year of daily files would fill the scratch folder.
        if (snapshotted++ < INCREMENTAL_DAYS) {
          for (const [key, snap] of await snapshotFiles(o.store, ctx.keep, `aggregates/daily/${dayPath(day)}/`, o.metrics.map((m) => paths.daily(day, m.name)))) snapshots.set(key, snap);
        }
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
    Object.assign(run, await rollUp(ctx, changed, snapshots, run.rollups));
    run.overall = run.years.length > 0;
    await out.flush();
    run.filesWritten = out.written;
    return run;
  });
}

/**
 * Every level from the daily files, whatever changed: the way to repair the month, year and overall state
 * (`tracklake aggregate --rebuild`). Gives the same bytes as the incremental updates.
 */
export async function rebuildRollups(o: AggregateOptions): Promise<AggregateRun> {
  return withRollups({ ...o, rebuild: true }, async ({ out }, ctx) => {
    const run: AggregateRun = { days: [], months: [], years: [], overall: false, filesWritten: 0, rollups: [] };
    const days = new Set<string>();
    for (const f of await listCsv(o.store, 'aggregates/daily/')) {
      const day = dayOfKey(f.key);
      if (day) days.add(day);
    }
    Object.assign(run, await rollUp(ctx, [...days].sort(), new Map(), run.rollups));
    run.overall = run.years.length > 0;
    await out.flush();
    run.filesWritten = out.written;
    return run;
  });
}

/** A job run with the rollups' context. */
async function withRollups<T>(o: AggregateOptions & { rebuild?: boolean }, body: (job: JobContext, ctx: RollContext) => Promise<T>): Promise<T> {
  return withJob(o.store, o, (job) => body(job, { ...job, store: o.store, metrics: o.metrics, rebuild: o.rebuild ?? false }));
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
  await allSettled(metrics.map((m) => out.write(paths.daily(day, m.name), sql('day_metric_rows', { column: column(m), time: String(start) }))));
  const { badRows, badRowCount } = await collectRejects(engine, rejects, files);
  Object.assign(report, { badRows, badRowCount });
  return report;
}

