/**
 * Track analysis (seed 000, after Segment's Looker block for tracks): identity stitching into an alias map,
 * sessions cut by inactivity, track facts carrying session and user keys, session facts and user facts.
 *
 * A run first brings the alias map up to date with the links of the days it computes, then sessionizes
 * each day over a three-day window (the day and its neighbours: sessions are capped at 24 hours, so nothing
 * further can matter). A day is recomputed when its window's tracking files changed, when the alias map now maps
 * one of its devices elsewhere (a device linked to an account for the first time), or on --force/--rebuild.
 * The staging, manifests, atomic writes and bad-row handling are the aggregate job's.
 */
import type { Logger } from 'pino';
import { addDays, dayPath, dayStartMs, daysBetween } from '../../lib/dates.js';
import type { ObjectInfo, ObjectStore } from '../../storage/store.js';
import { ALIAS_TYPES, keys, SESSION_STATE_TYPES, TRACK_FACT_TYPES, USER_DEVICE_TYPES } from '../../lake/layout.js';
import { TRACK_COLUMNS } from '../../tracking/columns.js';
import { type Engine, sql, sqlString } from '../engine.js';
import { allSettled, type JobContext, type JobResources, withJob } from '../context.js';
import { type BuiltFrom, builtFrom, builtFromMatches, collectRejects, manifestBody, type Outputs, readManifest, sameInputs, type RunReport } from '../outputs.js';
import { listCsv, type Snapshot, snapshotFiles, type StagedFile, type Stager } from '../staging.js';
import { IDENTITY_HEADER, IDENTITY_TYPES, readCsvSql, relationSql, TRACK_HEADER, TRACK_TYPES } from '../tracks.js';
import { factInputs, writeTrackFacts } from './track-facts.js';

export const ALIAS_COLUMNS = Object.keys(ALIAS_TYPES) as Array<keyof typeof ALIAS_TYPES>;
export const TRACK_FACT_COLUMNS = Object.keys(TRACK_FACT_TYPES) as Array<keyof typeof TRACK_FACT_TYPES>;
export { TRACK_FACT_TYPES };
const STATE_TYPES = SESSION_STATE_TYPES;

export const sessionPaths = {
  aliasMap: keys.aliasMap,
  sessions: keys.sessions,
  trackFacts: keys.trackFacts,
  state: keys.sessionState,
  manifest: keys.sessionManifest,
  userFacts: keys.userFacts,
  userDevices: keys.userDevices,
  userInputs: keys.userInputs,
};

/** Days recomputed in a run up to which the user facts are updated by their change; more reads every day's state. */
const INCREMENTAL_DAYS = 7;

export interface SessionOptions extends JobResources {
  store: ObjectStore;
  logger: Logger;
  inactivityMinutes: number;
  includeBots: boolean;
  /** Days before the newest day of the run checked for alias changes. */
  lookbackDays: number;
  force?: boolean;
  /** Write the user facts (default); off where only the days' sessions are wanted (the read side's newest days). */
  userFacts?: boolean;
  /** Rebuild the alias map from scratch (with every day of the run) instead of extending it. */
  rebuildAliases?: boolean;
  onProgress?: (done: number, total: number, day: string) => void;
}

export interface SessionRun {
  computed: string[];
  unchanged: string[];
  aliasChanged: string[];
  aliases: number;
  filesWritten: number;
  report: RunReport;
  /** How the user facts were brought up to date (none: no day was computed, or userFacts is off). */
  userFacts?: 'incremental' | 'full';
}

// Every column of a row: their hash orders events of a user that share a timestamp.
const ROW_COLUMNS = TRACK_COLUMNS.map((c) => `t."${c}"`).join(', ');

const definitionOf = (o: SessionOptions) => JSON.stringify({ v: 1, inactivityMinutes: o.inactivityMinutes, includeBots: o.includeBots });
const botFilter = (o: SessionOptions, alias = '') => (o.includeBots ? '' : `AND ${alias}bot IS DISTINCT FROM true`);

