/**
 * What the collector logs for each accepted message, and how it is laid out in a log frame's payload.
 *
 * The layout is binary, so preparing a request writes it straight into one buffer and shipping cuts
 * tracking files out of it without turning anything back into a string. A payload is the byte `~`, then
 * per record: the fingerprint of its dedup key (lib/fingerprint.ts, two int32 LE), its receipt time
 * (float64 LE) and its row count (uint32 LE); then per row the kind (1 byte: `t` a tracking row, `i` an
 * identity link, `v` a tracking-plan violation, `q` a blocked message for quarantine, `m` the message as
 * destinations forward it, written only when destinations are configured), the UTC day
 * (10 bytes), the line's length in bytes (uint32 LE) and the line (CSV, or for `q` and `m` one line of JSON).
 *
 * Logs of earlier versions are still read: a payload of text records (`<bytes>:<id><bytes>:<tenant><at>:
 * <rows>:` then `<kind><day><bytes>:<line>` per row) or of tracklake 0.1's JSON array. Their ids are
 * fingerprinted as they are read.
 */
import { fingerprint } from '../lib/fingerprint.js';

export type RowKind = 't' | 'i' | 'v' | 'q' | 'm';

/**
 * The line of an `m` row, as its head and its message's JSON: what a destination filters on, then the
 * message, so forwarding needs no JSON parsing: `<tenant>\t<blocked 0|1>\t<receivedAt ms>\t<event name or
 * type, as a JSON string>\t<message JSON>`. Two strings, which RecordWriter.row writes one after the other:
 * joined, the message's text was copied once more to flatten them (0.3 µs of bench:ingest's messages).
 */
export function forwardLine(tenant: string, blocked: boolean, receivedAt: number, name: string, message: unknown): [head: string, json: string] {
  return [forwardHead(tenant, blocked, receivedAt, name), JSON.stringify(message)];
}

const forwardHead = (tenant: string, blocked: boolean, receivedAt: number, name: string) => `${tenant}\t${blocked ? 1 : 0}\t${receivedAt}\t${JSON.stringify(name)}\t`;

/** The same line from a row read back (a destination's backlog in the bucket keeps this layout). */
export const formatForwardRow = (r: ForwardRow) => Buffer.concat([Buffer.from(forwardHead(r.tenant, r.blocked, r.receivedAt, r.name)), r.json]);

export interface ForwardRow {
  tenant: string;
  blocked: boolean;
  receivedAt: number;
  name: string;
  /**
   * The message as JSON, in UTF-8: a view of the bytes it was read from. Forwarding copies bytes and never
   * decodes them; decoding, slicing and encoding each message again as text cost the collector's threads
   * garbage to collect besides the copies.
   */
  json: Buffer;
  /**
   * The message's tracking rows as the collector logged them (CSV lines, views like json), when it was read
   * from the log: the Postgres destination takes its tracking columns from them instead of mapping the
   * message again, so its rows are the tracking files' own.
   */
  tracks?: Buffer[];
}

/**
 * An `m` row's line, bytes [start, end) of buf, with its message's tracking rows when given. Destinations'
 * threads parse every forwarded message with it: numbers and names are read off the bytes where they can be
 * (bench:forward's messages with their tracking rows: 2.5 µs a message with JSON.parse and Number, 1.5 without).
 */
export function parseForwardRow(buf: Buffer, start = 0, end = buf.length, tracks?: Buffer[]): ForwardRow {
  const a = buf.indexOf(0x09, start);
  const b = buf.indexOf(0x09, a + 1);
  const c = buf.indexOf(0x09, b + 1);
  // The name is a JSON string: it holds no raw tab, so the message starts after the next one.
  const d = buf.indexOf(0x09, c + 1);
  if (a < 0 || b < 0 || c < 0 || d < 0 || d >= end) throw new Error(`bad forwarded message line: ${buf.toString('utf8', start, Math.min(end, start + 80))}`);
  let receivedAt = 0;
  let digits = c - b - 1 <= 15;
  for (let i = b + 1; digits && i < c; i++) {
    const n = buf[i]! - 48;
    digits = n >= 0 && n <= 9;
    receivedAt = receivedAt * 10 + n;
  }
  if (!digits) receivedAt = Number(buf.toString('latin1', b + 1, c)); // not a plain count of ms
  // A name without escapes is its bytes between the quotes.
  let plain = buf[c + 1] === 0x22 && buf[d - 1] === 0x22;
  for (let i = c + 2; plain && i < d - 1; i++) plain = buf[i] !== 0x5c;
  const name = plain ? recentName(buf, c + 2, d - 1) : (JSON.parse(buf.toString('utf8', c + 1, d)) as string);
  return { tenant: recentTenant(buf, start, a), blocked: buf[a + 1] === 0x31, receivedAt, name, json: buf.subarray(d + 1, end), tracks };
}

