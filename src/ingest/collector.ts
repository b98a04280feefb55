/**
 * The accept path: a request's messages are validated, mapped to rows, checked for duplicates and appended
 * to the log. The answer is built from values (accepted, rejected with reasons); only request-level
 * refusals (bad body, overload, log failure) are errors.
 */
import type { Clock } from '../lib/clock.js';
import { TracklakeError, type ErrorCode } from '../lib/errors.js';
import type { Metrics } from '../lib/metrics.js';
import { ok, reject, type Rejection } from '../lib/result.js';
import { splitBody, validateMessage, type MessageType } from '../segment/message.js';
import { dayOf } from '../lib/dates.js';
import { IDENTITY_COLUMNS } from '../tracking/columns.js';
import { csvRecord, trackCsv } from '../tracking/csv.js';
import { UaClassifier } from '../tracking/enrich.js';
import type { EventMap } from '../tracking/events.js';
import { mapMessage } from '../tracking/map.js';
import { dedupKey, type DedupIndex } from './dedup.js';
import { encodeRecords, type WalRecord } from './records.js';
import type { WriteAheadLog } from './wal.js';

export interface RejectedMessage {
  index: number;
  messageId: string | null;
  code: ErrorCode;
  reason: string;
}

/** A batch whose every message was refused: the reasons travel with the refusal. */
export type BatchRejection = Rejection & { rejected?: RejectedMessage[] };

export interface AcceptOutcome {
  accepted: number;
  duplicates: number;
  rejected: RejectedMessage[];
}

export interface CollectorDeps {
  wal: WriteAheadLog;
  dedup: DedupIndex;
  clock: Clock;
  metrics: Metrics;
  eventMap: EventMap;
  maxBufferBytes: number;
}

export interface IncomingRequest {
  tenant: string;
  body: unknown;
  /** Decoded size of the request body, when known. */
  bodyBytes?: number;
  pathType: MessageType | 'batch';
  clientIp: string | null;
}

export class Collector {
  private closed = false;
  private readonly uaClassifier = new UaClassifier();
  /**
   * Appends not yet fsynced, by dedup key. A duplicate of a message still in flight is acknowledged only
   * once the original is durable: if the original's write fails, the duplicate fails too (and is retried).
   */
  private readonly inflight = new Map<string, Promise<void>>();
  constructor(private readonly d: CollectorDeps) {}

  /** Finds the write key a body carries, for clients that send it there instead of in Basic auth. */
  static bodyWriteKey(body: unknown): string | undefined {
    if (body && typeof body === 'object' && !Array.isArray(body) && Object.hasOwn(body, 'writeKey')) {
      const k = (body as Record<string, unknown>).writeKey;
      return typeof k === 'string' ? k : undefined;
    }
    return undefined;
  }

  close(): void {
    this.closed = true;
  }

  /** Validates and logs one request. Resolves once every accepted message is durable. */
  async accept(req: IncomingRequest): Promise<{ ok: true; value: AcceptOutcome } | BatchRejection> {
    if (this.closed) throw new TracklakeError('shutting_down');
    if (this.d.wal.bufferedBytes > this.d.maxBufferBytes) throw new TracklakeError('overloaded');
    const split = splitBody(req.body, req.pathType, req.bodyBytes);
    if (!split.ok) return split;
    const receivedAt = this.d.clock.now();
    const records: WalRecord[] = [];
    const rejected: RejectedMessage[] = [];
    const originals: Array<Promise<void>> = [];
    let duplicates = 0;

    const { messages, envelope } = split.value;
    const mapContext = { tenant: req.tenant, receivedAt, clientIp: req.clientIp, eventMap: this.d.eventMap, uaClassifier: this.uaClassifier };
    for (let index = 0; index < messages.length; index++) {
      const raw = messages[index];
      const msg = validateMessage(raw, envelope);
      const rows = msg.ok ? mapMessage(msg.value, mapContext) : msg;
      if (!rows.ok) {
        const id = (raw as { messageId?: unknown } | null)?.messageId;
        rejected.push({ index, messageId: typeof id === 'string' ? id.slice(0, 100) : null, code: rows.code, reason: rows.message });
        continue;
      }
      const messageId = (msg as { value: { messageId: string } }).value.messageId;
      if (!this.d.dedup.reserve(req.tenant, messageId, receivedAt)) {
        duplicates++;
        const original = this.inflight.get(dedupKey(req.tenant, messageId));
        if (original) originals.push(original);
        continue;
      }
      const { tracks, identities } = rows.value;
      if (tracks.length === 0 && identities.length === 0) continue; // group calls, identify without a link
      const r: WalRecord['r'] = [];
      for (const row of tracks) r.push(['t', dayOf(row.time), trackCsv(row)]);
      for (const row of identities) r.push(['i', dayOf(row.time), csvRecord(row, IDENTITY_COLUMNS)]);
      records.push({ id: messageId, tn: req.tenant, at: receivedAt, r });
    }

    for (const r of rejected) this.d.metrics.rejected.inc({ reason: r.code });
    if (duplicates > 0) this.d.metrics.duplicates.inc(duplicates);
    const accepted = split.value.messages.length - rejected.length;
    if (accepted === 0) {
      const first = rejected[0]!;
      if (req.pathType !== 'batch') return reject(first.code, first.reason);
      return { ok: false, code: 'all_rejected', message: `No message was valid; the first (index ${first.index}) was rejected: ${first.reason}`, rejected };
    }
    // Messages with no rows (group calls, identify without a link) are accepted but need no log record.
    if (records.length > 0) {
      const appended = this.d.wal.append(encodeRecords(records));
      const keys = records.map((r) => dedupKey(r.tn, r.id));
      for (const k of keys) this.inflight.set(k, appended);
      try {
        await appended;
      } catch {
        for (const r of records) this.d.dedup.release(r.tn, r.id);
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
    this.d.metrics.accepted.inc({ tenant: req.tenant }, accepted - duplicates);
    return ok({ accepted, duplicates, rejected });
  }
}
