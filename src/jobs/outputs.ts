/**
 * Writing job outputs: rendered deterministically, written atomically (ObjectStore.put), and not written at
 * all when the stored bytes are already the same, so a re-run over unchanged input rewrites nothing. Two
 * runs at once (two nodes, or cron beside the scheduler) compute the same bytes from the same inputs, so
 * whichever writes last, readers see a complete, correct file: no lock is needed.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ObjectInfo, ObjectStore } from '../storage/store.js';
import type { Engine } from './engine.js';

export async function writeIfChanged(store: ObjectStore, key: string, body: Buffer | string): Promise<boolean> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const current = await store.get(key);
  if (current !== undefined && current.equals(bytes)) return false;
  await store.put(key, bytes);
  return true;
}

/** A job's output writer: query results rendered by DuckDB into a scratch folder, then stored if changed. */
export class Outputs {
  written = 0;
  private dir: string | undefined;

  constructor(private readonly engine: Engine, private readonly store: ObjectStore, private readonly tmpRoot = os.tmpdir()) {}

  /** Stores the CSV of `select` at key. */
  async write(key: string, select: string): Promise<void> {
    this.dir ??= await fs.mkdtemp(path.join(this.tmpRoot, 'tracklake-out-'));
    const file = path.join(this.dir, 'out.csv');
    await this.engine.copyToCsv(select, file);
    await this.writeText(key, await fs.readFile(file));
  }

  async writeText(key: string, body: Buffer | string): Promise<void> {
    if (await writeIfChanged(this.store, key, body)) this.written++;
  }

  async close(): Promise<void> {
    if (this.dir) await fs.rm(this.dir, { recursive: true, force: true });
  }
}

/** What an output was computed from: compared on the next run to find late or changed input. */
export interface Manifest {
  version: 1;
  /** The job's definition (e.g. the metric set); a change forces a recompute. */
  definition: string;
  inputs: Array<Pick<ObjectInfo, 'key' | 'size' | 'etag'>>;
  report: RunReport;
}

export interface BadRow {
  key: string;
  line: number;
  error: string;
}

export interface RunReport {
  badRows: BadRow[];
  badRowCount: number;
  skippedFiles: Array<{ key: string; reason: string }>;
}

const MAX_LISTED_BAD_ROWS = 100;

/**
 * The malformed rows DuckDB set aside in `rejectsTable` while reading `files` (see readCsvSql), one entry
 * per bad line with its object key; the table is dropped afterwards.
 */
export async function collectRejects(engine: Engine, rejectsTable: string, files: Array<{ key: string; file: string }>): Promise<Pick<RunReport, 'badRows' | 'badRowCount'>> {
  if (files.length === 0) return { badRows: [], badRowCount: 0 };
  const bad = await engine.all<{ file_path: string; line: bigint; error_message: string }>(
    `SELECT s.file_path, r.line, min(r.error_message) AS error_message FROM ${rejectsTable} r JOIN ${rejectsTable}_scans s USING (scan_id, file_id) GROUP BY ALL ORDER BY s.file_path, r.line`,
  );
  await engine.run(`DROP TABLE IF EXISTS ${rejectsTable}; DROP TABLE IF EXISTS ${rejectsTable}_scans`);
  const keyOf = new Map(files.map((f) => [f.file, f.key]));
  return {
    badRowCount: bad.length,
    badRows: bad.slice(0, MAX_LISTED_BAD_ROWS).map((b) => ({ key: keyOf.get(b.file_path) ?? b.file_path, line: Number(b.line), error: b.error_message })),
  };
}

export async function readManifest(store: ObjectStore, key: string): Promise<Manifest | undefined> {
  const body = await store.get(key);
  if (!body) return undefined;
  try {
    const m = JSON.parse(body.toString('utf8')) as Manifest;
    return m.version === 1 && Array.isArray(m.inputs) ? m : undefined;
  } catch {
    return undefined; // unreadable: treated as never computed
  }
}

export function sameInputs(a: Manifest['inputs'], b: ObjectInfo[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => x.key === b[i]!.key && x.size === b[i]!.size && x.etag === b[i]!.etag);
}

export function manifestBody(definition: string, inputs: ObjectInfo[], report: RunReport): string {
  const m: Manifest = { version: 1, definition, inputs: inputs.map(({ key, size, etag }) => ({ key, size, etag })), report };
  return `${JSON.stringify(m, null, 1)}\n`;
}
