/**
 * What the collector logs for each accepted message, and how it is laid out in a log frame's payload.
 *
 * The layout is built so the shipper can cut tracking files out of the log without turning lines back into
 * strings: every string is length-prefixed in UTF-8 bytes (`<bytes>:<text>`), so nothing in a CSV line needs
 * escaping and a line is a byte range. Per record: id, tenant, `<at>:`, `<rows>:`, then per row the kind
 * (1 byte), the UTC day (10 bytes) and the CSV line. (JSON measured at twice the encoding cost, most of it
 * escaping the quotes of quoted CSV fields, and made every line a string to rebuild when shipping.)
 */

/** One accepted message: its dedup key, receipt time and its rows, already rendered as CSV. */
export interface WalRecord {
  id: string;
  tn: string;
  at: number;
  /** [kind, UTC day, CSV line]: 't' a tracking row, 'i' an identity link. */
  r: Array<[RowKind, string, string]>;
}

export type RowKind = 't' | 'i';

const str = (s: string) => `${Buffer.byteLength(s)}:${s}`;

/** One request's records as a log payload. */
export function encodeRecords(records: readonly WalRecord[]): string {
  let out = '';
  for (const rec of records) {
    out += `${str(rec.id)}${str(rec.tn)}${rec.at}:${rec.r.length}:`;
    for (const [kind, day, line] of rec.r) out += `${kind}${day}${str(line)}`;
  }
  return out;
}

export interface RecordVisitor {
  /** A record; start is its first byte in the payload. */
  record(id: string, tn: string, at: number, start: number): void;
  /** A row: its kind and day, and its CSV line as the byte range [start, end) of payload. */
  row?(kind: RowKind, day: string, payload: Buffer, start: number, end: number): void;
}

const COLON = 0x3a;
const T = 0x74;
const I = 0x69;

/** Walks a payload's records. Throws on a payload that is not in this layout (the frame CRC makes that a bug). */
export function readRecords(payload: Buffer, visit: RecordVisitor): void {
  // A payload of tracklake 0.1's first log format is a JSON array of WalRecords.
  if (payload[0] === 0x5b /* [ */) return readRecords(Buffer.from(encodeRecords(JSON.parse(payload.toString('utf8')) as WalRecord[])), visit);
  let pos = 0;
  const int = (): number => {
    let n = 0;
    const start = pos;
    for (; pos < payload.length && payload[pos] !== COLON; pos++) {
      const d = payload[pos]! - 48;
      if (d < 0 || d > 9 || pos - start >= 16) throw new Error(`bad log record at byte ${start}`);
      n = n * 10 + d;
    }
    if (pos === start || pos >= payload.length) throw new Error(`bad log record at byte ${start}`);
    pos++;
    return n;
  };
  const span = (n: number): number => {
    if (pos + n > payload.length) throw new Error(`bad log record at byte ${pos}`);
    pos += n;
    return pos - n;
  };
  const text = (n: number) => payload.toString('utf8', span(n), pos);
  let day = '';
  let dayAt = -1;
  while (pos < payload.length) {
    const start = pos;
    visit.record(text(int()), text(int()), int(), start);
    for (let rows = int(); rows > 0; rows--) {
      const k = payload[span(1)];
      if (k !== T && k !== I) throw new Error(`bad row kind at byte ${pos - 1}`);
      const d = span(10);
      // Rows of one payload nearly always share a day: compare bytes instead of making a string per row.
      if (dayAt < 0 || payload.compare(payload, dayAt, dayAt + 10, d, d + 10) !== 0) {
        day = payload.toString('latin1', d, d + 10);
        dayAt = d;
      }
      const start = span(int());
      visit.row?.(k === T ? 't' : 'i', day, payload, start, pos);
    }
  }
}

/** The records of a payload as objects (recovery reads ids this way; tests compare with it). */
export function decodeRecords(payload: Buffer): WalRecord[] {
  const out: WalRecord[] = [];
  readRecords(payload, {
    record: (id, tn, at) => void out.push({ id, tn, at, r: [] }),
    row: (kind, day, p, start, end) => void out[out.length - 1]!.r.push([kind, day, p.toString('utf8', start, end)]),
  });
  return out;
}
