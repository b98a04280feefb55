/**
 * Ships sealed log segments to storage as tracking files, then releases them.
 *
 * Exactly once: each segment becomes one object per (kind, day) it touches, keyed by the node id and the
 * segment's sequence number. Shipping is deterministic, so a crash anywhere in it is repaired by shipping
 * the segment again: the same keys get the same bytes. Only after every object is stored is the segment
 * deleted. Segments ship in order, one at a time; a failure is retried with jittered exponential backoff.
 *
 * Across collectors (`dedupRedisUrl`), a segment's message ids are claimed in the shared state first, named
 * after the segment: a record whose id another segment holds was shipped by another node and is left out,
 * and a segment shipped again gets its own claims back, so the rule above still holds.
 */
import { setImmediate } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import type { Metrics } from '../lib/metrics.js';
import { ReusedBuffer } from '../lib/reused-buffer.js';
import type { ObjectStore } from '../storage/store.js';
import { headerOf, keys, LAKE } from '../lake/layout.js';
import { ID_ENTRY_BYTES, pruneIdsFiles, writeIdsFile } from './dedup.js';
import type { PrivacyGate, ShipFilter } from '../privacy/ship-filter.js';
import { readRecords, type RowKind } from './records.js';
import { segmentName, type WriteAheadLog } from './wal.js';
import type { IdClaims } from '../storage/redis.js';

/** The fingerprints of a segment's records, in order (two int32 each); yields as segmentObjects does. */
async function fingerprintsOf(payloads: readonly Buffer[]): Promise<Int32Array> {
  let out = new Int32Array(2 * 1024);
  let n = 0;
  for (let k = 0; k < payloads.length; k++) {
    if (k > 0 && k % SLICE_PAYLOADS === 0) await setImmediate();
    readRecords(payloads[k]!, {
      record: (hi, lo) => {
        if (2 * n + 2 > out.length) {
          const more = new Int32Array(out.length * 2);
          more.set(out);
          out = more;
        }
        out[2 * n] = hi;
        out[2 * n + 1] = lo;
        n++;
      },
    });
  }
  return out.subarray(0, 2 * n);
}

export interface ShipperOptions {
  wal: WriteAheadLog;
  store: ObjectStore;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  flushIntervalMs: number;
  dedupWindowMs: number;
  retry?: { baseMs: number; maxMs: number };
  /**
   * The privacy filter in force (privacy/ship-filter.ts). Shipping waits for `ready` first: a segment must not
   * ship before this node has read the regulations once.
   */
  privacy?: PrivacyGate;
  /**
   * Claims shared by the collectors on one bucket (storage/redis.ts): a segment's ids are claimed for the
   * duplicate window before it ships, and a record whose id another segment holds is left out.
   */
  claims?: IdClaims;
  /** Shipping waits while another collector runs with this node id (ingest/node-claim.ts). */
  nodeClaim?: { ready(): Promise<void> };
}

/**
 * Each kind of row becomes its own file per day; quarantine files are JSON lines, so they have no header.
 * Forwarded messages (`m`) are for destinations (forward/) and never reach the bucket.
 */
const KINDS: Record<Exclude<RowKind, 'm'>, { prefix: 'tracks' | 'identities' | 'violations' | 'quarantine'; header: string; ext: string; label: string }> = {
  t: { prefix: 'tracks', header: `${headerOf(LAKE.tracks)}\n`, ext: 'csv', label: 'track' },
  i: { prefix: 'identities', header: `${headerOf(LAKE.identities)}\n`, ext: 'csv', label: 'identity' },
  v: { prefix: 'violations', header: `${headerOf(LAKE.violations)}\n`, ext: 'csv', label: 'violation' },
  q: { prefix: 'quarantine', header: '', ext: 'jsonl', label: 'quarantine' },
};

export interface SegmentContent {
  objects: Array<{ key: string; body: Buffer; rows: number; label: string }>;
  /** The fingerprint and receipt time of every record: the dedup id file's bytes (ingest/dedup.ts). */
  ids: Buffer;
  /** Records in the segment, and the earliest and latest receipt time among them. */
  records: number;
  oldest: number;
  newest: number;
  /** Records left out by the privacy filter, per tenant. */
  dropped: Record<string, number>;
  /** Records left out because another node shipped them first (their ids claimed by another segment). */
  duplicates: number;
}

/** Work between two yields to the event loop while cutting a segment: about a millisecond of it. */
const SLICE_PAYLOADS = 64;
const SLICE_ROWS = 4096;

/**
 * The objects a segment becomes: deterministic in the segment's payloads, node id and sequence. Lines are
 * copied from the log's bytes into each object's body; none is turned back into a string. It yields to the
 * event loop every millisecond or so: a segment of a minute's traffic is millions of rows, and requests
 * must not wait while it is cut (measured: stalls of 50-150 ms every flush under bench:ingest before).
 */
