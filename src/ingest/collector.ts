/**
 * The accept path, after a request is prepared (ingest/prepare.ts): duplicates are dropped and the rest is
 * appended to the log. The answer is built from values (accepted, rejected with reasons); only request-level
 * refusals (overload, log failure) are errors.
 */
import { TracklakeError } from '../lib/errors.js';
import type { Metrics } from '../lib/metrics.js';
import type { LiveCounter } from '../lake/live.js';
import { violationOfCode } from '../plan/plan.js';
import type { DedupIndex } from './dedup.js';
import type { PreparedRequest, RejectedMessage } from './prepare.js';
import { keptRecords } from './records.js';
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
  /** Counts what is acknowledged per tenant and minute, for the live panel (lake/live.ts). */
  live?: LiveCounter;
}

export class Collector {
  private closed = false;
  /**
   * Numbers the accepted requests; a dedup reservation names the request that made it. Numbers wrap after
   * 2^31 requests: by then the request that had a number is long settled, and at worst a duplicate waits for
   * an unrelated request in flight.
   */
  private tickets = 0;
  /**
   * Appends not yet durable, by ticket. A duplicate of a message still in flight is acknowledged only once
   * the original is durable: if the original's write fails, the duplicate fails too (and is retried).
   */
  private readonly inflight = new Map<number, Promise<void>>();
  /** Counters by tenant, so counting an accepted request is not a label lookup. */
  private readonly acceptedBy = new Map<string, { inc(n: number): void }>();
  private readonly violationsBy = new Map<string, { inc(): void }>();
  constructor(private readonly d: CollectorDeps) {}

  /**
   * Until open(), requests are refused with a retryable 503: `serve` binds every port before it acknowledges
   * anything, so a start-up that fails half way has acknowledged nothing.
   */
  private starting = false;

  hold(): void {
    this.starting = true;
  }

  open(): void {
    this.starting = false;
  }

  get accepting(): boolean {
    return !this.starting && !this.closed;
  }

  close(): void {
    this.closed = true;
  }

  /** Throws when no request should be taken now (starting, shutting down, over the buffer budget). */
  checkOpen(): void {
    if (this.closed) throw new TracklakeError('shutting_down');
    if (this.starting) throw new TracklakeError('starting');
    if (this.d.wal.bufferedBytes > this.d.maxBufferBytes) throw new TracklakeError('overloaded');
  }

  /** Logs a prepared request's new messages. Resolves once every one of them is durable. */
  async accept(p: PreparedRequest, receivedAt: number): Promise<AcceptOutcome> {
    try {
      return await this.log(p, receivedAt);
    } finally {
      p.release?.(); // the frame is written, or never will be: its memory goes back to its worker
    }
  }

  private async log(p: PreparedRequest, receivedAt: number): Promise<AcceptOutcome> {
    this.checkOpen();
    const fp = p.fingerprints;
    const n = fp.length / 2;
    this.tickets = this.tickets >= 0x7fffffff ? 1 : this.tickets + 1;
    const ticket = this.tickets;
    // Nearly always nothing is a duplicate: `keep` is only made when one is.
    let keep: number[] | undefined;
    let originals: Array<Promise<void>> | undefined;
    for (let i = 0; i < n; i++) {
      const prior = this.d.dedup.reserve(fp[2 * i]!, fp[2 * i + 1]!, receivedAt, ticket, receivedAt);
      if (prior < 0) {
        keep?.push(i);
        continue;
      }
      keep ??= Array.from({ length: i }, (_, k) => k);
      const original = prior === ticket ? undefined : this.inflight.get(prior);
      if (original) (originals ??= []).push(original);
    }
    const duplicates = keep ? n - keep.length : 0;
    const fresh = keep ? keep.length : n;
    const prepared = Buffer.from(p.frame.buffer, p.frame.byteOffset, p.frame.length);
    for (const r of p.rejected) this.d.metrics.rejected.inc({ reason: r.code });
    if (duplicates > 0) this.d.metrics.duplicates.inc(duplicates);
    if (fresh > 0) {
      const appended = this.d.wal.append(keep ? withoutDuplicates(prepared, keep) : prepared);
      this.inflight.set(ticket, appended);
      try {
        await appended;
      } catch {
        for (let j = 0; j < fresh; j++) {
          const i = keep ? keep[j]! : j;
          this.d.dedup.release(fp[2 * i]!, fp[2 * i + 1]!);
        }
        throw new TracklakeError('log_unavailable');
      } finally {
        this.inflight.delete(ticket);
      }
    }
    if (originals) {
      try {
        await Promise.all(originals);
      } catch {
        throw new TracklakeError('log_unavailable');
      }
    }
    if (p.violations) this.countViolations(p.tenant, p.violations, keep);
    const accepted = p.messages - p.rejected.length;
    let counter = this.acceptedBy.get(p.tenant);
    if (!counter) this.acceptedBy.set(p.tenant, (counter = this.d.metrics.accepted.labels({ tenant: p.tenant })));
    const acknowledged = accepted - duplicates - (p.suppressed ?? 0);
    counter.inc(acknowledged);
    this.d.live?.add(p.tenant, acknowledged, receivedAt);
    if (p.suppressed) this.d.metrics.suppressed.inc({ tenant: p.tenant }, p.suppressed);
    return { accepted, duplicates, rejected: p.rejected };
  }

  /** Counts the violations of the records that were logged (a duplicate's were counted with its original). */
  private countViolations(tenant: string, v: Int32Array, keep: number[] | undefined): void {
    const kept = keep && new Set(keep);
    for (let i = 0; i < v.length; i += 3) {
      if (kept && !kept.has(v[i]!)) continue;
      const key = `${tenant}\u0000${v[i + 1]}\u0000${v[i + 2]}`;
      let counter = this.violationsBy.get(key);
      if (!counter) this.violationsBy.set(key, (counter = this.d.metrics.violations.labels({ tenant, ...violationOfCode(v[i + 1]!, v[i + 2]!) })));
      counter.inc();
    }
  }
}

/** The prepared frame with only the records at the kept indexes. */
const withoutDuplicates = (frame: Buffer, keep: number[]): Buffer => encodeFrame(keptRecords(framePayload(frame), keep));
