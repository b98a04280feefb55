/** How the jobs read tracking files in DuckDB: the seed-003 columns with their types, bad rows set aside. */
import { IDENTITY_TYPES, LAKE, TRACK_TYPES as TYPES, headerOf } from '../lake/layout.js';
import type { TrackColumn } from '../tracking/columns.js';
import { sqlList, sqlString } from './engine.js';

export const TRACK_HEADER = headerOf(LAKE.tracks);

export function columnsStruct(columns: Record<string, string>): string {
  return `{${Object.entries(columns).map(([k, t]) => `${sqlString(k)}: ${sqlString(t)}`).join(', ')}}`;
}

export interface ReadOptions {
  /** Malformed rows (wrong column count, unparseable values) are skipped and recorded in this table with
   * their file, line and byte offset, instead of failing the query. */
  rejectsTable?: string;
  /** Malformed rows are skipped without a record (the same rows as with rejectsTable). */
  ignoreErrors?: boolean;
  /** A `filename` column: the local file each row was read from. */
  filename?: boolean;
  /**
   * DuckDB's read buffer (default 32 MiB per file being read): smaller for narrow files read several at
   * once (a merge reads three), so a job within a small memory limit keeps room for its joins.
   */
  bufferBytes?: number;
}

/**
 * A read_csv call over the given local files. Line ends are DuckDB's to find: naming '\n' made it read a file
 * with '\r\n' line ends as no rows at all, without a reject (DuckDB 1.5); tracklake writes '\n' and quotes
 * any carriage return inside a value.
 */
export function readCsvSql(files: readonly string[], columns: Record<string, string>, opts: ReadOptions = {}): string {
  const rejects = opts.rejectsTable ? `, store_rejects = true, rejects_table = ${sqlString(opts.rejectsTable)}, rejects_scan = ${sqlString(`${opts.rejectsTable}_scans`)}` : '';
  const ignore = opts.ignoreErrors ? ', ignore_errors = true' : '';
  const filename = opts.filename ? ', filename = true' : '';
  const buffer = opts.bufferBytes ? `, buffer_size = ${opts.bufferBytes}` : '';
  return `read_csv(${sqlList(files)}, header = true, auto_detect = false, delim = ',', quote = '"', escape = '"', columns = ${columnsStruct(columns)}${rejects}${ignore}${filename}${buffer})`;
}

export const readTracksSql = (files: readonly string[], rejectsTable?: string) => readCsvSql(files, TYPES, { rejectsTable });

/** read_csv over the files, or an empty relation of the same columns when there are none. */
export function relationSql(files: readonly string[], columns: Record<string, string>, opts: ReadOptions = {}): string {
  if (files.length > 0) return readCsvSql(files, columns, opts);
  const nulls = Object.entries({ ...columns, ...(opts.filename ? { filename: 'VARCHAR' } : {}) }).map(([k, t]) => `NULL::${t} AS "${k}"`);
  return `(SELECT ${nulls.join(', ')} WHERE false)`;
}

export const TRACK_TYPES: Readonly<Record<TrackColumn, string>> = TYPES;
export { IDENTITY_TYPES };
export const IDENTITY_HEADER = headerOf(LAKE.identities);