export async function segmentObjects(payloads: readonly Buffer[], nodeId: string, seq: number, filter?: ShipFilter, keep?: Uint8Array, bodies?: ReusedBuffer): Promise<SegmentContent> {
  // Each row is kept as (payload index, start, end) in a typed array: a segment has millions of rows, and an
  // array of them was a large object the garbage collector had to walk.
  type Group = { kind: Exclude<RowKind, 'm'>; day: string; ranges: Int32Array; bytes: number; rows: number };
  const groups = new Map<string, Group>();
  // Rows of a payload nearly always share kind and day: the last group is kept instead of looked up per row.
  let last: Group | undefined;
  let ids = Buffer.allocUnsafe(64 * ID_ENTRY_BYTES);
  let records = 0;
  let oldest = Infinity;
  let newest = 0;
  const add = (kind: Exclude<RowKind, 'm'>, day: string, payload: number, start: number, end: number) => {
    let group = last !== undefined && last.kind === kind && last.day === day ? last : groups.get(kind + day);
    if (!group) groups.set(kind + day, (group = { kind, day, ranges: new Int32Array(3 * 1024), bytes: 0, rows: 0 }));
    last = group;
    if (start < 0) return; // a left-out row still makes its (kind, day) object, so a re-ship overwrites it
    if (3 * group.rows + 3 > group.ranges.length) {
      const more = new Int32Array(group.ranges.length * 2);
      more.set(group.ranges);
      group.ranges = more;
    }
    const r = 3 * group.rows++;
    group.ranges[r] = payload;
    group.ranges[r + 1] = start;
    group.ranges[r + 2] = end;
    group.bytes += end - start + 1;
  };
  // With a privacy filter, the rows of a record it must look at wait until the record ends.
  let held: Array<{ kind: Exclude<RowKind, 'm'>; day: string; payload: number; start: number; end: number }> | undefined;
  let heldAt = 0;
  const settle = () => {
    if (held === undefined) return;
    const tenant = filter!.drops(heldAt, held.map((h) => ({ kind: h.kind, line: payloads[h.payload]!.subarray(h.start, h.end) })));
    if (tenant !== undefined) (dropped[tenant] = (dropped[tenant] ?? 0) + 1);
    for (const h of held) add(h.kind, h.day, h.payload, tenant === undefined ? h.start : -1, h.end);
    held = undefined;
  };
  const dropped: Record<string, number> = {};
  // A record another node shipped first (keep[i] 0: its id is claimed by another segment) leaves all its
  // rows out, as the privacy filter's do.
  let duplicate = false;
  let duplicates = 0;
  for (let payload = 0; payload < payloads.length; payload++) {
    if (payload > 0 && payload % SLICE_PAYLOADS === 0) await setImmediate();
    readRecords(payloads[payload]!, {
      record: (hi, lo, at) => {
        settle();
        duplicate = keep !== undefined && keep[records] === 0;
        if (duplicate) duplicates++;
        else if (filter?.looksAt(at)) {
          held = [];
          heldAt = at;
        }
        if ((records + 1) * ID_ENTRY_BYTES > ids.length) {
          const more = Buffer.allocUnsafe(ids.length * 2);
          ids.copy(more);
          ids = more;
        }
        const off = records++ * ID_ENTRY_BYTES;
        ids.writeInt32LE(hi, off);
        ids.writeInt32LE(lo, off + 4);
        ids.writeDoubleLE(at, off + 8);
        if (at < oldest) oldest = at;
        if (at > newest) newest = at;
      },
      // Forwarded messages (`m`) are for destinations only: not even read.
      forwarded: false,
      row: (kind, day, _buf, start, end) => {
        if (kind === 'm') return; // never visited (forwarded: false); this narrows the kind
        if (held !== undefined) held.push({ kind, day, payload, start, end });
        else add(kind, day, payload, duplicate ? -1 : start, end);
      },
    });
    settle();
  }
  const name = segmentName(nodeId, seq);
  const objects: SegmentContent['objects'] = [];
  // With `bodies`, every object is a piece of that one buffer, good until the caller's next segment.
  let total = 0;
  for (const g of groups.values()) total += KINDS[g.kind].header.length + g.bytes;
  const block = bodies?.take(total);
  let at = 0;
  for (const { kind, day, ranges, bytes, rows } of groups.values()) {
    const k = KINDS[kind];
    const size = k.header.length + bytes;
    const body = block ? block.subarray(at, (at += size)) : Buffer.allocUnsafe(size);
    let off = body.write(k.header, 'latin1');
    for (let i = 0; i < 3 * rows; i += 3) {
      if (i > 0 && i % (3 * SLICE_ROWS) === 0) await setImmediate();
      off += payloads[ranges[i]!]!.copy(body, off, ranges[i + 1], ranges[i + 2]);
      body[off++] = 0x0a;
    }
    objects.push({ key: keys.shipped(k.prefix, day, name, k.ext), body, rows, label: k.label });
  }
  objects.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { objects, ids: ids.subarray(0, records * ID_ENTRY_BYTES), records, oldest, newest, dropped, duplicates };
}

