/**
 * The CSV rules every tracklake file follows: RFC 4180 quoting, UTF-8, a header line, '\n' line ends,
 * an empty field for a missing value, true/false, and numbers as plain decimals (never 1e21 or 1e-7).
 */
import { stringify } from 'csv-stringify/sync';
import type { Cell } from './columns.js';

/** A number as a plain decimal, rounded to 10 places so 19.99*3 reads 59.97, not 59.970000000000006. */
export function formatDecimal(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  const fixed = n.toFixed(10).replace(/0+$/, '').replace(/\.$/, '');
  return fixed === '-0' ? '0' : fixed;
}

function cell(v: Cell): string {
  if (v === null) return '';
  if (typeof v === 'number') return formatDecimal(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return v;
}

/** Renders header + rows as one CSV document. */
export function toCsv(columns: readonly string[], rows: Iterable<Cell[]>): string {
  const records: string[][] = [];
  for (const r of rows) records.push(r.map(cell));
  return stringify(records, { header: true, columns: columns as string[], record_delimiter: '\n'});
}
