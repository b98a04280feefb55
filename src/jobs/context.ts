/**
 * What every job run holds: one DuckDB engine, a stager for its inputs and an output writer, all released
 * when the run ends, however it ends.
 */
import type { ObjectStore } from '../storage/store.js';
import { Engine } from './engine.js';
import { Outputs } from './outputs.js';
import { Stager } from './staging.js';

export interface JobContext {
  engine: Engine;
  stager: Stager;
  out: Outputs;
}

export async function withJob<T>(store: ObjectStore, tmpDir: string | undefined, body: (ctx: JobContext) => Promise<T>): Promise<T> {
  const engine = await Engine.open({ tempDir: tmpDir });
  const stager = new Stager(store, tmpDir);
  const out = new Outputs(engine, store, tmpDir);
  try {
    const result = await body({ engine, stager, out });
    await out.flush();
    return result;
  } finally {
    await stager.cleanup();
    await out.close();
    engine.close();
  }
}
