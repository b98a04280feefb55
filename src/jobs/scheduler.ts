/**
 * The nightly run inside `serve`: at --schedule-time in --timezone (default 01:00 UTC) it runs the jobs in
 * order (aggregates, then track analysis), each doing its own catch-up over the lookback window. croner's
 * `protect` keeps a slow night from overlapping the next one. With shared state, one node per bucket runs
 * it (runNightlyLeased); without, every node does, which is safe because every job output is atomic and
 * idempotent, only more work.
 */
import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { dayOf } from '../lib/dates.js';
import type { Leases } from '../storage/redis.js';

export interface NightlyTask {
  name: string;
  /** `today` is the UTC date of the run; tasks work on the days before it. */
  run(today: string): Promise<Record<string, unknown>>;
}

/** With shared state (dedupRedisUrl), one node per bucket runs a night: the one holding its lease. */
export interface NightlyLease {
  leases: Leases;
  /** This node's name in the lease. */
  holder: string;
  /** The lease lasts this long unless renewed (every third of it while the jobs run). */
  ttlMs: number;
}

export function startNightly(opts: { time: string; timezone: string; clock: Clock; logger: Logger; tasks: NightlyTask[]; lease?: NightlyLease }): Cron {
  const [hh, mm] = opts.time.split(':');
  return new Cron(`${Number(mm)} ${Number(hh)} * * *`, { timezone: opts.timezone, protect: true, catch: true, unref: true }, async () => {
    const today = dayOf(opts.clock.now());
    if (opts.lease) await runNightlyLeased(opts.tasks, today, opts.logger, opts.lease);
    else await runNightly(opts.tasks, today, opts.logger);
  });
}

export async function runNightly(tasks: NightlyTask[], today: string, logger: Logger): Promise<void> {
  for (const t of tasks) {
    const started = Date.now();
    try {
      const summary = await t.run(today);
      logger.info({ task: t.name, today, ms: Date.now() - started, ...summary }, 'nightly task done');
    } catch (e) {
      logger.error({ task: t.name, today, err: (e as Error).message }, 'nightly task failed; the next run catches up');
    }
  }
}

/** How long a finished night is remembered: past the next night, so a late node never runs it again. */
const NIGHT_DONE_MS = 36 * 3600_000;

/**
 * The night's run on the node that takes its lease; the others wait until the night is marked done, and
 * take the lease over when its holder stops renewing it (it died): the jobs pick up where it left off, as
 * they catch up after any failure. Shared state that cannot be reached means running here: every output is
 * atomic and idempotent, so a second run costs work, never correctness. Returns whether this node ran it.
 */
export async function runNightlyLeased(tasks: NightlyTask[], today: string, logger: Logger, lease: NightlyLease): Promise<boolean> {
  const name = `nightly:${today}`;
  const { leases, holder, ttlMs } = lease;
  try {
    for (;;) {
      if (await leases.marked(name)) {
        logger.info({ today }, 'nightly run done by another node');
        return false;
      }
      if (await leases.acquire(name, holder, ttlMs)) break;
      await new Promise((r) => setTimeout(r, ttlMs / 3));
    }
  } catch (e) {
    logger.warn({ today, err: (e as Error).message }, 'shared state unreachable: running the nightly jobs here (safe: their outputs are idempotent)');
    await runNightly(tasks, today, logger);
    return true;
  }
  logger.info({ today, holder }, 'nightly lease taken: running the jobs');
  const renewal = setInterval(() => {
    leases.renew(name, holder, ttlMs).then(
      (held) => held || logger.warn({ today }, 'nightly lease lost: another node may run the jobs too (safe)'),
      (e: Error) => logger.warn({ today, err: e.message }, 'nightly lease not renewed'),
    );
  }, ttlMs / 3);
  renewal.unref();
  try {
    await runNightly(tasks, today, logger);
    await leases.mark(name, NIGHT_DONE_MS).catch((e: Error) => logger.warn({ err: e.message }, 'night not marked done; another node may run it again (safe)'));
    return true;
  } finally {
    clearInterval(renewal);
    await leases.release(name, holder).catch(() => undefined);
  }
}
