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
 * A payload with `m` rows starts with `^` instead and keeps them apart, after the records: per `m` row the
 * index of its record in the payload (uint32 LE) and the row, then, last, where they start (uint32 LE). The
 * shipper, which reads every segment back, then walks only the tracking rows, side by side in memory: laid
 * between them, 2.4 KB of forwarded message after each record's 0.6, they cost its walk a cache miss a
 * record (the request thread's CPU per event with destinations, at 8 000 events/s: see README, "Forward").
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
/** A payload whose `m` rows follow its records (the header above). */
const MARK_SPLIT = 0x5e; // '^'
const T = 0x74;
const I = 0x69;
/** Row kind ↔ byte (a byte that is no kind has none). */
const KIND_BYTE: Record<RowKind, number> = { t: T, i: I, v: 0x76, q: 0x71, m: 0x6d };
const BYTE_KIND: Array<RowKind | undefined> = [];
for (const [k, b] of Object.entries(KIND_BYTE)) BYTE_KIND[b] = k as RowKind;
const RECORD_HEAD = 20;
const ROW_HEAD = 15;

/** A buffer written from the start, grown as needed. */
class Growing {
  buf = Buffer.allocUnsafe(16 * 1024);
  pos = 0;

  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** A row: kind, day, length, then the line (`line` and `rest` one after the other). */
  row(kind: RowKind, day: string, line: string, rest: string): void {
    this.room(ROW_HEAD + (line.length + rest.length) * 3);
    const b = this.buf as RawBuffer;
    b[this.pos] = KIND_BYTE[kind];
    b.latin1Write(day, this.pos + 1, 10);
    let n = b.utf8Write(line, this.pos + ROW_HEAD);
    if (rest.length > 0) n += b.utf8Write(rest, this.pos + ROW_HEAD + n);
    b.writeUInt32LE(n, this.pos + 11);
    this.pos += ROW_HEAD + n;
  }
}

/** Writes one request's records into growing buffers; `parts()` is what the log frame carries. */
export class RecordWriter {
  private readonly main = new Growing();
  /** The `m` rows, each after its record's index, when there are any. */
  private readonly forwarded = new Growing();
  private rowsAt = -1;
  private rows = 0;
  records = 0;

  constructor() {
    this.main.buf[0] = MARK;
    this.main.pos = 1;
  }

  /** Starts over, keeping the buffers (one writer serves request after request). */
  reset(): void {
    this.main.pos = 1;
    this.forwarded.pos = 0;
    this.rowsAt = -1;
    this.records = 0;
  }

  /** Starts a record; its rows follow. */
  record(hi: number, lo: number, at: number): void {
    this.end();
    const m = this.main;
    m.room(RECORD_HEAD);
    const b = m.buf;
    b.writeInt32LE(hi, m.pos);
    b.writeInt32LE(lo, m.pos + 4);
    b.writeDoubleLE(at, m.pos + 8);
    this.rowsAt = m.pos + 16;
    this.rows = 0;
    m.pos += RECORD_HEAD;
    this.records++;
  }

  /** A row whose line is `line`, or `line` and `rest` one after the other (a forwarded line's two parts). */
  row(kind: RowKind, day: string, line: string, rest = ''): void {
    if (kind === 'm') {
      const f = this.forwarded;
      f.room(4);
      f.buf.writeUInt32LE(this.records - 1, f.pos);
      f.pos += 4;
      f.row(kind, day, line, rest);
      return;
    }
    this.main.row(kind, day, line, rest);
    this.rows++;
  }

  private end(): void {
    if (this.rowsAt >= 0) this.main.buf.writeUInt32LE(this.rows, this.rowsAt);
    this.rowsAt = -1;
  }

  /**
   * The payload written so far, in one or two pieces (views of the writer's buffers: copy them before
   * writing more). Joined, they are the payload: encodeFrame takes them as they are.
   */
  parts(): Buffer[] {
    this.end();
    const { main, forwarded } = this;
    if (forwarded.pos === 0) {
      main.buf[0] = MARK;
      return [main.buf.subarray(0, main.pos)];
    }
    main.buf[0] = MARK_SPLIT;
    forwarded.room(4);
    forwarded.buf.writeUInt32LE(main.pos, forwarded.pos);
    return [main.buf.subarray(0, main.pos), forwarded.buf.subarray(0, forwarded.pos + 4)];
  }

  /** The payload written so far, as one buffer of its own. */
  payload(): Buffer {
    return Buffer.concat(this.parts());
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
  return w.payload();
}

export interface RecordVisitor {
  /** A record: its fingerprint, receipt time, and its first byte in the payload. */
  record(hi: number, lo: number, at: number, start: number): void;
  /**
   * A row: its kind and day, and its CSV line as the byte range [start, end) of payload. A record's `m` row
   * comes after its other rows.
   */
  row?(kind: RowKind, day: string, payload: Buffer, start: number, end: number): void;
  /** False: `m` rows are not visited, nor read where the layout keeps them apart (the shipper's walk). */
  forwarded?: boolean;
}

/** Whether a walk visits `m` rows (and so reads them). */
const wantsForwarded = (visit: RecordVisitor) => visit.row !== undefined && visit.forwarded !== false;

const bad = (what: string, at: number) => new Error(`bad log record at byte ${at}: ${what}`);

/** Walks a payload's records. Throws on a payload in no known layout (the frame CRC makes that a bug). */
export function readRecords(payload: Buffer, visit: RecordVisitor): void {
  if (payload[0] === MARK) return readBinary(payload, 1, payload.length, visit);
  if (payload[0] === MARK_SPLIT) return readSplit(payload, visit);
  if (payload[0] === 0x5b /* [ */) return readLegacy(JSON.parse(payload.toString('utf8')) as WalRecord[], visit);
  return readText(payload, visit);
}

/** Reads a row's head at pos: its kind, and where its line ends. */
function rowAt(payload: Buffer, pos: number, end: number): { kind: RowKind; end: number } {
  if (pos + ROW_HEAD > end) throw bad('truncated row', pos);
  const kind = BYTE_KIND[payload[pos]!];
  if (kind === undefined) throw bad('bad row kind', pos);
  const lineEnd = pos + ROW_HEAD + payload.readUInt32LE(pos + 11);
  if (lineEnd > end) throw bad('truncated line', pos);
  return { kind, end: lineEnd };
}

/**
 * Walks the records in bytes [pos, end). `afterRecord(n)`, when given, is called after record n's rows (the
 * split layout visits its `m` row there).
 */
function readBinary(payload: Buffer, pos: number, end: number, visit: RecordVisitor, afterRecord?: (n: number) => void): void {
  const skipForwarded = !wantsForwarded(visit);
  let day = '';
  let dayAt = -1;
  for (let n = 0; pos < end; n++) {
    if (pos + RECORD_HEAD > end) throw bad('truncated record', pos);
    const start = pos;
    visit.record(payload.readInt32LE(pos), payload.readInt32LE(pos + 4), payload.readDoubleLE(pos + 8), start);
    let rows = payload.readUInt32LE(pos + 16);
    pos += RECORD_HEAD;
    for (; rows > 0; rows--) {
      const row = rowAt(payload, pos, end);
      if (!(skipForwarded && row.kind === 'm')) {
        // Rows of one payload nearly always share a day: compare bytes instead of making a string per row.
        if (dayAt < 0 || payload.compare(payload, dayAt, dayAt + 10, pos + 1, pos + 11) !== 0) {
          day = payload.toString('latin1', pos + 1, pos + 11);
          dayAt = pos + 1;
        }
        visit.row?.(row.kind, day, payload, pos + ROW_HEAD, row.end);
      }
      pos = row.end;
    }
    afterRecord?.(n);
  }
}

/** The layout with the `m` rows after the records (the header above). */
function readSplit(payload: Buffer, visit: RecordVisitor): void {
  const tail = payload.length - 4;
  const split = tail >= 1 ? payload.readUInt32LE(tail) : -1;
  if (split < 1 || split > tail) throw bad('bad forwarded rows offset', Math.max(tail, 0));
  if (!wantsForwarded(visit)) return readBinary(payload, 1, split, visit);
  let pos = split;
  let records = 0;
  readBinary(payload, 1, split, visit, (n) => {
    records = n + 1;
    if (pos >= tail || payload.readUInt32LE(pos) !== n) return;
    const row = rowAt(payload, pos + 4, tail);
    if (row.kind !== 'm') throw bad('not a forwarded row', pos + 4);
    visit.row!('m', payload.toString('latin1', pos + 5, pos + 15), payload, pos + 4 + ROW_HEAD, row.end);
    pos = row.end;
  });
  if (pos < tail) throw bad(`a forwarded row of no record (index ${pos + 4 <= tail ? payload.readUInt32LE(pos) : '?'} of ${records})`, pos);
}

/**
 * The payload of only the records at the kept indexes (ascending), in the layout it was written in, in
 * pieces (as RecordWriter.parts): what is left of a request once its duplicates are taken out.
 */
export function keptRecords(payload: Buffer, keep: readonly number[]): Buffer[] {
  const split = payload[0] === MARK_SPLIT ? payload.readUInt32LE(payload.length - 4) : payload.length;
  const starts: number[] = [];
  readRecords(payload, { record: (_hi, _lo, _at, start) => void starts.push(start) });
  starts.push(split);
  const parts = [payload.subarray(0, 1), ...keep.map((i) => payload.subarray(starts[i], starts[i + 1]))];
  if (split === payload.length) return parts;
  // The kept records' `m` rows, renumbered to the records' new places.
  const place = new Map(keep.map((i, k) => [i, k]));
  const forwarded: Buffer[] = [];
  for (let pos = split; pos < payload.length - 4; ) {
    const end = rowAt(payload, pos + 4, payload.length - 4).end;
    const k = place.get(payload.readUInt32LE(pos));
    if (k !== undefined) {
      const index = Buffer.allocUnsafe(4);
      index.writeUInt32LE(k);
      forwarded.push(index, payload.subarray(pos + 4, end));
    }
    pos = end;
  }
  if (forwarded.length === 0) return [Buffer.of(MARK), ...parts.slice(1)];
  const tail = Buffer.allocUnsafe(4);
  tail.writeUInt32LE(parts.reduce((n, b) => n + b.length, 0));
  return [...parts, ...forwarded, tail];
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
  readRecords(encodeRecords(records), visit);
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
