/** The entry of a nightly task's thread (cli/nightly.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config/config.js';
import { s3Settings } from '../config/config.js';
import { openStore } from '../storage/open.js';
import { aggregateTask } from './aggregate.js';
import { makeLogger } from './common.js';
import type { NightlyOutcome, NightlyTaskName } from './nightly.js';
import { erasureTask } from './regulations.js';
import { sessionsTask } from './sessions.js';

const { config, name, today } = workerData as { config: Config; name: NightlyTaskName; today: string };
const TASKS = { erasure: erasureTask, aggregates: aggregateTask, sessions: sessionsTask };

let outcome: NightlyOutcome;
try {
  const store = await openStore(config.storage, s3Settings(config));
  const summary = await TASKS[name](config, store, makeLogger(config.logLevel)).run(today);
  outcome = { ok: true, summary };
} catch (e) {
  outcome = { ok: false, error: (e as Error).message ?? String(e) };
}
parentPort!.postMessage(outcome);
