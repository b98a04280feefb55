/**
 * The messages a destination forwards: the log's `m` rows (ingest/prepare.ts writes one per accepted
 * message when destinations are configured), and which of them a destination wants. Messages stay JSON
 * text from the log to the wire: a batch is their concatenation, nothing is parsed on the way.
 */
import { setImmediate } from 'node:timers/promises';
import type { Destination } from '../config/destinations.js';
import { type ForwardRow, parseForwardLine, readRecords } from '../ingest/records.js';

export type Forwarded = ForwardRow;

/** Payloads decoded between two yields to the event loop (about a millisecond of work). */
const SLICE_PAYLOADS = 64;

/** The forwarded messages of a segment's payloads, in log order. */
export async function forwardedOf(payloads: readonly Buffer[]): Promise<Forwarded[]> {
  const out: Forwarded[] = [];
  for (let k = 0; k < payloads.length; k++) {
    if (k > 0 && k % SLICE_PAYLOADS === 0) await setImmediate();
    readRecords(payloads[k]!, {
      record: () => undefined,
      row: (kind, _day, payload, start, end) => {
        if (kind === 'm') out.push(parseForwardLine(payload.toString('utf8', start, end)));
      },
    });
  }
  return out;
}

/** `*` as any run of characters; everything else literal. */
function globRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** Which messages a destination forwards: its tenants, its events (track calls by name, others by type), blocked or not. */
export function destinationFilter(d: Pick<Destination, 'tenants' | 'events' | 'includeBlocked'>): (f: Forwarded) => boolean {
  const tenants = d.tenants ? new Set(d.tenants) : undefined;
  const events = d.events?.map(globRegExp);
  return (f) => {
    if (f.blocked && !d.includeBlocked) return false;
    if (tenants && !tenants.has(f.tenant)) return false;
    return !events || events.some((e) => e.test(f.name));
  };
}
