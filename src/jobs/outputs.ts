/**
 * Writing job outputs: rendered deterministically, written atomically (ObjectStore.put), and not written at
 * all when the stored bytes are already the same, so a re-run over unchanged input rewrites nothing.
 * Two runs at once (two nodes, or cron beside the scheduler) need no lock: over the same input they write
 * the same bytes, so whichever writes last, readers see a complete, correct file; and if late data lands
 * between them, the day's manifest records the older input and the next run recomputes the day.
 */
import { execFile } from 'node:child_process';
import { constants as fsConstants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import type { ObjectInfo, ObjectStore } from '../storage/store.js';
import type { Engine } from './engine.js';
import { ScratchDir } from './scratch.js';

export async function writeIfChanged(store: ObjectStore, key: string, body: Buffer | string): Promise<boolean> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const current = await store.get(key);
  if (current !== undefined && current.equals(bytes)) return false;
  await store.put(key, bytes);
  return true;
}

const COMPARE_LIMIT = 256 * 1024 * 1024;

/**
 * Whether the object at key holds exactly the file's bytes. Sizes first (a stat, or one listing); then the
 * bytes, streamed from a local store, or fetched from a remote one when small enough. A large remote object of
 * the same size is taken as changed: rewriting it is idempotent, only not free.
 */
async function sameContent(store: ObjectStore, key: string, file: string): Promise<boolean> {
  const { size } = await fs.stat(file);
  if (store.localPath) {
    const local = store.localPath(key);
    const stored = await fs.stat(local).catch(() => undefined);
    return stored !== undefined && stored.size === size && sameFiles(local, file);
  }
  const stored = (await store.list(key)).find((o) => o.key === key);
  if (!stored || stored.size !== size) return false;
  if (size > COMPARE_LIMIT) return false;
  const body = await store.get(key);
  return body !== undefined && body.equals(await fs.readFile(file));
}