/**
 * Tenants and event names read from forwarded lines repeat: a slice of the log is thousands of messages of
 * a few tenants and names, all kept while their batches are sent. Each is read into a string once and that
 * string shared, rather than a string made per message for the garbage collector to copy and promote.
 */
let lastTenant = '';
/** Recent event names that are ASCII (a string's length is then its bytes'). */
const recentNames: string[] = [];
const RECENT_NAMES = 16;

/** Whether bytes [start, end) of buf are the ASCII string s. */
function sameAscii(buf: Buffer, start: number, end: number, s: string): boolean {
  if (s.length !== end - start) return false;
  for (let i = 0; i < s.length; i++) if (buf[start + i] !== s.charCodeAt(i)) return false;
  return true;
}

function recentTenant(buf: Buffer, start: number, end: number): string {
  // Tenant ids are ASCII (config/config.ts).
  return sameAscii(buf, start, end, lastTenant) ? lastTenant : (lastTenant = buf.toString('latin1', start, end));
}

function recentName(buf: Buffer, start: number, end: number): string {
  for (const s of recentNames) if (sameAscii(buf, start, end, s)) return s;
  const s = buf.toString('utf8', start, end);
  if (s.length === end - start) {
    if (recentNames.length === RECENT_NAMES) recentNames.pop();
    recentNames.unshift(s);
  }
  return s;
}

/** One accepted message as objects: its dedup key, receipt time and rows (tests and the old layouts use this). */
export interface WalRecord {
  id: string;
  tn: string;
  at: number;
  /** [kind, UTC day, CSV line]. */
  r: Array<[RowKind, string, string]>;
}

/** Buffer's own encoders, without Buffer#write's argument handling (they exist at run time, untyped). */
type RawBuffer = Buffer & { utf8Write(s: string, offset: number): number; latin1Write(s: string, offset: number, length: number): number };

const MARK = 0x7e; // '~': no earlier layout starts with it (text records start with a digit, JSON with '[')
const T = 0x74;
const I = 0x69;
/** Row kind ↔ byte (a byte that is no kind has none). */
const KIND_BYTE: Record<RowKind, number> = { t: T, i: I, v: 0x76, q: 0x71, m: 0x6d };
const BYTE_KIND: Array<RowKind | undefined> = [];
for (const [k, b] of Object.entries(KIND_BYTE)) BYTE_KIND[b] = k as RowKind;
const RECORD_HEAD = 20;
const ROW_HEAD = 15;

/** Writes one request's records into a growing buffer; `payload()` is what the log frame carries. */
export class RecordWriter {
  private buf = Buffer.allocUnsafe(16 * 1024);
  private pos = 1;
  private rowsAt = -1;
  private rows = 0;
  records = 0;

  constructor() {
    this.buf[0] = MARK;
  }