/** The tracking files a day's results depend on: its own and its two neighbours'. */
async function windowInputs(store: ObjectStore, day: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for (const d of [addDays(day, -1), day, addDays(day, 1)]) out.push(...(await listCsv(store, keys.tracksDay(d))));
  return out;
}

/** Days of the window that have tracking files and no results yet, or whose window inputs changed. */
export async function staleSessionDays(store: ObjectStore, days: readonly string[], o: SessionOptions): Promise<string[]> {
  const out: string[] = [];
  for (const day of days) {
    const manifest = await readManifest(store, sessionPaths.manifest(day));
    const inputs = await windowInputs(store, day);
    if (!manifest) {
      // Never computed: due when the day itself has tracking files (its neighbours' alone make no sessions).
      const own = keys.tracksDay(day);
      if (inputs.some((x) => x.key.startsWith(own))) out.push(day);
    } else if (manifest.definition !== definitionOf(o) || !sameInputs(manifest.inputs, inputs)) out.push(day);
  }
  return out;
}

export async function runSessions(days: readonly string[], o: SessionOptions): Promise<SessionRun> {
  return withJob(o.store, o, async ({ engine, stager, keep, out }) => {
    const run: SessionRun = { computed: [], unchanged: [], aliasChanged: [], aliases: 0, filesWritten: 0, report: { badRows: [], badRowCount: 0, skippedFiles: [] } };
    // 1. Which days' tracking files changed since they were computed (or never were, or --force).
    const asked = o.force ? [...days] : await staleSessionDays(o.store, days, o);

    // 2. The alias map: the map as it stood (unless rebuilding), the run's identity links, and the links in
    //    the tracking rows of the days asked; an unchanged day's links are in the map already. With one day
    //    asked (the nightly run), its window is loaded once: its rows give the links, then the sessions.
    //    Without a map to extend (rebuilding, or none stored yet) every day of the run gives its links.
    const previousInfo = o.rebuildAliases ? [] : (await o.store.list(sessionPaths.aliasMap)).filter((x) => x.key === sessionPaths.aliasMap);
    const linkDays = previousInfo.length === 0 ? [...days] : asked;
    let windows = 0;
    const load = (day: string) => loadWindow(engine, stager, o, day, `session_rejects_${windows++}`);
    const preloaded = linkDays.length === 1 && asked.includes(linkDays[0]!) ? await load(linkDays[0]!) : undefined;
    const linkTracks = preloaded ? undefined : await stager.objects((await Promise.all(linkDays.map((d) => listCsv(o.store, keys.tracksDay(d))))).flat(), TRACK_HEADER);
    const identities = await stager.objects((await Promise.all(days.map((d) => listCsv(o.store, keys.identitiesDay(d))))).flat(), IDENTITY_HEADER);
    const previous = await stager.objects(previousInfo, ALIAS_COLUMNS.join(','));
    run.report.skippedFiles.push(...(linkTracks?.skipped ?? []), ...identities.skipped, ...previous.skipped);
    await engine.run(
      sql('alias_map', {
        // Malformed rows are set aside here and reported by the day that reads them.
        tracks: preloaded ? '(SELECT * FROM events WHERE included)' : relationSql(linkTracks!.files.map((f) => f.file), TRACK_TYPES, { rejectsTable: 'alias_rejects' }),
        identities: relationSql(identities.files.map((f) => f.file), IDENTITY_TYPES),
        previous: relationSql(previous.files.map((f) => f.file), ALIAS_TYPES),
        bot_filter: preloaded ? '' : botFilter(o), // the loaded rows that take part are no bots'
      }),
    );
    await engine.run('DROP TABLE IF EXISTS alias_rejects; DROP TABLE IF EXISTS alias_rejects_scans');
    await out.write(sessionPaths.aliasMap, 'SELECT tenantid, deviceid, userid, time FROM alias_map ORDER BY tenantid, deviceid');
    run.aliases = Number((await engine.all<{ n: bigint }>('SELECT count(*) AS n FROM alias_map'))[0]!.n);
    await stager.cleanup();

    // 3. Which days to compute: those asked, plus days the new links change.
    const newest = [...days].sort().at(-1);
    run.aliasChanged = newest ? await aliasChangedDays(engine, stager, o, addDays(newest, -o.lookbackDays), newest) : [];
    const todo = [...new Set([...asked, ...run.aliasChanged])].sort();
    run.unchanged = days.filter((d) => !todo.includes(d));

    // 4. Each day over its three-day window (the preloaded one first, while its rows are loaded).
    const order = preloaded ? [preloaded.day, ...todo.filter((d) => d !== preloaded.day)] : todo;
    // What the days' state files held before: the change the user facts are updated by (none kept for a
    // backfill, which reads every day's state anyway).
    const oldStates = new Map<string, Snapshot>();
    for (const [i, day] of order.entries()) {
      if (todo.length <= INCREMENTAL_DAYS && o.userFacts !== false) {
        for (const [k, v] of await snapshotFiles(o.store, keep, `sessions/_state/${dayPath(day)}/`, [sessionPaths.state(day)])) oldStates.set(k, v);
      }
      const window = day === preloaded?.day ? preloaded : await load(day);
      const report = await computeDay(engine, day, window, o, out);
      await out.flush(); // the manifest vouches for the day's files: they are stored first
      out.writeText(sessionPaths.manifest(day), manifestBody(definitionOf(o), window.inputs, report));
      await stager.cleanup();
      run.computed.push(day);
      run.report.badRowCount += report.badRowCount;
      run.report.badRows.push(...report.badRows);
      run.report.skippedFiles.push(...report.skippedFiles);
      o.onProgress?.(i + 1, todo.length, day);
    }

    // 5. User facts, from the per-(user, device) state updated by the days' change (or from every day's state).
    if (todo.length > 0 && o.userFacts !== false) {
      await out.flush(); // they read the state files this run wrote
      run.userFacts = await writeUserFacts({ engine, stager, keep, out }, o, todo, oldStates);
      await stager.cleanup();
    }
    await out.flush();
    run.computed.sort();
    run.filesWritten = out.written;
    return run;
  });
}

