/** What the benches that build lakes share: writing a query's result as a CSV file, and timing one side in a process of its own. */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DuckDBConnection } from '@duckdb/node-api';

const RUNNER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'agg-run.js');
const q = (s: string) => `'${s.replaceAll("'", "''")}'`;

export async function copyCsv(c: DuckDBConnection, select: string, file: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await c.run(`COPY (${select}) TO ${q(file)} (FORMAT csv, HEADER true)`);
}

/** One run of bench/agg-run.ts (job, job-force, raw, floor or sessions): its time and its own peak memory. */
export function side(mode: string, root: string, day: string, threads?: number): { seconds: number; peakMiB: number } {
  const out = execFileSync(process.execPath, [RUNNER, mode, root, day, ...(threads ? [String(threads)] : [])], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as { seconds: number; peakMiB: number };
}