  /** Starts over, keeping the buffer (one writer serves request after request). */
  reset(): void {
    this.pos = 1;
    this.rowsAt = -1;
    this.records = 0;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Starts a record; its rows follow. */
  record(hi: number, lo: number, at: number): void {
    this.end();
    this.room(RECORD_HEAD);
    const b = this.buf;
    b.writeInt32LE(hi, this.pos);
    b.writeInt32LE(lo, this.pos + 4);
    b.writeDoubleLE(at, this.pos + 8);
    this.rowsAt = this.pos + 16;
    this.rows = 0;
    this.pos += RECORD_HEAD;
    this.records++;
  }

  /** A row whose line is `line`, or `line` and `rest` one after the other (a forwarded line's two parts). */
  row(kind: RowKind, day: string, line: string, rest = ''): void {
    this.room(ROW_HEAD + (line.length + rest.length) * 3);
    const b = this.buf as RawBuffer;
    b[this.pos] = KIND_BYTE[kind];
    b.latin1Write(day, this.pos + 1, 10);
    let n = b.utf8Write(line, this.pos + ROW_HEAD);
    if (rest.length > 0) n += b.utf8Write(rest, this.pos + ROW_HEAD + n);
    b.writeUInt32LE(n, this.pos + 11);
    this.pos += ROW_HEAD + n;
    this.rows++;
  }

  private end(): void {
    if (this.rowsAt >= 0) this.buf.writeUInt32LE(this.rows, this.rowsAt);
    this.rowsAt = -1;
  }

  /** The payload written so far (a view of the writer's buffer: copy it before writing more). */
  payload(): Buffer {
    this.end();
    return this.buf.subarray(0, this.pos);
  }
}

/** Records as a payload in the current layout. */
export function encodeRecords(records: readonly WalRecord[]): Buffer {
  const w = new RecordWriter();
  for (const rec of records) {
    const [hi, lo] = fingerprint(rec.tn, rec.id);
    w.record(hi, lo, rec.at);
    for (const [kind, day, line] of rec.r) w.row(kind, day, line);
  }
  return Buffer.from(w.payload());
}

export interface RecordVisitor {
  /** A record: its fingerprint, receipt time, and its first byte in the payload. */
  record(hi: number, lo: number, at: number, start: number): void;
  /** A row: its kind and day, and its CSV line as the byte range [start, end) of payload. */
  row?(kind: RowKind, day: string, payload: Buffer, start: number, end: number): void;
}

const bad = (what: string, at: number) => new Error(`bad log record at byte ${at}: ${what}`);

/** Walks a payload's records. Throws on a payload in no known layout (the frame CRC makes that a bug). */
export function readRecords(payload: Buffer, visit: RecordVisitor): void {
  if (payload[0] === MARK) return readBinary(payload, visit);
  if (payload[0] === 0x5b /* [ */) return readLegacy(JSON.parse(payload.toString('utf8')) as WalRecord[], visit);
  return readText(payload, visit);
}

function readBinary(payload: Buffer, visit: RecordVisitor): void {
  let pos = 1;
  let day = '';
  let dayAt = -1;
  while (pos < payload.length) {
    if (pos + RECORD_HEAD > payload.length) throw bad('truncated record', pos);
    const start = pos;
    visit.record(payload.readInt32LE(pos), payload.readInt32LE(pos + 4), payload.readDoubleLE(pos + 8), start);
    let rows = payload.readUInt32LE(pos + 16);
    pos += RECORD_HEAD;
    for (; rows > 0; rows--) {
      if (pos + ROW_HEAD > payload.length) throw bad('truncated row', pos);
      const kind = BYTE_KIND[payload[pos]!];
      if (kind === undefined) throw bad('bad row kind', pos);
      // Rows of one payload nearly always share a day: compare bytes instead of making a string per row.
      if (dayAt < 0 || payload.compare(payload, dayAt, dayAt + 10, pos + 1, pos + 11) !== 0) {
        day = payload.toString('latin1', pos + 1, pos + 11);
        dayAt = pos + 1;
      }
      const end = pos + ROW_HEAD + payload.readUInt32LE(pos + 11);
      if (end > payload.length) throw bad('truncated line', pos);
      visit.row?.(kind, day, payload, pos + ROW_HEAD, end);
      pos = end;
    }
  }
}

/** The text layout of tracklake 0.2: length-prefixed strings. */
function readText(payload: Buffer, visit: RecordVisitor): void {
  let pos = 0;
  const int = (): number => {
    let n = 0;
    const start = pos;
    for (; pos < payload.length && payload[pos] !== 0x3a /* : */; pos++) {
      const d = payload[pos]! - 48;
      if (d < 0 || d > 9 || pos - start >= 16) throw bad('bad number', start);
      n = n * 10 + d;
    }
    if (pos === start || pos >= payload.length) throw bad('bad number', start);
    pos++;
    return n;
  };
  const span = (n: number): number => {
    if (pos + n > payload.length) throw bad('truncated', pos);
    pos += n;
    return pos - n;
  };
  const text = (n: number) => payload.toString('utf8', span(n), pos);
  while (pos < payload.length) {
    const start = pos;
    const id = text(int());
    const [hi, lo] = fingerprint(text(int()), id);
    visit.record(hi, lo, int(), start);
    for (let rows = int(); rows > 0; rows--) {
      const k = payload[span(1)];
      if (k !== T && k !== I) throw bad('bad row kind', pos - 1);
      const d = span(10);
      const start = span(int());
      visit.row?.(k === T ? 't' : 'i', payload.toString('latin1', d, d + 10), payload, start, pos);
    }
  }
}

function readLegacy(records: WalRecord[], visit: RecordVisitor): void {
  const p = encodeRecords(records);
  readBinary(p, visit);
}

/** A payload's records with the fingerprints and rows as values (tests compare with this). */
export function decodeRecords(payload: Buffer): Array<{ hi: number; lo: number; at: number; r: Array<[RowKind, string, string]> }> {
  const out: Array<{ hi: number; lo: number; at: number; r: Array<[RowKind, string, string]> }> = [];
  readRecords(payload, {
    record: (hi, lo, at) => void out.push({ hi, lo, at, r: [] }),
    row: (kind, day, p, start, end) => void out[out.length - 1]!.r.push([kind, day, p.toString('utf8', start, end)]),
  });
  return out;
}
