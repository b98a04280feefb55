/**
 * Writing a day's track facts: every tracking row of the day that takes part, as it is in its tracking file,
 * followed by its user id, session id and sequence number.
 *
 * DuckDB writes the three keys of every row as CSV into a pipe, in row order (track_fact_keys.sql), while
 * the rows themselves are copied byte for byte from the tracking files with the keys appended. Rendering
 * the 20 parsed columns again through DuckDB's CSV writer cost CPU the disk-bound write could not hide,
 * and produced the same bytes for tracklake's own files.
 *
 * The copy has to meet DuckDB's reading record for record; blank lines, which DuckDB skips, are skipped. A
 * file it cannot follow is rendered by DuckDB instead, from its parsed rows (the same values, in canonical
 * form): one with malformed rows DuckDB set aside (the reject table's byte offsets are not exact enough to
 * find them), one with carriage returns (which the reader does not interpret), or one whose count differs.
 * Never a wrong row; at worst a slower one.
 */
import { createReadStream } from 'node:fs';
import { type FileHandle, open, rm, stat } from 'node:fs/promises';
import { CsvRecordReader, drainedSource } from '../../lib/csv-records.js';
import { type Engine, sql } from '../engine.js';
import type { Outputs } from '../outputs.js';
import { readCsvSql, TRACK_TYPES } from '../tracks.js';

/** A tracking file of the window: its rows are events[lo, hi), and `facts` of them are the day's facts. */
export interface FactInput {
  key: string;
  file: string;
  /** Its size when it was listed: the copy reads it again, after DuckDB did. */
  size: number;
  lo: number;
  hi: number;
  facts: number;
  /** Whether DuckDB set malformed records of the file aside. */
  rejects: boolean;
}

export interface DayBounds {
  day_start: string;
  day_end: string;
}

/**
 * The window's files that gave rows, in row order, with their row ranges in `events` (load_events.sql reads
 * them with `filename`, in file order) and whether any of their records were malformed (`withRejects`:
 * the keys collectRejects found).
 */
export async function factInputs(engine: Engine, files: Array<{ key: string; file: string; size: number }>, withRejects: ReadonlySet<string>, bounds: DayBounds): Promise<FactInput[]> {
  const ranges = await engine.all<{ filename: string; lo: bigint; hi: bigint; n: bigint; facts: bigint }>(
    `SELECT filename, min(rowid) AS lo, max(rowid) + 1 AS hi, count(*) AS n,
       count(*) FILTER (WHERE included AND time >= ${bounds.day_start} AND time < ${bounds.day_end}) AS facts
     FROM events GROUP BY filename ORDER BY lo`,
  );
  const byFile = new Map(files.map((f) => [f.file, f]));
  let next = 0n;
  return ranges.map((r) => {
    // The keys stream covers events in row order, file after file: each file's rows must be one run.
    if (r.lo !== next || r.hi - r.lo !== r.n) throw new Error(`track facts: the rows of ${r.filename} are not one run of the loaded events`);
    next = r.hi;
    const f = byFile.get(r.filename);
    if (!f) throw new Error(`track facts: rows from ${r.filename}, which is not an input`);
    return { key: f.key, file: f.file, size: f.size, lo: Number(r.lo), hi: Number(r.hi), facts: Number(r.facts), rejects: withRejects.has(f.key) };
  });
}

/** Writes the day's track facts at key: a header, then each input's facts in row order. */
export async function writeTrackFacts(engine: Engine, out: Outputs, key: string, header: string, inputs: FactInput[], bounds: DayBounds): Promise<void> {
  await out.writeWith(key, async (file) => {
    const sink = await Sink.open(file);
    // One record per events row, in row order, read as DuckDB writes them.
    const rendering = await out.renderPiped(sql('track_fact_keys', { ...bounds }), { header: false });
    const keys = new CsvRecordReader(drainedSource(rendering.handle), 1 << 20);
    try {
      await sink.text(`${header}\n`);
      for (const input of inputs) {
        const rows = input.hi - input.lo;
        if (input.facts === 0) {
          if (!(await skip(keys, rows))) throw new Error('track facts: fewer keys than rows');
          continue;
        }
        // Tracking files are never rewritten; one that was, since DuckDB read it, would pair rows with
        // another file's keys. Its day's manifest no longer matches, so the next run recomputes it.
        const { size } = await stat(input.file);
        if (size !== input.size) throw new Error(`track facts: ${input.key} changed during the run (${input.size} bytes, now ${size})`);
        const from = await sink.mark();
        const copied = input.rejects ? { ok: false, used: 0 } : await copyWithKeys(input, keys, sink);
        if (!copied.ok) {
          if (!(await skip(keys, rows - copied.used))) throw new Error('track facts: fewer keys than rows');
          await sink.truncate(from);
          const rendered = await out.render(sql('track_fact_rows', { ...bounds, rows: readCsvSql([input.file], TRACK_TYPES, { ignoreErrors: true }), lo: String(input.lo), hi: String(input.hi) }), { header: false });
          await sink.append(rendered);
          await rm(rendered, { force: true });
        }
      }
      if (keys.next() || (await keys.more())) throw new Error('track facts: more keys than rows');
      await rendering.done;
    } catch (e) {
      await rendering.done; // DuckDB's own failure, when there is one, says more than a short read
      throw e;
    } finally {
      // The pipe is read to its end whatever happened (drainedSource), so DuckDB always finishes.
      await Promise.all([keys.close(), sink.close()]);
      await rm(rendering.file, { force: true });
    }
  });
}