async function sameFiles(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([fs.open(a, 'r'), fs.open(b, 'r')]);
  try {
    const ba = Buffer.alloc(1 << 20);
    const bb = Buffer.alloc(1 << 20);
    for (let pos = 0; ; pos += ba.length) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, ba.length, pos), fb.read(bb, 0, bb.length, pos)]);
      if (ra.bytesRead !== rb.bytesRead || !ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      if (ra.bytesRead < ba.length) return true;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/**
 * A job's output writer: query results rendered by DuckDB into a scratch folder, then stored if changed.
 * Stores happen in the background while DuckDB renders the next output; `flush()` waits for them, and a
 * job flushes before anything that reads what it wrote (a rollup, a manifest that vouches for outputs).
 */
export class Outputs {
  written = 0;
  private readonly scratch: ScratchDir;
  private pending: Array<Promise<void>> = [];

  constructor(private readonly engine: Engine, private readonly store: ObjectStore, tmpRoot = os.tmpdir()) {
    this.scratch = new ScratchDir(tmpRoot, 'tracklake-out-');
  }

  /** Stores the CSV of `select` at key, unless the stored object already has exactly these bytes. */
  async write(key: string, select: string): Promise<void> {
    this.writeFile(key, await this.render(select));
  }

  /** Stores at key the file that `write` writes at the path it is given (a scratch file). */
  async writeWith(key: string, write: (file: string) => Promise<void>): Promise<void> {
    const file = await this.scratch.file('.csv');
    await write(file);
    this.writeFile(key, file);
  }

  /**
   * The CSV of `select`, read while DuckDB writes it: through a named pipe in the scratch folder, so the
   * bytes never touch the disk; where pipes cannot be made (no mkfifo), from a scratch file rendered first.
   * The reader must read to the end (DuckDB waits on a full pipe). The pipe has a write end of ours until
   * DuckDB has finished or failed, so opening it never blocks and its end comes only after DuckDB's last
   * byte (or at once, if DuckDB failed before writing); `done` settles with DuckDB's result.
   */
  async renderPiped(select: string, opts: { header?: boolean } = {}): Promise<{ file: string; handle: FileHandle; done: Promise<void> }> {
    const file = await this.scratch.file('.pipe');
    const piped = await new Promise<boolean>((resolve) => execFile('mkfifo', [file], (e) => resolve(!e)));
    if (!piped) {
      const rendered = await this.render(select, opts);
      return { file: rendered, handle: await fs.open(rendered, 'r'), done: Promise.resolve() };
    }
    const ours = await fs.open(file, fsConstants.O_RDWR);
    const handle = await fs.open(file, 'r');
    const done = this.engine.copyToCsv(select, file, opts).finally(() => ours.close());
    done.catch(() => undefined); // the caller awaits it; never an unhandled rejection meanwhile
    return { file, handle, done };
  }

  /** The CSV of `select` in a scratch file. */
  async render(select: string, opts: { header?: boolean } = {}): Promise<string> {
    const file = await this.scratch.file('.csv');
    await this.engine.copyToCsv(select, file, opts);
    return file;
  }

  /** Stores a rendered file at key (consuming it), unless the stored object already has these bytes. */
  writeFile(key: string, file: string): void {
    this.defer(async () => {
      if (await sameContent(this.store, key, file)) {
        await fs.rm(file, { force: true });
        return;
      }
      await this.store.putFile(key, file);
      this.written++;
    });
  }

  writeText(key: string, body: Buffer | string): void {
    this.defer(async () => {
      if (await writeIfChanged(this.store, key, body)) this.written++;
    });
  }

  private defer(store: () => Promise<void>): void {
    const p = store();
    p.catch(() => undefined); // surfaced by flush(); never an unhandled rejection meanwhile
    this.pending.push(p);
  }

  /** Waits for every store so far; throws the first failure. */
  async flush(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    await Promise.all(pending);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.pending);
    await this.scratch.remove();
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
 * per bad line with its object key, and the keys of the files that had any; the table is dropped afterwards.
 */
export async function collectRejects(engine: Engine, rejectsTable: string, files: Array<{ key: string; file: string }>): Promise<Pick<RunReport, 'badRows' | 'badRowCount'> & { keys: ReadonlySet<string> }> {
  if (files.length === 0) return { badRows: [], badRowCount: 0, keys: new Set() };
  const bad = await engine.all<{ file_path: string; line: bigint; error_message: string }>(
    `SELECT s.file_path, r.line, min(r.error_message) AS error_message FROM ${rejectsTable} r JOIN ${rejectsTable}_scans s USING (scan_id, file_id) GROUP BY ALL ORDER BY s.file_path, r.line`,
  );
  await engine.run(`DROP TABLE IF EXISTS ${rejectsTable}; DROP TABLE IF EXISTS ${rejectsTable}_scans`);
  const keyOf = new Map(files.map((f) => [f.file, f.key]));
  const key = (file: string) => keyOf.get(file) ?? file;
  return {
    badRowCount: bad.length,
    badRows: bad.slice(0, MAX_LISTED_BAD_ROWS).map((b) => ({ key: key(b.file_path), line: Number(b.line), error: b.error_message })),
    keys: new Set(bad.map((b) => key(b.file_path))),
  };
}

export async function readManifest(store: ObjectStore, key: string): Promise<Manifest | undefined> {
  return parseManifest(await store.get(key));
}

/** A manifest object's body as a manifest; undefined when there is none or it is unreadable. */
export function parseManifest(body: Buffer | undefined): Manifest | undefined {
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

/**
 * What a state kept up to date incrementally was built from: its own ETag as written, and its inputs'. A run
 * may update the state by a change only when the record matches: the state is the one the record describes,
 * and the inputs are as they are now, apart from those the run rewrote, which must be as they were. A crash
 * between an input and its state, or a state changed behind the job's back, fails this.
 */
export interface BuiltFrom {
  state: string | undefined;
  files: Record<string, string>;
}

export const builtFrom = (stateEtag: string | undefined, files: ReadonlyArray<ObjectInfo>): BuiltFrom => ({ state: stateEtag, files: Object.fromEntries(files.map((f) => [f.key, f.etag])) });

export function builtFromMatches(recorded: BuiltFrom | undefined, stateEtag: string | undefined, files: ReadonlyArray<ObjectInfo>, rewritten: ReadonlyArray<{ key: string; etag: string | undefined }>): boolean {
  if (!recorded || typeof recorded.files !== 'object' || recorded.files === null || stateEtag === undefined || recorded.state !== stateEtag) return false;
  const before = new Map<string, string | undefined>(files.map((f) => [f.key, f.etag]));
  for (const r of rewritten) before.set(r.key, r.etag);
  for (const k of new Set([...Object.keys(recorded.files), ...before.keys()])) if (recorded.files[k] !== before.get(k)) return false;
  return true;
}

