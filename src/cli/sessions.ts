/** `tracklake sessions` and `tracklake funnel`: track analysis from the command line. */
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { jobResources, s3Settings } from '../config/config.js';
import type { NightlyTask } from '../jobs/scheduler.js';
import { factFiles, flow, funnel } from '../jobs/sessions/funnel.js';
import { runSessions, staleSessionDays, type SessionOptions } from '../jobs/sessions/job.js';
import { addDays, dayOfKey, daysBetween } from '../lib/dates.js';
import { ConfigError } from '../lib/errors.js';
import { openStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/store.js';
import { progressBar, selectDays, type DaySelection } from './aggregate.js';
import { printSkipped } from './common.js';

function options(config: Config, store: ObjectStore, logger: Logger): SessionOptions {
  return { ...jobResources(config), store, logger, inactivityMinutes: config.inactivityMinutes, includeBots: config.sessionsIncludeBots, lookbackDays: config.lookbackDays };
}

/** Every day that has tracking files, for --rebuild. */
async function allTrackedDays(store: ObjectStore): Promise<string[]> {
  const days = new Set<string>();
  for (const o of await store.list('tracks/')) {
    const day = dayOfKey(o.key);
    if (day) days.add(day);
  }
  return [...days].sort();
}

/** Yesterday and every day of the lookback window whose window inputs changed or that was never analysed. */
async function pendingSessionDays(store: ObjectStore, today: string, o: SessionOptions): Promise<string[]> {
  const yesterday = addDays(today, -1);
  const window = daysBetween(addDays(today, -o.lookbackDays), yesterday);
  return [...new Set([...(await staleSessionDays(store, window, o)), yesterday])].sort();
}

export function sessionsTask(config: Config, store: ObjectStore, logger: Logger): NightlyTask {
  const o = options(config, store, logger);
  return {
    name: 'sessions',
    async run(today) {
      const days = await pendingSessionDays(store, today, o);
      const r = await runSessions(days, { ...o, force: false });
      return { computed: r.computed, aliasChanged: r.aliasChanged, aliases: r.aliases, badRows: r.report.badRowCount };
    },
  };
}

export async function sessionsCommand(config: Config, sel: DaySelection & { force?: boolean; rebuild?: boolean; inactivityMinutes?: string }, logger: Logger): Promise<number> {
  const store = await openStore(config.storage, s3Settings(config));
  const o = options(config, store, logger);
  let days: string[];
  if (sel.rebuild) {
    if (sel.date || sel.from || sel.to || sel.last || sel.pending) throw new ConfigError('rebuild', '--rebuild recomputes everything; give no days with it');
    days = await allTrackedDays(store);
  } else {
    const chosen = selectDays(sel, Date.now());
    days = chosen.days ?? (await pendingSessionDays(store, chosen.pendingToday!, o));
  }
  const run = await runSessions(days, { ...o, force: sel.force || sel.rebuild, rebuildAliases: sel.rebuild, onProgress: days.length > 1 ? progressBar('sessions') : undefined });
  printSkipped(run.report);
  process.stdout.write(`${JSON.stringify({ computed: run.computed, unchanged: run.unchanged.length, aliasChanged: run.aliasChanged, aliases: run.aliases, filesWritten: run.filesWritten, badRows: run.report.badRowCount })}\n`);
  return 0;
}

export async function funnelCommand(config: Config, o: { from?: string; to?: string; last?: string; steps?: string; flow?: string; tenant?: string; json?: boolean }): Promise<number> {
  if (o.last === undefined && (o.from === undefined || o.to === undefined)) throw new ConfigError('from', 'give --from and --to, or --last (e.g. --last 7d)');
  const { days } = selectDays({ from: o.from, to: o.to, last: o.last }, Date.now());
  const store = await openStore(config.storage, s3Settings(config));
  const from = days![0]!;
  const to = days!.at(-1)!;
  const range = { from, to, tenant: o.tenant, files: await factFiles(store, from, to) };
  // Zeros alone would not say why: the range may simply not have been analysed yet.
  if (range.files.length === 0) {
    process.stderr.write(`tracklake: no track facts for ${from}..${to} in ${store.location}; \`tracklake sessions --from ${from} --to ${to}\` writes them\n`);
  }
  if (o.flow !== undefined) {
    if (o.flow.trim() === '') throw new ConfigError('flow', 'name the event to follow, e.g. --flow view');
    const paths = await flow(store, { ...range, event: o.flow.trim().toLowerCase() });
    if (o.json) process.stdout.write(`${JSON.stringify(paths)}\n`);
    else for (const p of paths) process.stdout.write(`${String(p.sessions).padStart(8)}  ${[o.flow, ...p.events].join(' > ')}${p.events.length === 0 ? ' (session ends)' : ''}\n`);
    return 0;
  }
  const steps = (o.steps ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (steps.length < 2) throw new ConfigError('steps', 'give at least two comma-separated events, e.g. --steps "load,view,chat,order"');
  const result = await funnel(store, { ...range, steps });
  if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else for (const s of result) process.stdout.write(`${s.step.padEnd(20)} ${String(s.sessions).padStart(10)} sessions  ${(s.conversion * 100).toFixed(1).padStart(6)}%\n`);
  return 0;
}
