/**
 * The nightly run inside `serve`: at --schedule-time in --timezone (default 01:00 UTC) it runs the jobs in
 * order (aggregates, then track analysis), each doing its own catch-up over the lookback window. croner's
 * `protect` keeps a slow night from overlapping the next one; two nodes running it at once is safe because
 * every job output is atomic and idempotent.
 */
import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { dayOf } from '../lib/dates.js';

export interface NightlyTask {
  name: string;
  /** `today` is the UTC date of the run; tasks work on the days before it. */
  run(today: string): Promise<Record<string, unknown>>;
}

export function startNightly(opts: { time: string; timezone: string; clock: Clock; logger: Logger; tasks: NightlyTask[] }): Cron {
  const [hh, mm] = opts.time.split(':');
  return new Cron(`${Number(mm)} ${Number(hh)} * * *`, { timezone: opts.timezone, protect: true, catch: true, unref: true }, async () => {
    await runNightly(opts.tasks, dayOf(opts.clock.now()), opts.logger);
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
