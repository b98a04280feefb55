/**
 * The messages a destination forwards: the log's `m` rows (ingest/prepare.ts writes one per accepted
 * message some destination wants; config/destinations.ts says which). Messages stay JSON
 * bytes from the log to the wire: a batch is their concatenation, nothing is decoded on the way.
 */
import { setImmediate } from 'node:timers/promises';
import { type ForwardRow, parseForwardRow, readRecords } from '../ingest/records.js';
import { segmentName } from '../ingest/wal.js';

export type Forwarded = ForwardRow;

/** Payloads decoded between two yields to the event loop (about a millisecond of work). */
const SLICE_PAYLOADS = 64;

/** The forwarded messages of a segment's payloads, in log order, each with its record's tracking rows. */
export async function forwardedOf(payloads: readonly Buffer[]): Promise<Forwarded[]> {
  const out: Forwarded[] = [];
  for (let k = 0; k < payloads.length; k++) {
    if (k > 0 && k % SLICE_PAYLOADS === 0) await setImmediate();
    parsePayload(payloads[k]!, out);
  }
  return out;
}

/** The messages of a slice of the log's frames, from a cursor on, and where in the log each one is. */
export interface SliceMessages {
  list: Forwarded[];
  /** Each message's frame offset and index in that frame (numbers side by side: no object per message). */
  offsets: number[];
  indexes: number[];
  /** The offset after the last frame. */
  end: number;
}

/** Where the cursor stands once a slice's messages before `n` are done: the n-th one's frame and index, or past the slice. */
export function positionIn(s: SliceMessages, n: number): { offset: number; index: number } {
  return n < s.list.length ? { offset: s.offsets[n]!, index: s.indexes[n]! } : { offset: s.end, index: 0 };
}

/** Names the dead letters of a batch by where its first message (the slice's n-th) is in the log: `<node>-<segment>-<offset>-<index>`. */
export function placeName(node: string, seq: number, s: SliceMessages, n: number): string {
  const { offset, index } = positionIn(s, n);
  return `${segmentName(node, seq)}-${offset}-${index}`;
}

/**
 * The messages of `frames` (read from offset `from`) from message `index` of the first on. On the request
 * thread, `yieldEvery` frames it lets requests in between (a slice is megabytes); a sender's thread need not.
 */
export async function sliceMessages(frames: ReadonlyArray<{ payload: Buffer; end: number }>, from: number, index: number, o: { withTracks: boolean; yieldEvery?: number }): Promise<SliceMessages> {
  const list: Forwarded[] = [];
  const offsets: number[] = [];
  const indexes: number[] = [];
  let start = from;
  for (const [n, frame] of frames.entries()) {
    if (o.yieldEvery !== undefined && n > 0 && n % o.yieldEvery === 0) await setImmediate();
    const first = list.length;
    parsePayload(frame.payload, list, o.withTracks);
    // The cursor's frame is parsed whole; the messages before the cursor's index in it are dropped.
    const skip = start === from ? Math.min(index, list.length - first) : 0;
    if (skip > 0) list.splice(first, skip);
    for (let k = skip; k < skip + list.length - first; k++) {
      offsets.push(start);
      indexes.push(k);
    }
    start = frame.end;
  }
  return { list, offsets, indexes, end: start };
}

function parsePayload(payload: Buffer, out: Forwarded[], withTracks = true): void {
  let tracks: Buffer[] | undefined;
  readRecords(payload, {
    record: () => void (tracks = undefined),
    // A record's `t` rows come before its `m` row (ingest/prepare.ts).
    row: (kind, _day, p, start, end) => {
      if (kind === 'm') out.push(parseForwardRow(p, start, end, tracks));
      else if (kind === 't' && withTracks) (tracks ??= []).push(p.subarray(start, end));
    },
  });
}

/** Lines of a backlog object parsed between two yields to the event loop (a couple of milliseconds). */
const SLICE_LINES = 2048;
const NEWLINE = 0x0a;

/**
 * A backlog object (destinations/<name>/backlog/…) from a sealed segment's payloads: the `m` rows `keep`
 * accepts, a line each, as the log holds them: a forwarded line is the backlog's layout (ingest/records.ts),
 * so nothing is formatted again. It runs on the request thread, so it yields between slices and copies into
 * one buffer sized for the whole segment: a 64 MB segment parsed, filtered, formatted and joined in one
 * piece held the request thread 145-193 ms (77 220 of bench:ingest's messages).
 */
export async function backlogOf(payloads: readonly Buffer[], keep: (f: Forwarded) => boolean): Promise<{ body: Buffer; messages: number }> {
  // A row's line and its newline are shorter than the row in the payload (15 bytes of head): this holds them.
  const out = Buffer.allocUnsafe(payloads.reduce((n, b) => n + b.length, 0));
  let at = 0;
  let messages = 0;
  for (let k = 0; k < payloads.length; k++) {
    if (k > 0 && k % SLICE_PAYLOADS === 0) await setImmediate();
    readRecords(payloads[k]!, {
      record: () => undefined,
      row: (kind, _day, p, start, end) => {
        if (kind !== 'm' || !keep(parseForwardRow(p, start, end))) return;
        at += p.copy(out, at, start, end);
        out[at++] = NEWLINE;
        messages++;
      },
    });
  }
  return { body: out.subarray(0, at), messages };
}

/**
 * A backlog object's messages (destinations/<name>/backlog/…, a forwarded line each), by line: the cursor
 * counts lines. An erasure empties a line rather than removing it (forward/erase.ts), so it is a hole here.
 * Yields between slices: an object is up to a segment's messages, 73-125 ms of parsing in one piece.
 */
export async function backlogEntries(body: Buffer): Promise<Array<Forwarded | undefined>> {
  const out: Array<Forwarded | undefined> = [];
  for (let start = 0; start < body.length; ) {
    if (out.length > 0 && out.length % SLICE_LINES === 0) await setImmediate();
    const nl = body.indexOf(NEWLINE, start);
    const end = nl < 0 ? body.length : nl;
    out.push(end === start ? undefined : parseForwardRow(body, start, end));
    start = end + 1;
  }
  return out;
}
