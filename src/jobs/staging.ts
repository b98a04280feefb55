/**
 * Staging: making a partition's objects readable by DuckDB as local files. On a local store the files are
 * read in place; on S3 they are downloaded to a temporary folder (DuckDB's httpfs extension would be
 * downloaded at run time, which production machines cannot rely on) and removed afterwards. Every file's
 * header is checked here, so a file of the wrong shape is reported and skipped instead of poisoning a query.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import type { ObjectInfo, ObjectStore } from '../storage/store.js';
import { parallel } from '../lib/parallel.js';
import { ScratchDir } from './scratch.js';

export interface StagedFile extends ObjectInfo {
  file: string;
}

export interface SkippedFile {
  key: string;
  reason: string;
}

export interface StagedPartition {
  /** Every object found, as the manifest records it. */
  inputs: ObjectInfo[];
  /** Files with the expected header, ready for DuckDB. */
  files: StagedFile[];
  skipped: SkippedFile[];
}

/** The CSV objects under prefix: a partition's inputs. */
export async function listCsv(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  return (await store.list(prefix)).filter((o) => o.key.endsWith('.csv'));
}

async function firstLine(file: string): Promise<string> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.toString('utf8', 0, bytesRead);
    const nl = text.indexOf('\n');
    return (nl < 0 ? text : text.slice(0, nl)).replace(/\r$/, '').replace(/^\uFEFF/, '');
  } finally {
    await fh.close();
  }
}

/** Objects staged at once: downloads in flight from S3, files open locally. */
const STAGE_WIDTH = 32;

export class Stager {
  private readonly scratch: ScratchDir;

  constructor(private readonly store: ObjectStore, tmpRoot = os.tmpdir()) {
    this.scratch = new ScratchDir(tmpRoot, 'tracklake-stage-');
  }

  private async localFile(o: ObjectInfo): Promise<string> {
    if (this.store.localPath) return this.store.localPath(o.key);
    const file = await this.scratch.file('.csv');
    const body = await this.store.get(o.key);
    await fs.writeFile(file, body ?? Buffer.alloc(0));
    return file;
  }

  async objects(inputs: ObjectInfo[], header: string): Promise<StagedPartition> {
    const files: StagedFile[] = [];
    const skipped: SkippedFile[] = [];
    // A few at a time: a day of three nodes' minute files is 4 320 objects. A file that cannot be read
    // fails the job (the next run catches up): only a wrong header, or a file gone since the listing,
    // skips one.
    const checked = await parallel(inputs, async (o) => {
      const file = await this.localFile(o);
      const first = await firstLine(file).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      return { o, file, first };
    }, STAGE_WIDTH);
    for (const { o, file, first } of checked) {
      if (first === undefined) skipped.push({ key: o.key, reason: 'gone since it was listed' });
      else if (first !== header) skipped.push({ key: o.key, reason: `header is not "${header.slice(0, 60)}…"` });
      else files.push({ ...o, file });
    }
    return { inputs, files, skipped };
  }

  /**
   * A private copy of an object that is about to be replaced (what it held before), or undefined when
   * there is none. Local files are copied: the in-place file is the one being overwritten.
   */
  async snapshot(key: string): Promise<string | undefined> {
    const file = await this.scratch.file('.csv');
    if (this.store.localPath) {
      const copied = await fs.copyFile(this.store.localPath(key), file).then(() => true, (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return false;
        throw e;
      });
      return copied ? file : undefined;
    }
    const body = await this.store.get(key);
    if (body === undefined) return undefined;
    await fs.writeFile(file, body);
    return file;
  }

  /**
   * Many small files with one header as a single file: DuckDB's cost per file outweighs the rows when a
   * month of small daily aggregates is read. Rows keep their order; each file's header line is dropped.
   */
  async concat(files: readonly string[], header: string): Promise<string> {
    const out = await this.scratch.file('-combined.csv');
    const parts = [`${header}\n`];
    for (const f of files) {
      const text = await fs.readFile(f, 'utf8');
      const body = text.slice(text.indexOf('\n') + 1);
      parts.push(body.endsWith('\n') || body === '' ? body : `${body}\n`);
    }
    await fs.writeFile(out, parts.join(''));
    return out;
  }

  /** Removes downloaded copies; in-place local files are never touched. */
  async cleanup(): Promise<void> {
    await this.scratch.remove();
  }
}

/** What a file held before a run replaced it: a private copy and its ETag (both undefined: there was none). */
export interface Snapshot {
  file: string | undefined;
  etag: string | undefined;
}

/** Snapshots of the files at keys (all in folder, listed once for their ETags), before they are replaced. */
export async function snapshotFiles(store: ObjectStore, keep: Stager, folder: string, keys: readonly string[]): Promise<Map<string, Snapshot>> {
  const listed = new Map((await store.list(folder)).map((o) => [o.key, o.etag]));
  const out = new Map<string, Snapshot>();
  for (const key of keys) out.set(key, listed.has(key) ? { etag: listed.get(key), file: await keep.snapshot(key) } : { file: undefined, etag: undefined });
  return out;
}