/**
 * users/_state/user_devices.csv (per tenant, user and device over the whole history) and the user facts
 * from it. Updated by the recomputed days' change when its record (users/_state/_inputs.json: its own ETag
 * and every day state's, see BuiltFrom) matches the state files as they were; else, for a backfill, or when a first or
 * last time cannot be told from the change, computed from every day's state. Both give the same bytes.
 */
async function writeUserFacts({ stager, out }: JobContext, o: SessionOptions, todo: readonly string[], oldStates: ReadonlyMap<string, Snapshot>): Promise<'incremental' | 'full'> {
  const states = (await o.store.list('sessions/_state/')).filter((x) => x.key.endsWith('/state.csv'));
  const current = (await o.store.list(sessionPaths.userDevices)).find((x) => x.key === sessionPaths.userDevices);
  let file: string | undefined;
  const rewritten = todo.map((d) => ({ key: sessionPaths.state(d), etag: oldStates.get(sessionPaths.state(d))?.etag }));
  if (todo.length <= INCREMENTAL_DAYS && current && builtFromMatches(parseUserInputs(await o.store.get(sessionPaths.userInputs)), current.etag, states, rewritten)) {
    const cur = (await stager.objects([current], Object.keys(USER_DEVICE_TYPES).join(','))).files;
    const changed = new Set(todo.map(sessionPaths.state));
    const now = await stager.objects(states.filter((x) => changed.has(x.key)), Object.keys(STATE_TYPES).join(','));
    const old = todo.flatMap((d) => oldStates.get(sessionPaths.state(d))?.file ?? []);
    if (cur.length === 1) {
      file = await out.render(sql('user_devices_merge', {
        current: readCsvSql([cur[0]!.file], USER_DEVICE_TYPES),
        old: relationSql(old, STATE_TYPES),
        new: relationSql(now.files.map((f) => f.file), STATE_TYPES),
      })).catch((e: Error) => {
        if (/first or last time unknown/.test(e.message)) return undefined;
        throw e;
      });
    }
  }
  const mode = file ? 'incremental' : 'full';
  if (!file) {
    const all = await stager.objects(states, Object.keys(STATE_TYPES).join(','));
    file = await out.render(sql('user_devices', { states: relationSql(all.files.map((f) => f.file), STATE_TYPES) }));
  }
  const facts = await out.render(sql('user_facts', { devices: readCsvSql([file], USER_DEVICE_TYPES) }));
  out.writeFile(sessionPaths.userDevices, file);
  out.writeFile(sessionPaths.userFacts, facts);
  await out.flush(); // the record vouches for the state: it is stored first
  const written = (await o.store.list(sessionPaths.userDevices)).find((x) => x.key === sessionPaths.userDevices);
  out.writeText(sessionPaths.userInputs, `${JSON.stringify({ version: 2, ...builtFrom(written?.etag, states) })}\n`);
  return mode;
}

