/**
 * The nightly tasks of `serve` (erasure, aggregates, track analysis), each run on a thread of its own.
 * They share the process with the collector, and their JavaScript works over whole listings: at production
 * size (a year of files of three nodes is over a million keys) an erasure's lookups, its index packs and a
 * local store's listing held the request thread for seconds at a time, where the collector must answer
 * within milliseconds. On a thread, a task builds its own store and logger from the configuration; a stop
 * ends it where it is, which is safe: every output is atomic and idempotent, and the next run catches up.
 */
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/config.js';
import type { NightlyTask } from '../jobs/scheduler.js';

export type NightlyTaskName = 'erasure' | 'aggregates' | 'sessions';

/** What the thread posts back: the task's summary, or why it failed. */
export type NightlyOutcome = { ok: true; summary: Record<string, unknown> } | { ok: false; error: string };

export interface NightlyThreads {
  tasks: NightlyTask[];
  /** Ends the tasks running now (serve's stop). */
  stop(): Promise<void>;
}

const WORKER_URL = new URL('./nightly-worker.js', import.meta.url);

export function nightlyThreads(config: Config, names: readonly NightlyTaskName[] = ['erasure', 'aggregates', 'sessions']): NightlyThreads {
  const running = new Set<Worker>();
  let stopping = false;
  const task = (name: NightlyTaskName): NightlyTask => ({
    name,
    run: (today) =>
      new Promise((resolve, reject) => {
        const worker = new Worker(WORKER_URL, { workerData: { config, name, today } });
        running.add(worker);
        let outcome: NightlyOutcome | undefined;
        let crash: Error | undefined;
        worker.on('message', (m: NightlyOutcome) => (outcome = m));
        worker.on('error', (e) => (crash = e));
        worker.on('exit', (code) => {
          running.delete(worker);
          if (outcome?.ok) resolve(outcome.summary);
          else if (outcome) reject(new Error(outcome.error));
          else if (stopping) reject(new Error(`${name} stopped with the collector; the next run catches up`));
          else reject(new Error(crash?.message ?? `the ${name} thread ended (exit code ${code}) before it finished`));
        });
      }),
  });
  return {
    tasks: names.map(task),
    async stop() {
      stopping = true;
      await Promise.all([...running].map((w) => w.terminate()));
    },
  };
}
