/**
 * The accept path, after a request is prepared (ingest/prepare.ts): duplicates are dropped and the rest is
 * appended to the log. The answer is built from values (accepted, rejected with reasons); only request-level
 * refusals (overload, log failure) are errors.
 */
import { TracklakeError } from '../lib/errors.js';
import type { Metrics } from '../lib/metrics.js';
import { dedupKey, type DedupIndex } from './dedup.js';
import type { PreparedRequest, RejectedMessage } from './prepare.js';
import { readRecords } from './records.js';
import { encodeFrame, framePayload, type WriteAheadLog } from './wal.js';

export interface AcceptOutcome {
  accepted: number;
  duplicates: number;
  rejected: RejectedMessage[];
}

export interface CollectorDeps {
  wal: WriteAheadLog;
  dedup: DedupIndex;
  metrics: Metrics;
  maxBufferBytes: number;
}

export class Collector {
  private closed = false;
  /**
   * Appends not yet fsynced, by dedup key. A duplicate of a message still in flight is acknowledged only
   * once the original is durable: if the original's write fails, the duplicate fails too (and is retried).
   */
  private readonly inflight = new Map<string, Promise<void>>();
  constructor(private readonly d: CollectorDeps) {}

  close(): void {
    this.closed = true;
  }

  /** Throws when no request should be taken now (shutting down, over the buffer budget). */
  checkOpen(): void {
    if (this.closed) throw new TracklakeError('shutting_down');
    if (this.d.wal.bufferedBytes > this.d.maxBufferBytes) throw new TracklakeError('overloaded');
  }

  /** Logs a prepared request's new messages. Resolves once every one of them is durable. */
  async accept(p: PreparedRequest, receivedAt: number): Promise<AcceptOutcome> {
    this.checkOpen();
    const { tenant, ids } = p;
    const keep: number[] = [];
    const originals: Array<Promise<void>> = [];
    for (let i = 0; i < ids.length; i++) {
      if (this.d.dedup.reserve(tenant, ids[i]!, receivedAt)) keep.push(i);
      else {
        const original = this.inflight.get(dedupKey(tenant, ids[i]!));
        if (original) originals.push(original);
      }
    }
    const duplicates = ids.length - keep.length;
    // Nearly always nothing is a duplicate and the frame is logged as prepared.
    const prepared = Buffer.from(p.frame.buffer, p.frame.byteOffset, p.frame.length);
    const frame = duplicates === 0 ? prepared : withoutDuplicates(prepared, keep);
    const fresh = duplicates === 0 ? ids : keep.map((i) => ids[i]!);
    for (const r of p.rejected) this.d.metrics.rejected.inc({ reason: r.code });
    if (duplicates > 0) this.d.metrics.duplicates.inc(duplicates);
    if (fresh.length > 0) {
      const appended = this.d.wal.append(frame);
      const keys = fresh.map((id) => dedupKey(tenant, id));
      for (const k of keys) this.inflight.set(k, appended);
      try {
        await appended;
      } catch {
        for (const id of fresh) this.d.dedup.release(tenant, id);
        throw new TracklakeError('log_unavailable');
      } finally {
        for (const k of keys) if (this.inflight.get(k) === appended) this.inflight.delete(k);
      }
    }
    if (originals.length > 0) {
      try {
        await Promise.all(originals);
      } catch {
        throw new TracklakeError('log_unavailable');
      }
    }
    const accepted = p.messages - p.rejected.length;
    this.d.metrics.accepted.inc({ tenant }, accepted - duplicates);
    return { accepted, duplicates, rejected: p.rejected };
  }
}

/** The prepared frame with only the records at the kept indexes. */
function withoutDuplicates(frame: Buffer, keep: number[]): Buffer {
  const payload = framePayload(frame);
  const starts: number[] = [];
  readRecords(payload, { record: (_id, _tn, _at, start) => void starts.push(start) });
  starts.push(payload.length);
  return encodeFrame(Buffer.concat(keep.map((i) => payload.subarray(starts[i], starts[i + 1]))));
}
