/**
 * The CSV rules every tracklake file follows: RFC 4180 quoting, UTF-8, a header line, '\n' line ends,
 * an empty field for a missing value, true/false, and numbers as plain decimals (never 1e21 or 1e-7).
 *
 * Rows are rendered on the collector's hot path, once per event, so this is a few lines of direct code
 * rather than a general CSV library call: bench:ingest measured csv-stringify's per-call setup at several
 * percent of the collector's CPU. Reading CSV is left to csv-parse and DuckDB.
 */
import type { Cell, TrackRow } from './columns.js';

/** A number as a plain decimal, rounded to 10 places so 19.99*3 reads 59.97, not 59.970000000000006. */
export function formatDecimal(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  // Below 1e5 a double's error is under 1e-11, so a shortest form with at most 10 decimals is exactly what
  // rounding to 10 places gives; String() is several times cheaper than toFixed and two replaces.
  if (Math.abs(n) < 1e5) {
    const s = String(n);
    const dot = s.indexOf('.');
    if (dot > 0 && s.length - dot - 1 <= 10 && !s.includes('e')) return s;
  }
  const fixed = n.toFixed(10).replace(/0+$/, '').replace(/\.$/, '');
  return fixed === '-0' ? '0' : fixed;
}

const NEEDS_QUOTES = /[",\r\n]/;

export function csvField(v: Cell): string {
  if (v === null) return '';
  if (typeof v === 'number') return formatDecimal(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return NEEDS_QUOTES.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

const text = (v: string | null) => (v === null ? '' : NEEDS_QUOTES.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
const cell = (v: Cell) => (typeof v === 'string' ? text(v) : csvField(v));

/**
 * One tracking row as a CSV record in TRACK_COLUMNS order (the same bytes as csvRecord(row, TRACK_COLUMNS)),
 * written out field by field: it runs for every event the collector accepts.
 */
export function trackCsv(r: TrackRow): string {
  // devicetype and source are enum values and need no quoting.
  return `${r.time},${text(r.tenantid)},${cell(r.correlationid)},${cell(r.deviceid)},${cell(r.accountid)},${cell(r.merchantid)},${cell(r.productid)},${cell(r.page)},${text(r.event)},${cell(r.value)},${cell(r.ip)},${cell(r.long)},${cell(r.lat)},${cell(r.referer)},${r.bot ? 'true' : 'false'},${cell(r.ua)},${cell(r.url)},${cell(r.impressions)},${r.devicetype ?? ''},${r.source ?? ''}`;
}

/** One record of the columns' values of row, without its line end; no intermediate array. */
export function csvRecord<K extends string>(row: { readonly [k in K]: Cell }, columns: readonly K[]): string {
  let s = csvField(row[columns[0]!]);
  for (let i = 1; i < columns.length; i++) s += `,${csvField(row[columns[i]!])}`;
  return s;
}

/** One CSV record, without its line end. */
export function csvLine(values: readonly Cell[]): string {
  let s = csvField(values[0] ?? null);
  for (let i = 1; i < values.length; i++) s += `,${csvField(values[i] ?? null)}`;
  return s;
}

/** Renders header + rows as one CSV document. */
export function toCsv(columns: readonly string[], rows: Iterable<readonly Cell[]>): string {
  let out = `${columns.join(',')}\n`;
  for (const r of rows) out += `${csvLine(r)}\n`;
  return out;
}