export class Shipper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** A segment's bytes and the objects cut from them: segments ship one at a time (see ReusedBuffer). */
  private readonly reads = new ReusedBuffer();
  private readonly bodies = new ReusedBuffer();
  private again = false;
  private stopping = false;
  private wake: (() => void) | undefined;
  /** Time of the last successful storage write and of the last failed one, for /ready. */
  lastSuccessAt: number | undefined;
  lastFailureAt: number | undefined;
  lastError: string | undefined;
  private oldestPendingAt: number | undefined;

  constructor(private readonly o: ShipperOptions) {
    o.metrics.logState = () => this.logState();
  }

  start(): void {
    this.timer = setInterval(() => this.flush(), this.o.flushIntervalMs);
    this.timer.unref();
    this.flush(); // ship whatever a previous run left in the log
  }

  /** Seals the active segment and ships everything sealed; concurrent calls coalesce. */
  flush(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.o.wal.seal();
        await this.shipAll();
      } while (this.again && !this.stopping);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async shipAll(): Promise<void> {
    for (const seq of this.o.wal.sealed()) {
      let attempt = 0;
      for (;;) {
        try {
          await this.shipSegment(seq);
          break;
        } catch (e) {
          this.o.metrics.uploadFailures.inc();
          this.lastError = (e as Error).message;
          this.lastFailureAt = this.o.clock.now();
          this.o.logger.warn({ err: (e as Error).message, segment: seq, attempt }, 'upload failed; will retry');
          if (this.stopping && attempt >= 2) throw e;
          await this.sleep(this.backoff(attempt++));
        }
      }
    }
  }

  private backoff(attempt: number): number {
    const { baseMs, maxMs } = this.o.retry ?? { baseMs: 200, maxMs: 30_000 };
    const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
    return cap / 2 + Math.random() * (cap / 2);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async shipSegment(seq: number): Promise<void> {
    await this.o.privacy?.ready();
    await this.o.nodeClaim?.ready();
    const payloads = await this.o.wal.read(seq, this.reads);
    // Claimed before anything is stored; a segment shipped again (after a crash) gets its own claims back,
    // so it is cut the same way and overwrites the same objects with the same bytes.
    const keep = this.o.claims && (await this.o.claims.claim(await fingerprintsOf(payloads), `${this.o.wal.nodeId}-${seq}`, this.o.dedupWindowMs / 1000));
    const { objects, ids, records, oldest, newest, dropped, duplicates } = await segmentObjects(payloads, this.o.wal.nodeId, seq, this.o.privacy?.filter(), keep, this.bodies);
    for (const [tenant, n] of Object.entries(dropped)) this.o.metrics.shipFiltered.inc({ tenant }, n);
    if (duplicates > 0) this.o.metrics.crossNodeDuplicates.inc(duplicates);
    if (records > 0) this.oldestPendingAt = Math.min(this.oldestPendingAt ?? Infinity, oldest);
    for (const obj of objects) {
      await this.o.store.put(obj.key, obj.body);
      this.o.metrics.rowsWritten.inc({ kind: obj.label }, obj.rows);
    }
    this.lastSuccessAt = this.o.clock.now();
    // The ids outlive the segment so duplicates are still caught after it is gone.
    await writeIdsFile(this.o.wal.dir, seq, ids, newest);
    await this.o.wal.release(seq);
    this.oldestPendingAt = undefined;
    await pruneIdsFiles(this.o.wal.dir, this.o.clock.now() - this.o.dedupWindowMs);
    this.o.logger.debug({ segment: seq, records }, 'segment shipped');
  }

  private logState() {
    return {
      bytes: this.o.wal.bufferedBytes,
      segments: this.o.wal.sealed().length,
      lagSeconds: this.oldestPendingAt === undefined ? 0 : Math.max(0, (this.o.clock.now() - this.oldestPendingAt) / 1000),
    };
  }

  /** Storage is healthy unless its latest write failed. */
  get storageHealthy(): boolean {
    return this.lastFailureAt === undefined || (this.lastSuccessAt !== undefined && this.lastSuccessAt >= this.lastFailureAt);
  }

  /** Stops the timer, then ships everything; gives up (leaving the log for the next start) after timeoutMs. */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.wake?.();
    const done = (async () => {
      if (this.running) await this.running.catch(() => undefined);
      await this.o.wal.seal();
      await this.shipAll();
      return true;
    })().catch(() => false);
    const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref());
    return Promise.race([done, timeout]);
  }
}
