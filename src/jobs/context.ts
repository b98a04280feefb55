/**
 * What every job run holds: one DuckDB engine, a stager for its inputs and an output writer, all released
 * when the run ends, however it ends.
 *
 * DuckDB works within `memoryLimitBytes` and spills what does not fit (large aggregations, sorts, joins,
 * windows) to a folder of its own in the scratch folder, removed with the run. Running out of space there
 * ends the run with a ScratchFullError naming the folder; outputs already stored stay as they were, each
 * written atomically, and the day's manifest (written last) makes the next run redo what did not finish.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ScratchFullError } from '../lib/errors.js';
import type { ObjectStore } from '../storage/store.js';
import { Engine } from './engine.js';
import { Outputs } from './outputs.js';
import { Stager } from './staging.js';

export interface JobContext {
  engine: Engine;
  /** Stages a step's inputs; cleaned by the step (cleanup()) as it ends. */
  stager: Stager;
  /** Holds what must outlive a step until the run ends: snapshots of files the run replaces. */
  keep: Stager;
  out: Outputs;
}

export interface JobResources {
  /** Where staged inputs, rendered outputs and DuckDB's spill files go (default: the system's temp folder). */
  tmpDir?: string;
  /** DuckDB's memory budget; beyond it, it spills to the scratch folder. Default: DuckDB's own (80%). */
  memoryLimitBytes?: number;
  /** DuckDB's threads (default: one per core). */
  threads?: number;
}

/**
 * Promise.all that lets every promise settle before it throws the first failure. A job's renders run side
 * by side on DuckDB connections; throwing while one is still running would close the engine under it
 * (and closing a connection mid-query can block for good).
 */
export async function allSettled<T>(promises: ReadonlyArray<Promise<T>>): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

const OUT_OF_SPACE = /No space left on device|ENOSPC|disk is full|not enough space/i;

export async function withJob<T>(store: ObjectStore, r: JobResources, body: (ctx: JobContext) => Promise<T>): Promise<T> {
  const root = r.tmpDir ?? os.tmpdir();
  const spill = await fs.mkdtemp(path.join(root, 'tracklake-spill-')).catch((e: NodeJS.ErrnoException) => {
    throw OUT_OF_SPACE.test(e.message) ? new ScratchFullError(root, e) : e;
  });
  const engine = await Engine.open({ tempDir: spill, memoryLimitBytes: r.memoryLimitBytes, threads: r.threads });
  const stager = new Stager(store, r.tmpDir);
  const keep = new Stager(store, r.tmpDir);
  const out = new Outputs(engine, store, r.tmpDir);
  try {
    const result = await body({ engine, stager, keep, out });
    await out.flush();
    return result;
  } catch (e) {
    throw OUT_OF_SPACE.test((e as Error).message ?? '') ? new ScratchFullError(root, e) : e;
  } finally {
    await stager.cleanup();
    await keep.cleanup();
    await out.close();
    engine.close();
    await fs.rm(spill, { recursive: true, force: true });
  }
}
