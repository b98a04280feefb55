/**
 * The read side's local cache: a DuckDB file under the state folder holding the daily aggregates, the
 * sessions and the track facts' funnel columns of the bucket it reads. A refresh compares the days'
 * manifests (one listing per kind) with what it loaded and reloads only the days whose manifest changed;
 * on S3 a year is downloaded once, never per query. Days after the aggregate job's last computed day
 * (`computed_through`) are read from their tracking files, one file at a time as the collectors ship
 * them, so the numbers lag the collector by a flush interval, not by a night.
 *
 * Refreshes run in the background (single-flight, in transactions); queries read a consistent snapshot
 * from their own connections meanwhile.
 */
import { headerOf, keys, LAKE, SESSION_TYPES } from '../lake/layout.js';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { DuckDBInstance, type DuckDBConnection, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';
import type { Logger } from 'pino';
import type { MetricDef } from '../jobs/aggregates/metrics.js';
import { AGGREGATE_HEADER, metricFingerprint } from '../jobs/aggregates/metrics.js';
import { ConnectionPool, sqlIn, sqlString } from '../jobs/engine.js';
import { runSessions, TRACK_FACT_COLUMNS, TRACK_FACT_TYPES } from '../jobs/sessions/job.js';
import { AGG_COLUMNS } from '../jobs/aggregates/rollup.js';
import { listCsv, type StagedFile, Stager } from '../jobs/staging.js';
import { readCsvSql, TRACK_HEADER, TRACK_TYPES } from '../jobs/tracks.js';
import type { Clock } from '../lib/clock.js';
import { addDays, dayOf, dayOfKey, daysBetween } from '../lib/dates.js';
import { ConfigError } from '../lib/errors.js';
import { LocalStore } from '../storage/local.js';
import { overlayStore } from '../storage/overlay.js';
import type { ObjectInfo, ObjectStore } from '../storage/store.js';
import type { Family } from './model.js';
import { fileURLToPath } from 'node:url';
import { IDENTIFY, parseSchemaFile } from '../plan/observe.js';

const SQL_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sql');
const q = (name: string, slots: Record<string, string> = {}) => sqlIn(SQL_DIR, name, slots);

/** Bump when the tables change: an older cache is emptied and loaded again. */
const CACHE_VERSION = '3';
/** Days loaded per transaction: bounds the staged downloads on S3 and the size of one commit. */
const DAYS_PER_LOAD = 31;
const TAIL_FILES_PER_LOAD = 500;
const READERS = 4;

const SESSION_HEADER = headerOf(LAKE.sessions);
const VIOLATION_HEADER = headerOf(LAKE.violations);
/**
 * Violation files are one per shipped log segment and day: a year of them is too many to list every
 * refresh. Each refresh lists yesterday's and today's (where new ones land); the whole folder is listed at
 * start and every VIOLATIONS_FULL_LIST_MS, which finds late data's files and files rewritten by an erasure.
 */
const VIOLATIONS_FULL_LIST_MS = 10 * 60_000;
const SCHEMA_FILES_PER_LOAD = 200;
const FAMILIES: readonly Family[] = ['aggregates', 'sessions'];
/** readyFrom's ends: before every day (all loaded) and after every day (nothing known yet). */
const ALL_DAYS = '0000-01-01';
const NO_DAYS = '9999-12-31';

export interface ReadCacheOptions {
  store: ObjectStore;
  /** The cache file; ':memory:' for a cache that lives as long as the process. */
  file: string;
  metrics: readonly MetricDef[];
  clock: Clock;
  logger: Logger;
  /** How far back tracking files stand in for aggregates that were never computed. */
  tailDays: number;
  /** DuckDB's memory budget for the cache (it spills beyond); default a quarter of the machine's memory. */
  memoryLimitBytes?: number;
  tmpDir?: string;
  /**
   * The newest days' sessions: the sessions job's settings, and the folder it writes them to (never the
   * bucket). Without it, sessions cover the days the sessions job has computed.
   */
  sessions?: { dir: string; inactivityMinutes: number; includeBots: boolean; memoryLimitBytes?: number };
}

export interface ComputedThrough {
  aggregates: string | null;
  sessions: string | null;
}

export interface RefreshReport {
  aggregateDays: number;
  sessionDays: number;
  tailFiles: number;
  /** Days after the sessions job's last day whose sessions this refresh computed. */
  tailSessionDays: number;
  /** Observed-schema and violation files (re)loaded. */
  eventFiles: number;
  removed: number;
  ms: number;
}

/**
 * The newest days' sessions are recomputed at most this often (their tracking files change every flush),
 * and never more often than ten times their last run took: on a large site they cost at most a tenth of
 * the read node's time.
 */
export const SESSION_TAIL_MS = 60_000;

/** day → manifest ETag, for every day manifest under prefix. */
async function manifestDays(store: ObjectStore, prefix: string): Promise<Map<string, string>> {
  const days = new Map<string, string>();
  for (const o of await store.list(prefix)) {
    const day = o.key.endsWith('/manifest.json') ? dayOfKey(o.key) : undefined;
    if (day) days.set(day, o.etag);
  }
  return days;
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

export class ReadCache {
  computedThrough: ComputedThrough = { aggregates: null, sessions: null };
  private readonly readers: ConnectionPool;
  private running: Promise<RefreshReport> | undefined;
  private sessionTail = { fingerprint: '', at: 0, days: '', tookMs: 0 };
  private timer: NodeJS.Timeout | undefined;
  private readonly metricNames: ReadonlySet<string>;
  /** Set by close(): a refresh under way stops at its next batch instead of holding the shutdown up. */
  private closing = false;
  /**
   * While the first refresh runs, each family holds whole every day from readyFrom on (NO_DAYS before it
   * has listed anything); a query waits only for the days it reads. After it, queries never wait.
   */
  private readonly readyFrom: Record<Family, string> = { aggregates: NO_DAYS, sessions: NO_DAYS };
  private firstDone = false;
  private waiters: Array<{ family: Family; from: string; resolve: () => void }> = [];
  /** Event names and violations (the events page): loaded whole once, after the first refresh's other days. */
  private eventsLoaded = false;
  private eventWaiters: Array<() => void> = [];
  private violationsListedAt = -Infinity;

  private constructor(private readonly o: ReadCacheOptions, private readonly instance: DuckDBInstance, private readonly conn: DuckDBConnection) {
    this.metricNames = new Set(o.metrics.map((m) => m.name));
    this.readers = new ConnectionPool(instance, READERS);
  }

  static async open(o: ReadCacheOptions): Promise<ReadCache> {
    const memory = o.memoryLimitBytes ?? Math.floor(os.totalmem() / 4);
    const config: Record<string, string> = {
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      memory_limit: `${Math.max(64, Math.floor(memory / 2 ** 20))}MB`,
      // Loads need not keep the files' row order (a fifth faster); every query that returns rows sorts them.
      preserve_insertion_order: 'false',
    };
    if (o.tmpDir) config.temp_directory = o.tmpDir;
    const instance = await DuckDBInstance.create(o.file, config).catch((e: Error) => {
      // Two processes on one state folder (a collector with its read side, and `tracklake api`) cannot share it.
      throw /lock/i.test(e.message)
        ? new ConfigError('stateDir', `the read cache ${o.file} is in use by another tracklake process; give this one its own --state-dir (or --no-api on the other)`)
        : new ConfigError('stateDir', `cannot open the read cache ${o.file}: ${e.message}`);
    });
    const conn = await instance.connect();
    const cache = new ReadCache(o, instance, conn);
    await cache.prepare();
    return cache;
  }

  /** Creates the tables; empties them when they were made by another version, for other storage or metrics. */
  private async prepare(): Promise<void> {
    await this.conn.run(q('cache_schema'));
    const identity = JSON.stringify({ version: CACHE_VERSION, storage: this.o.store.location, metrics: this.o.metrics.map(metricFingerprint).sort() });
    const rows = (await this.conn.runAndReadAll("SELECT value FROM cache_meta WHERE name = 'identity'")).getRowObjects();
    if (rows[0]?.value === identity) return;
    if (rows.length > 0) this.o.logger.info({ file: this.o.file }, 'read cache made for other storage, metrics or version: loading it again');
    for (const t of ['cache_meta', 'loaded', 'agg', 'tail_agg', 'sess', 'facts', 'tail_sess', 'tail_facts', 'event_days', 'event_props', 'violation_files', 'quarantined_files']) await this.conn.run(`DROP TABLE IF EXISTS ${t}`);
    await this.conn.run(q('cache_schema'));
    await this.conn.run(`INSERT INTO cache_meta VALUES ('identity', ${sqlString(identity)})`);
  }

  /** Refreshes every intervalMs in the background; failures are logged and retried at the next tick. */
  start(intervalMs: number): void {
    const tick = () => {
      this.refresh()
        .catch((e: unknown) => this.o.logger.error({ err: e }, 'read cache refresh failed; serving what is loaded'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, intervalMs).unref();
  }

  /** Brings the cache up to date with storage; concurrent callers share one run. */
  refresh(): Promise<RefreshReport> {
    this.running ??= this.refreshOnce().finally(() => {
      this.running = undefined;
      // Done or failed, the first refresh stops holding queries: they are served what is loaded.
      this.firstDone = true;
      this.eventsLoaded = true;
      this.wake();
    });
    return this.running;
  }

  /**
   * Resolves once the family's days from `from` on (every day, for null) are loaded: at once after the first
   * refresh, and during it as soon as the newest days a query reads are in. A node starting on a year of
   * files answers a month's dashboard after a month's load, not a year's.
   */
  ready(family: Family, from: string | null): Promise<void> {
    const want = from ?? ALL_DAYS;
    if (this.isReady(family, want)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ family, from: want, resolve }));
  }

  /** Resolves once the event names and violations of every day are loaded (the events page waits for it). */
  eventsReady(): Promise<void> {
    if (this.eventsLoaded || this.closing) return Promise.resolve();
    return new Promise((resolve) => this.eventWaiters.push(resolve));
  }

  private isReady(family: Family, from: string): boolean {
    return this.firstDone || this.closing || this.readyFrom[family] <= from;
  }

  private wake(): void {
    if (this.eventsLoaded || this.closing) for (const w of this.eventWaiters.splice(0)) w();
    this.waiters = this.waiters.filter((w) => {
      if (!this.isReady(w.family, w.from)) return true;
      w.resolve();
      return false;
    });
  }

  private async refreshOnce(): Promise<RefreshReport> {
    const started = performance.now();
    const report: RefreshReport = { aggregateDays: 0, sessionDays: 0, tailFiles: 0, tailSessionDays: 0, eventFiles: 0, removed: 0, ms: 0 };
    const store = this.o.store;
    const first = !this.firstDone;
    const [aggDays, sessDays] = await Promise.all([manifestDays(store, 'aggregates/_state/daily/'), manifestDays(store, 'sessions/_state/')]);
    const loaded = new Map<string, string>();
    for (const r of (await this.conn.runAndReadAll('SELECT key, etag FROM loaded')).getRowObjects()) loaded.set(String(r.key), String(r.etag));
    // Newest first: the days a dashboard opens on are the first ones loaded.
    const stale = (kind: string, days: Map<string, string>) => [...days].filter(([d, etag]) => loaded.get(`${kind}:${d}`) !== etag).map(([d]) => d).sort().reverse();
    const gone = (kind: string, days: Map<string, string>) => [...loaded.keys()].filter((k) => k.startsWith(`${kind}:`) && !days.has(k.slice(kind.length + 1))).map((k) => k.slice(kind.length + 1));
    const aggStale = stale('agg', aggDays);
    const sessStale = stale('sess', sessDays);
    const last = (days: Map<string, string>) => [...days.keys()].sort().at(-1) ?? null;

    const removeGone = async () => {
      const aggGone = gone('agg', aggDays);
      const sessGone = gone('sess', sessDays);
      if (aggGone.length + sessGone.length === 0) return;
      await this.transaction(async () => {
        for (const d of aggGone) await this.conn.run(`DELETE FROM agg WHERE day = DATE ${sqlString(d)}; DELETE FROM loaded WHERE key = ${sqlString(`agg:${d}`)}`);
        for (const d of sessGone) {
          await this.conn.run(`DELETE FROM sess WHERE day = DATE ${sqlString(d)}; DELETE FROM facts WHERE day = DATE ${sqlString(d)}; DELETE FROM loaded WHERE key = ${sqlString(`sess:${d}`)}`);
        }
      });
      report.removed = aggGone.length + sessGone.length;
    };
    // Both tails list the newest days' tracking files: once per refresh.
    const listings = new Map<string, Promise<ObjectInfo[]>>();
    const tracksOf = (day: string) => {
      if (!listings.has(day)) listings.set(day, listCsv(store, keys.tracksDay(day)));
      return listings.get(day)!;
    };
    const tails = async () => {
      this.computedThrough = { aggregates: last(aggDays), sessions: last(sessDays) };
      this.stopIfClosing();
      report.tailFiles = await this.refreshTail(loaded, tracksOf);
      this.stopIfClosing();
      report.tailSessionDays = await this.refreshSessionTail(tracksOf);
    };
    // A family is whole from the day after its newest day still to load.
    const pending = { aggregates: [...aggStale], sessions: [...sessStale] };
    const settle = () => {
      for (const f of FAMILIES) this.readyFrom[f] = pending[f].length > 0 ? addDays(pending[f][0]!, 1) : ALL_DAYS;
      this.wake();
    };

    // On the first refresh nothing is served until the days a query reads are loaded, so the tails (today's
    // numbers) come first and computed_through is set at once; later, a newly computed day is loaded before
    // computed_through moves onto it, so no query sees it from neither side.
    if (first) {
      await removeGone();
      await tails();
      settle();
    }
    const steps = await this.loadSteps(aggStale, aggDays, sessStale, sessDays);
    for (const step of steps) {
      this.stopIfClosing();
      const t = performance.now();
      await step.load();
      this.o.logger.debug({ family: step.family, days: step.days, ms: Math.round(performance.now() - t) }, 'read cache: days loaded');
      pending[step.family].splice(0, step.days);
      if (first) settle();
    }
    report.aggregateDays = aggStale.length;
    report.sessionDays = sessStale.length;
    if (!first) {
      await removeGone();
      await tails();
    }
    this.stopIfClosing();
    report.eventFiles = await this.refreshEvents();
    this.eventsLoaded = true;
    this.wake();
    report.ms = Math.round(performance.now() - started);
    if (report.aggregateDays + report.sessionDays + report.tailFiles + report.tailSessionDays + report.eventFiles + report.removed > 0) this.o.logger.info({ ...report, computedThrough: this.computedThrough }, 'read cache refreshed');
    return report;
  }

  /**
   * The loads of the stale days (each list newest first), DAYS_PER_LOAD days a step, the two families
   * alternating, so a month of both is loaded before anything older.
   */
  private async loadSteps(aggStale: string[], aggManifests: Map<string, string>, sessStale: string[], sessManifests: Map<string, string>): Promise<Array<{ family: Family; days: number; load: () => Promise<void> }>> {
    const store = this.o.store;
    const aggSteps: Array<{ family: Family; days: number; load: () => Promise<void> }> = [];
    const sessSteps: typeof aggSteps = [];
    if (aggStale.length > 0) {
      const wanted = new Set(aggStale);
      const files = (await listCsv(store, 'aggregates/daily/')).filter((f) => {
        const day = dayOfKey(f.key);
        return day !== undefined && wanted.has(day) && this.metricNames.has(path.posix.basename(f.key, '.csv'));
      });
      for (const days of chunks(aggStale, DAYS_PER_LOAD)) aggSteps.push({ family: 'aggregates', days: days.length, load: () => this.loadAggregateDays(days, files, aggManifests) });
    }
    if (sessStale.length > 0) {
      const wanted = new Set(sessStale);
      const inDays = (xs: ObjectInfo[]) => xs.filter((f) => wanted.has(dayOfKey(f.key) ?? ''));
      const [sessions, facts] = await Promise.all([listCsv(store, 'sessions/'), listCsv(store, 'track_facts/')]);
      const sessionFiles = inDays(sessions.filter((f) => f.key.endsWith('/sessions.csv') && !f.key.startsWith('sessions/_state/')));
      const factFiles = inDays(facts);
      for (const days of chunks(sessStale, DAYS_PER_LOAD)) sessSteps.push({ family: 'sessions', days: days.length, load: () => this.loadSessionDays(days, sessionFiles, factFiles, sessManifests) });
    }
    const steps: typeof aggSteps = [];
    for (let i = 0; i < Math.max(aggSteps.length, sessSteps.length); i++) steps.push(...[aggSteps[i], sessSteps[i]].filter((s) => s !== undefined));
    return steps;
  }

  /**
   * The tracking files of the days after computed_through (at most `tailDays` back from today), aggregated
   * one file at a time into tail_agg; files that went away, or whose day the aggregate job has since
   * computed, are dropped. Returns the number of files read.
   */
  private async refreshTail(loaded: Map<string, string>, tracksOf: (day: string) => Promise<ObjectInfo[]>): Promise<number> {
    const days = this.daysAfter(this.computedThrough.aggregates);
    const listed = (await Promise.all(days.map(tracksOf))).flat();
    const current = new Map(listed.map((f) => [`tail:${f.key}`, f]));
    const dropped = [...loaded.keys()].filter((k) => k.startsWith('tail:') && !current.has(k));
    const fresh = listed.filter((f) => loaded.get(`tail:${f.key}`) !== f.etag);
    if (dropped.length > 0) {
      await this.transaction(async () => {
        await this.keyTable('drop_keys', dropped);
        await this.conn.run("DELETE FROM tail_agg WHERE 'tail:' || src IN (SELECT key FROM drop_keys); DELETE FROM loaded WHERE key IN (SELECT key FROM drop_keys)");
      });
    }
    for (const batch of chunks(fresh, TAIL_FILES_PER_LOAD)) await this.loadTail(batch);
    return fresh.length;
  }

  /** The days after a job's last computed day, up to today and at most `tailDays` back. */
  private daysAfter(computedThrough: string | null): string[] {
    const today = dayOf(this.o.clock.now());
    const earliest = addDays(today, -(this.o.tailDays - 1));
    const first = computedThrough !== null && computedThrough >= earliest ? addDays(computedThrough, 1) : earliest;
    return first <= today ? daysBetween(first, today) : [];
  }

  /**
   * The sessions (and track facts) of the days after the sessions job's last day, computed by the sessions
   * job itself over the bucket's files into the cache's own folder (an overlay: nothing is written to the
   * bucket), so they are the numbers the nightly run will write. Recomputed when the tracking files of those
   * days or their neighbours change, at most every SESSION_TAIL_MS (or ten times the last run).
   */
  private async refreshSessionTail(tracksOf: (day: string) => Promise<ObjectInfo[]>): Promise<number> {
    const s = this.o.sessions;
    if (!s) return 0;
    const days = this.daysAfter(this.computedThrough.sessions);
    const window = days.length > 0 ? daysBetween(addDays(days[0]!, -1), days.at(-1)!) : [];
    const listed = (await Promise.all(window.map(tracksOf))).flat();
    const fingerprint = createHash('sha256').update(JSON.stringify([this.computedThrough.sessions, days, listed.map((f) => [f.key, f.etag])])).digest('hex');
    if (fingerprint === this.sessionTail.fingerprint) return 0;
    const now = this.o.clock.now();
    const sameDays = this.sessionTail.days === JSON.stringify(days);
    // Throttled while only new files arrive; a day the sessions job has since computed goes at once.
    if (sameDays && now - this.sessionTail.at < Math.max(SESSION_TAIL_MS, 10 * this.sessionTail.tookMs)) return 0;
    const started = performance.now();
    const withData = days.filter((d) => listed.some((f) => f.key.startsWith(keys.tracksDay(d))));
    await fs.rm(s.dir, { recursive: true, force: true });
    const top = new LocalStore(s.dir);
    if (withData.length > 0) {
      await runSessions(withData, {
        store: overlayStore(this.o.store, top), logger: this.o.logger, inactivityMinutes: s.inactivityMinutes, includeBots: s.includeBots,
        // Only these days: no earlier day is recomputed for a new link, and no user facts over the history.
        lookbackDays: 0, force: true, userFacts: false, tmpDir: this.o.tmpDir, memoryLimitBytes: s.memoryLimitBytes,
      });
    }
    const files = (xs: ObjectInfo[]) => xs.filter((f) => withData.includes(dayOfKey(f.key) ?? ''));
    const sessions = files((await listCsv(top, 'sessions/')).filter((f) => f.key.endsWith('/sessions.csv') && !f.key.startsWith('sessions/_state/')));
    const facts = files(await listCsv(top, 'track_facts/'));
    await this.transaction(async () => {
      await this.conn.run('DELETE FROM tail_sess; DELETE FROM tail_facts');
      await this.insertSessions(sessions, facts, 'tail_sess', 'tail_facts', top);
    });
    this.sessionTail = { fingerprint, at: now, days: JSON.stringify(days), tookMs: performance.now() - started };
    return withData.length;
  }

  private async loadTail(files: ObjectInfo[]): Promise<void> {
    await this.withStaged(this.o.store, [{ files, header: TRACK_HEADER }], ([tracked]) =>
      this.transaction(async () => {
        await this.keyTable('drop_keys', files.map((f) => `tail:${f.key}`));
        await this.conn.run("DELETE FROM tail_agg WHERE 'tail:' || src IN (SELECT key FROM drop_keys)");
        if (tracked!.length > 0) {
          await this.fileTable(tracked!.map((f) => ({ file: f.file, key: f.key, day: dayOfKey(f.key)!, metric: '' })));
          const column = (m: MetricDef) => `"m_${m.name}"`;
          const measures = this.o.metrics.map((m) => `${m.measure === 'count' ? 'count(*)' : 'sum(value)'} FILTER (WHERE event IN (${m.events.map(sqlString).join(', ')}))::DOUBLE AS ${column(m)}`);
          const structs = this.o.metrics.map((m) => `{'metric': ${sqlString(m.name)}, 'value': t.${column(m)}}`);
          // Malformed rows are skipped, as the aggregate job skips (and reports) them.
          const tracks = readCsvSql(tracked!.map((f) => f.file), TRACK_TYPES, { ignoreErrors: true, filename: true });
          await this.conn.run(q('tail_aggregates', { tracks, measures: measures.join(',\n      '), metrics: structs.join(', ') }));
        }
        await this.markLoaded(files.map((f) => [`tail:${f.key}`, f.etag]));
      }),
    );
  }

  private async loadAggregateDays(days: string[], files: ObjectInfo[], manifests: Map<string, string>): Promise<void> {
    const set = new Set(days);
    const mine = files.filter((f) => set.has(dayOfKey(f.key)!));
    await this.withStaged(this.o.store, [{ files: mine, header: AGGREGATE_HEADER }], ([staged]) =>
      this.transaction(async () => {
        await this.conn.run(`DELETE FROM agg WHERE day IN (${days.map((d) => `DATE ${sqlString(d)}`).join(', ')})`);
        if (staged!.length > 0) {
          await this.fileTable(staged!.map((f) => ({ file: f.file, key: f.key, day: dayOfKey(f.key)!, metric: path.posix.basename(f.key, '.csv') })));
          await this.conn.run(q('load_aggregates', { files: readCsvSql(staged!.map((f) => f.file), AGG_COLUMNS, { filename: true }) }));
        }
        await this.markLoaded(days.map((d) => [`agg:${d}`, manifests.get(d)!]));
      }),
    );
  }

  private async loadSessionDays(days: string[], sessionFiles: ObjectInfo[], factFiles: ObjectInfo[], manifests: Map<string, string>): Promise<void> {
    const set = new Set(days);
    const inChunk = (xs: ObjectInfo[]) => xs.filter((f) => set.has(dayOfKey(f.key)!));
    const dayList = days.map((d) => `DATE ${sqlString(d)}`).join(', ');
    await this.transaction(async () => {
      await this.conn.run(`DELETE FROM sess WHERE day IN (${dayList}); DELETE FROM facts WHERE day IN (${dayList})`);
      await this.insertSessions(inChunk(sessionFiles), inChunk(factFiles), 'sess', 'facts', this.o.store);
      await this.markLoaded(days.map((d) => [`sess:${d}`, manifests.get(d)!]));
    });
  }

  /** Session and track-fact files of a store into the given tables (within the caller's transaction). */
  private async insertSessions(sessionFiles: ObjectInfo[], factFiles: ObjectInfo[], sessTable: string, factTable: string, store: ObjectStore): Promise<void> {
    const groups = [{ files: sessionFiles, header: SESSION_HEADER }, { files: factFiles, header: TRACK_FACT_COLUMNS.join(',') }];
    await this.withStaged(store, groups, async ([sessions, facts]) => {
      const all = [...sessions!, ...facts!];
      if (all.length > 0) await this.fileTable(all.map((f) => ({ file: f.file, key: f.key, day: dayOfKey(f.key)!, metric: '' })));
      if (sessions!.length > 0) await this.conn.run(q('load_sessions', { table: sessTable, files: readCsvSql(sessions!.map((f) => f.file), SESSION_TYPES, { filename: true }) }));
      if (facts!.length > 0) await this.conn.run(q('load_facts', { table: factTable, files: readCsvSql(facts!.map((f) => f.file), TRACK_FACT_TYPES, { filename: true }) }));
    });
  }

  /**
   * The events page's files: every observed-schema file (a few per day), and the violation files (see
   * VIOLATIONS_FULL_LIST_MS for which are listed when). Each file's rows are replaced when its ETag changes
   * and dropped when it is gone. Returns the number of files (re)loaded.
   */
  private async refreshEvents(): Promise<number> {
    const store = this.o.store;
    const loaded = new Map<string, string>();
    for (const r of (await this.conn.runAndReadAll("SELECT key, etag FROM loaded WHERE key LIKE 'schema:%' OR key LIKE 'viol:%'")).getRowObjects()) loaded.set(String(r.key), String(r.etag));
    const now = this.o.clock.now();
    const full = now - this.violationsListedAt >= VIOLATIONS_FULL_LIST_MS;
    const today = dayOf(now);
    const prefixes = full ? ['violations/'] : [keys.violationsDay(addDays(today, -1)), keys.violationsDay(today)];
    const [schemas, violations] = await Promise.all([
      store.list('schemas/').then((xs) => xs.filter((o) => o.key.endsWith('.json') && dayOfKey(o.key) !== undefined)),
      Promise.all(prefixes.map((p) => listCsv(store, p))).then((xs) => xs.flat().filter((o) => dayOfKey(o.key) !== undefined)),
    ]);
    if (full) this.violationsListedAt = now;
    const inListing = (k: string) => k.startsWith('schema:') || prefixes.some((p) => k.startsWith(`viol:${p}`));
    const current = new Set([...schemas.map((o) => `schema:${o.key}`), ...violations.map((o) => `viol:${o.key}`)]);
    const gone = [...loaded.keys()].filter((k) => inListing(k) && !current.has(k));
    if (gone.length > 0) {
      await this.transaction(async () => {
        await this.keyTable('drop_keys', gone);
        await this.conn.run(`DELETE FROM event_days WHERE 'schema:' || src IN (SELECT key FROM drop_keys);
          DELETE FROM event_props WHERE 'schema:' || src IN (SELECT key FROM drop_keys);
          DELETE FROM violation_files WHERE 'viol:' || src IN (SELECT key FROM drop_keys);
          DELETE FROM quarantined_files WHERE 'viol:' || src IN (SELECT key FROM drop_keys);
          DELETE FROM loaded WHERE key IN (SELECT key FROM drop_keys)`);
      });
    }
    // Newest first, as everywhere in the cache.
    const newest = (a: ObjectInfo, b: ObjectInfo) => (a.key < b.key ? 1 : -1);
    const freshSchemas = schemas.filter((o) => loaded.get(`schema:${o.key}`) !== o.etag).sort(newest);
    const freshViolations = violations.filter((o) => loaded.get(`viol:${o.key}`) !== o.etag).sort(newest);
    for (const batch of chunks(freshSchemas, SCHEMA_FILES_PER_LOAD)) {
      this.stopIfClosing();
      await this.loadSchemaFiles(batch);
    }
    for (const batch of chunks(freshViolations, TAIL_FILES_PER_LOAD)) {
      this.stopIfClosing();
      await this.loadViolationFiles(batch);
    }
    return freshSchemas.length + freshViolations.length;
  }

  private async loadSchemaFiles(files: ObjectInfo[]): Promise<void> {
    const bodies = await Promise.all(files.map(async (f) => ({ f, schema: parseSchemaFile(await this.o.store.get(f.key)) })));
    const events: string[] = [];
    const props: string[] = [];
    for (const { f, schema } of bodies) {
      if (!schema) {
        this.o.logger.warn({ key: f.key }, 'not an observed-schema file: skipped by the read cache');
        continue;
      }
      const head = `${sqlString(f.key)}, DATE ${sqlString(dayOfKey(f.key)!)}, ${sqlString(schema.tenant)}`;
      for (const [observed, shape] of Object.entries(schema.events)) {
        if (!Number.isFinite(shape?.count)) continue;
        // Identify calls under their type, as violation files name them.
        const name = observed === IDENTIFY ? 'identify' : observed;
        events.push(`(${head}, ${sqlString(name)}, ${Math.trunc(shape.count)})`);
        for (const [property, counts] of Object.entries(shape.properties ?? {})) {
          // Top-level names only: nested paths (`a.b`, `a[]`) are the schema's detail, not the conventions'.
          if (/[.[]/.test(property)) continue;
          const n = Object.values(counts ?? {}).reduce((a: number, k) => a + (Number(k) || 0), 0);
          props.push(`(${head}, ${sqlString(name)}, ${sqlString(property)}, ${n})`);
        }
      }
    }
    await this.transaction(async () => {
      await this.keyTable('drop_keys', files.map((f) => f.key));
      await this.conn.run('DELETE FROM event_days WHERE src IN (SELECT key FROM drop_keys); DELETE FROM event_props WHERE src IN (SELECT key FROM drop_keys)');
      for (const part of chunks(events, 1000)) await this.conn.run(`INSERT INTO event_days VALUES ${part.join(', ')}`);
      for (const part of chunks(props, 1000)) await this.conn.run(`INSERT INTO event_props VALUES ${part.join(', ')}`);
      await this.markLoaded(files.map((f) => [`schema:${f.key}`, f.etag]));
    });
  }

  private async loadViolationFiles(files: ObjectInfo[]): Promise<void> {
    await this.withStaged(this.o.store, [{ files, header: VIOLATION_HEADER }], ([staged]) =>
      this.transaction(async () => {
        await this.keyTable('drop_keys', files.map((f) => f.key));
        await this.conn.run('DELETE FROM violation_files WHERE src IN (SELECT key FROM drop_keys); DELETE FROM quarantined_files WHERE src IN (SELECT key FROM drop_keys)');
        if (staged!.length > 0) {
          await this.fileTable(staged!.map((f) => ({ file: f.file, key: f.key, day: dayOfKey(f.key)!, metric: '' })));
          // Malformed rows are skipped, as `plan report` skips them.
          await this.conn.run(q('load_violations', { violations: readCsvSql(staged!.map((f) => f.file), LAKE.violations.columns, { ignoreErrors: true, filename: true }) }));
        }
        await this.markLoaded(files.map((f) => [`viol:${f.key}`, f.etag]));
      }),
    );
  }

  /** Each group's files staged for DuckDB while body runs (a file of the wrong shape is skipped, with a warning). */
  private async withStaged<T>(store: ObjectStore, groups: ReadonlyArray<{ files: ObjectInfo[]; header: string }>, body: (staged: StagedFile[][]) => Promise<T>): Promise<T> {
    const stager = new Stager(store, this.o.tmpDir);
    try {
      const staged: StagedFile[][] = [];
      for (const g of groups) {
        const s = await stager.objects(g.files, g.header);
        for (const skipped of s.skipped) this.o.logger.warn(skipped, 'file of the wrong shape skipped by the read cache');
        staged.push(s.files);
      }
      return await body(staged);
    } finally {
      await stager.cleanup();
    }
  }

  private async fileTable(rows: Array<{ file: string; key: string; day: string; metric: string }>): Promise<void> {
    await this.conn.run('CREATE OR REPLACE TEMP TABLE load_files (file VARCHAR, key VARCHAR, day DATE, metric VARCHAR)');
    for (const part of chunks(rows, 1000)) {
      await this.conn.run(`INSERT INTO load_files VALUES ${part.map((r) => `(${sqlString(r.file)}, ${sqlString(r.key)}, DATE ${sqlString(r.day)}, ${sqlString(r.metric)})`).join(', ')}`);
    }
  }

  private async keyTable(name: string, keys: string[]): Promise<void> {
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE ${name} (key VARCHAR)`);
    for (const part of chunks(keys, 1000)) await this.conn.run(`INSERT INTO ${name} VALUES ${part.map((k) => `(${sqlString(k)})`).join(', ')}`);
  }

  private async markLoaded(entries: Array<[string, string]>): Promise<void> {
    for (const part of chunks(entries, 1000)) {
      await this.conn.run(`INSERT OR REPLACE INTO loaded VALUES ${part.map(([k, e]) => `(${sqlString(k)}, ${sqlString(e)})`).join(', ')}`);
    }
  }

  private async transaction(body: () => Promise<void>): Promise<void> {
    await this.conn.run('BEGIN TRANSACTION');
    try {
      await body();
      await this.conn.run('COMMIT');
    } catch (e) {
      await this.conn.run('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  /** Rows of a read-only statement with named parameters ($name), on a reader connection of its own. */
  async read<T = Record<string, unknown>>(statement: string, values: Record<string, DuckDBValue> = {}, types?: Record<string, DuckDBType>): Promise<T[]> {
    return this.readers.use(async (conn) => (await conn.runAndReadAll(statement, values, types)).getRowObjects() as T[]);
  }

  private stopIfClosing(): void {
    // Each batch is its own transaction, so what was loaded stays loaded and the next start goes on from it.
    if (this.closing) throw new Error('read cache closing');
  }

  async close(): Promise<void> {
    this.closing = true;
    this.wake();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
    this.readers.close();
    this.conn.closeSync();
    this.instance.closeSync();
  }
}
