/**
 * The messages a destination forwards: the log's `m` rows (ingest/prepare.ts writes one per accepted
 * message some destination wants; config/destinations.ts says which). Messages stay JSON
 * text from the log to the wire: a batch is their concatenation, nothing is parsed on the way.
 */
import { setImmediate } from 'node:timers/promises';
import { type ForwardRow, parseForwardLine, readRecords } from '../ingest/records.js';
import type { ShipFilter } from '../privacy/ship-filter.js';

/** A message to forward; `leftOut` when the privacy filter says its subject's messages must not go anywhere. */
export type Forwarded = ForwardRow & { leftOut?: true };

/** Payloads decoded between two yields to the event loop (about a millisecond of work). */
const SLICE_PAYLOADS = 64;

/**
 * The forwarded messages of a segment's payloads, in log order. With the privacy filter in force, a message
 * received before a suppression or deletion of its subject reached this node is marked `leftOut`
 * (privacy/ship-filter.ts), as its tracking rows are left out when they ship. It stays in the list: a
 * cursor counts messages within a frame, and must count the same ones whatever the filter says.
 */
export async function forwardedOf(payloads: readonly Buffer[], filter?: ShipFilter): Promise<Forwarded[]> {
  const out: Forwarded[] = [];
  let at = 0;
  for (let k = 0; k < payloads.length; k++) {
    if (k > 0 && k % SLICE_PAYLOADS === 0) await setImmediate();
    readRecords(payloads[k]!, {
      record: (_hi, _lo, receivedAt) => (at = receivedAt),
      row: (kind, _day, payload, start, end) => {
        if (kind !== 'm') return;
        const f: Forwarded = parseForwardLine(payload.toString('utf8', start, end));
        if (filter?.dropsMessage(at, f.tenant, f.json)) f.leftOut = true;
        out.push(f);
      },
    });
  }
  return out;
}

/**
 * A backlog object's messages (destinations/<name>/backlog/…, a forwarded line each), by line: the cursor
 * counts lines. An erasure empties a line rather than removing it (forward/erase.ts), so it is a hole here,
 * and a line the privacy filter now leaves out is marked as in the log.
 */
export function backlogEntries(body: Buffer, filter?: ShipFilter): Array<Forwarded | undefined> {
  const lines = body.toString('utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line) => {
    if (line === '') return undefined;
    const f: Forwarded = parseForwardLine(line);
    if (filter?.dropsMessage(f.receivedAt, f.tenant, f.json)) f.leftOut = true;
    return f;
  });
}
