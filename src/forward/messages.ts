/**
 * The messages a destination forwards: the log's `m` rows (ingest/prepare.ts writes one per accepted
 * message some destination wants; config/destinations.ts says which). Messages stay JSON
 * bytes from the log to the wire: a batch is their concatenation, nothing is decoded on the way.
 */
import { setImmediate } from 'node:timers/promises';
import { type ForwardRow, parseForwardRow, readRecords } from '../ingest/records.js';

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
  /** Each message's frame offset and index in it. */
  at: Array<[offset: number, index: number]>;
  /** The offset after the last frame. */
  end: number;
}

/**
 * The messages of `frames` (read from offset `from`) from message `index` of the first on. On the request
 * thread, `yieldEvery` frames it lets requests in between (a slice is megabytes); a sender's thread need not.
 */
export async function sliceMessages(frames: ReadonlyArray<{ payload: Buffer; end: number }>, from: number, index: number, o: { withTracks: boolean; yieldEvery?: number }): Promise<SliceMessages> {
  const list: Forwarded[] = [];
  const at: Array<[number, number]> = [];
  let start = from;
  for (const [n, frame] of frames.entries()) {
    if (o.yieldEvery !== undefined && n > 0 && n % o.yieldEvery === 0) await setImmediate();
    const first = list.length;
    parsePayload(frame.payload, list, o.withTracks);
    // The cursor's frame is parsed whole; the messages before the cursor's index in it are dropped.
    const skip = start === from ? Math.min(index, list.length - first) : 0;
    if (skip > 0) list.splice(first, skip);
    for (let k = skip; k < skip + list.length - first; k++) at.push([start, k]);
    start = frame.end;
  }
  return { list, at, end: start };
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

/**
 * A backlog object's messages (destinations/<name>/backlog/…, a forwarded line each), by line: the cursor
 * counts lines. An erasure empties a line rather than removing it (forward/erase.ts), so it is a hole here.
 */
export function backlogEntries(body: Buffer): Array<Forwarded | undefined> {
  const out: Array<Forwarded | undefined> = [];
  for (let start = 0; start < body.length; ) {
    const nl = body.indexOf(0x0a, start);
    const end = nl < 0 ? body.length : nl;
    out.push(end === start ? undefined : parseForwardRow(body, start, end));
    start = end + 1;
  }
  return out;
}