async function skip(reader: CsvRecordReader, n: number): Promise<boolean> {
  for (let i = 0; i < n; i++) if (!(reader.next() || (await reader.more()))) return false;
  return true;
}

const COMMA = 0x2c;
const NL = 0x0a;

/**
 * Appends the input's facts: each record (after the header) with its keys record appended, taking at most
 * one keys record per row the input has in events. Not ok when the two do not line up (the caller truncates
 * what was written); `used` is how many keys records were taken.
 */
async function copyWithKeys(input: FactInput, keys: CsvRecordReader, sink: Sink): Promise<{ ok: boolean; used: number }> {
  const rows = await CsvRecordReader.open(input.file);
  const limit = input.hi - input.lo;
  let used = 0;
  let written = 0;
  try {
    let header = true;
    while (rows.next() || (await rows.more())) {
      if (rows.sawCr) return { ok: false, used };
      if (header) {
        header = false;
        continue;
      }
      if (rows.start === rows.end) continue;
      if (used === limit || !(keys.next() || (await keys.more()))) return { ok: false, used };
      used++;
      if (keys.end - keys.start === 2 && keys.buf[keys.start] === COMMA && keys.buf[keys.start + 1] === COMMA) continue; // ",,": not the day's, a bot's, or without ids
      if (!sink.tryRecord(rows, keys)) await sink.record(rows, keys);
      written++;
    }
    return { ok: !rows.sawCr && used === limit && written === input.facts, used };
  } finally {
    await rows.close();
  }
}

/** A buffered file writer that can go back to an earlier position. */
class Sink {
  private readonly buf = Buffer.allocUnsafe(4 << 20);
  private used = 0;
  private position = 0;

  private constructor(private readonly fh: FileHandle) {}

  static async open(file: string): Promise<Sink> {
    return new Sink(await open(file, 'w'));
  }

  /** Buffers the row's record + ',' + the keys record + '\n'; false when the buffer has no room for it. */
  tryRecord(row: CsvRecordReader, keys: CsvRecordReader): boolean {
    if (this.used + (row.end - row.start) + (keys.end - keys.start) + 2 > this.buf.length) return false;
    this.used += row.buf.copy(this.buf, this.used, row.start, row.end);
    this.buf[this.used++] = COMMA;
    this.used += keys.buf.copy(this.buf, this.used, keys.start, keys.end);
    this.buf[this.used++] = NL;
    return true;
  }

  /** The same, making room first (a record larger than the buffer is written on its own). */
  async record(row: CsvRecordReader, keys: CsvRecordReader): Promise<void> {
    await this.flush();
    if (this.tryRecord(row, keys)) return;
    await this.write(Buffer.concat([row.buf.subarray(row.start, row.end), Buffer.of(COMMA), keys.buf.subarray(keys.start, keys.end), Buffer.of(NL)]));
  }

  async text(s: string): Promise<void> {
    await this.flush();
    await this.write(Buffer.from(s));
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const used = this.used;
    this.used = 0;
    await this.write(this.buf.subarray(0, used));
  }

  async mark(): Promise<number> {
    await this.flush();
    return this.position;
  }

  async truncate(position: number): Promise<void> {
    this.used = 0;
    await this.fh.truncate(position);
    this.position = position;
  }

  /** Appends a whole file. */
  async append(file: string): Promise<void> {
    await this.flush();
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) await this.write(chunk as Buffer);
  }

  async close(): Promise<void> {
    await this.flush();
    await this.fh.close();
  }

  private async write(bytes: Buffer): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.fh.write(bytes, done, bytes.length - done, this.position);
      done += bytesWritten;
      this.position += bytesWritten;
    }
  }
}