function parseUserInputs(body: Buffer | undefined): BuiltFrom | undefined {
  if (!body) return undefined;
  try {
    const x = JSON.parse(body.toString('utf8')) as BuiltFrom & { version?: number };
    return x.version === 2 ? x : undefined;
  } catch {
    return undefined;
  }
}

/** Days in [from, to] whose devices the current alias map now maps to another user. */
async function aliasChangedDays(engine: Engine, stager: Stager, o: SessionOptions, from: string, to: string): Promise<string[]> {
  const keys = new Set(daysBetween(from, to).map(sessionPaths.state));
  const infos = (await o.store.list('sessions/_state/')).filter((x) => keys.has(x.key));
  const staged = await stager.objects(infos, Object.keys(STATE_TYPES).join(','));
  if (staged.files.length === 0) return [];
  const rows = await engine.all<{ day: string }>(sql('alias_changes', { states: relationSql(staged.files.map((f) => f.file), STATE_TYPES) }));
  await stager.cleanup();
  return rows.map((r) => r.day);
}

/** A day's window of tracking rows, loaded into `events`. */
interface Window {
  day: string;
  inputs: ObjectInfo[];
  files: StagedFile[];
  skipped: RunReport['skippedFiles'];
  rejects: string;
}

async function loadWindow(engine: Engine, stager: Stager, o: SessionOptions, day: string, rejects: string): Promise<Window> {
  const inputs = await windowInputs(o.store, day);
  const staged = await stager.objects(inputs, TRACK_HEADER);
  await engine.run(
    sql('load_events', {
      tracks: relationSql(staged.files.map((f) => f.file), TRACK_TYPES, { rejectsTable: rejects, filename: true }),
      row_columns: ROW_COLUMNS,
      bot_filter: botFilter(o, 't.'),
    }),
  );
  return { day, inputs, files: staged.files, skipped: staged.skipped, rejects };
}

async function computeDay(engine: Engine, day: string, window: Window, o: SessionOptions, out: Outputs): Promise<RunReport> {
  await engine.run(sql('sessionize', { inactivity_ms: String(Math.round(o.inactivityMinutes * 60_000)) }));
  const bounds = { day_start: String(dayStartMs(day)), day_end: String(dayStartMs(addDays(day, 1))) };
  const { badRows, badRowCount, keys } = await collectRejects(engine, window.rejects, window.files);
  const facts = await factInputs(engine, window.files, keys, bounds);
  // Side by side: the track facts are a copy in this thread, bound by the disk; DuckDB writes the keys and
  // the other outputs meanwhile, on one core fewer (measured on 2 cores, a 5 M-row day: 11.5-12.6 s for the
  // whole job against 12.8-13.2 s with both DuckDB threads; writing the other outputs first was slower).
  await engine.withCoreToSpare(() =>
    allSettled([
      writeTrackFacts(engine, out, sessionPaths.trackFacts(day), TRACK_FACT_COLUMNS.join(','), facts, bounds),
      out.write(sessionPaths.sessions(day), sql('session_rows', bounds)),
      out.write(sessionPaths.state(day), sql('session_state_rows', { ...bounds, day: sqlString(day) })),
    ]),
  );
  return { badRows, badRowCount, skippedFiles: window.skipped };
}
