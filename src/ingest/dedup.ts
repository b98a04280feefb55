/**
 * Duplicate detection: a messageId accepted for a tenant within the window (24 h) is acknowledged again but
 * not written again. The index lives in memory and is rebuilt at start from the log's pending segments and
 * the small id files written when a segment is shipped, so it holds across restarts.
 *
 * The index keeps the 64-bit fingerprint of (tenant, messageId) (lib/fingerprint.ts), its receipt time
 * (whole seconds, rounded up) and the ticket of the request that logged it, in typed arrays (an
 * open-addressing table with linear probing): 16 bytes a slot, and nothing for the garbage collector to walk
 * (bench:ingest measured a Map of strings at a tenth of the collector's CPU, most of it in GC).
 *
 * Nothing here ever works through the whole table at once, so no operation holds the request thread for
 * more than a bounded slice, at any size:
 * - Growth and compaction are incremental, as in Redis: a new table is made, and every insert (and a
 *   maintenance tick when traffic is idle) moves a fixed number of slots of the old table into it, while
 *   lookups consult both. The new table is sized so the move ends before it is half full.
 * - Expiry needs no sweep: an id older than the cutoff is dead where it lies, its slot is reused by the next
 *   insert that probes it, and the compaction above leaves it behind.
 * - Memory has a budget (maxIds, from `dedupMaxBytes`): ids are counted per slice of time, and when the
 *   window holds more than the budget the oldest slices are cut off first. The effective window shrinks;
 *   an id within it is still always caught, and an id is never taken for a duplicate of another (only an
 *   equal fingerprint matches).
 *
 * This index is per collector node. Across the collectors of a bucket, a retry that reached another node is
 * caught when its segment ships, through ids claimed in shared state (dedupRedisUrl, ingest/shipper.ts).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Clock } from '../lib/clock.js';
import { writeFileAtomic } from '../storage/local.js';
import { fingerprint } from '../lib/fingerprint.js';
import type { Prefault } from './prefault.js';

/** A slot's time: 0 is a slot never used, 1 one whose id was released or moved; ids hold seconds since 1970. */
const EMPTY = 0;
const TOMBSTONE = 1;
const MIN_CAPACITY = 1 << 12;
/** Largest table: its slots' 32-bit view must stay under the typed-array length limit (2^32 elements). */
const MAX_CAPACITY = 2 ** 30;
/** Most ids a table of MAX_CAPACITY holds at three slots per id plus what arrives during a compaction. */
const MAX_IDS = Math.floor(MAX_CAPACITY / 3.7);
/** Bytes of one slot: fingerprint (2 × 4), time (4), ticket (4). */
export const SLOT_BYTES = 16;
/**
 * Old slots moved per insert while a table is compacted: bounds the work of one insert (each move is a
 * random write into the new table, about 0.1 µs), and sets how many inserts a compaction spans.
 */
const MOVE_PER_INSERT = 16;
/**
 * Bytes per id the budget allows for: a table holding M ids has at most about 3.7 M slots (sized 3× its
 * live ids plus the C/16 that arrive while the previous one is moved), and while one is compacted into the
 * next both exist: 2 × 3.7 × 16 bytes. Between compactions it is about half that.
 */
export const BYTES_PER_ID = 120;
/** Old slots moved per maintenance tick (traffic may be idle): about a millisecond of work. */
const MOVE_PER_TICK = 1 << 15;
/** The window is counted in this many slices of time; the oldest slice is what leaves first over budget. */
const SLICES = 1024;

/**
 * Open addressing with linear probing. A slot's four fields lie side by side (fingerprint high and low,
 * time, ticket: 16 bytes), so a probe touches one cache line; in separate columns it touched four, and on
 * a table of hundreds of MB each is a cache miss.
 */
class Table {
  /** The slots in one shared buffer, so another thread can fault its pages in (ingest/prefault.ts). */
  readonly buffer: SharedArrayBuffer;
  /** Slot i: [4i] and [4i + 1] the fingerprint, [4i + 3] the ticket. */
  private readonly ints: Int32Array;
  /** Slot i: [4i + 2] the time, unsigned. */
  private readonly uints: Uint32Array;
  /** Slots not EMPTY (live, dead or tombstones): what probing walks over. */
  used = 0;
  constructor(readonly capacity: number) {
    this.buffer = new SharedArrayBuffer(capacity * SLOT_BYTES);
    this.ints = new Int32Array(this.buffer);
    this.uints = new Uint32Array(this.buffer);
  }
  /** The slot holding the fingerprint with a time after cutoff (seconds), or -1. */
  find(h1: number, h2: number, cutoff: number): number {
    const cap = this.capacity;
    const ints = this.ints;
    const uints = this.uints;
    for (let i = (h1 >>> 0) % cap; ; i = i + 1 === cap ? 0 : i + 1) {
      const t = uints[4 * i + 2]!;
      if (t === EMPTY) return -1;
      if (t > cutoff && ints[4 * i] === h1 && ints[4 * i + 1] === h2) return i;
    }
  }
  /** Where a fingerprint that is not in the table goes: the first slot of its chain that holds no live id. */
  slotFor(h1: number, cutoff: number): number {
    const cap = this.capacity;
    let i = (h1 >>> 0) % cap;
    while (this.uints[4 * i + 2]! > cutoff) i = i + 1 === cap ? 0 : i + 1;
    return i;
  }
  put(i: number, h1: number, h2: number, at: number, ticket: number): void {
    const o = 4 * i;
    if (this.uints[o + 2] === EMPTY) this.used++;
    this.ints[o] = h1;
    this.ints[o + 1] = h2;
    this.uints[o + 2] = at;
    this.ints[o + 3] = ticket;
  }
  hi(i: number): number {
    return this.ints[4 * i]!;
  }
  lo(i: number): number {
    return this.ints[4 * i + 1]!;
  }
  at(i: number): number {
    return this.uints[4 * i + 2]!;
  }
  ticket(i: number): number {
    return this.ints[4 * i + 3]!;
  }
  /** Marks a slot's id released or moved: probing still walks past it, nothing matches it. */
  bury(i: number): void {
    this.uints[4 * i + 2] = TOMBSTONE;
  }
}

export interface DedupOptions {
  /** Most ids held; past it the oldest leave first and the effective window shrinks. */
  maxIds?: number;
  /**
   * Faults a new table's pages in off the request thread before the table is used (ingest/prefault.ts).
   * Without it the inserts fault them in, which stalls them on machines where page faults are slow.
   */
  prefault?: Prefault;
  /** Tables of this many bytes or more are cleared and used again rather than freed (with prefault only). */
  recycleFromBytes?: number;
}

/** A table is made ready (its pages faulted in) once the current one is this full, and used once it is half full. */
const PREPARE_AT = 0.35;
/** Share of a core the thread faulting a table made ahead may take (ingest/prefault.ts). */
const PREFAULT_DUTY = 0.25;
/** Past this the next table is used whether or not it is ready: probing a fuller table costs more than faults. */
const FORCE_AT = 0.7;

export class DedupIndex {
  private cur = new Table(MIN_CAPACITY);
  /** The table being compacted into cur, and how far the move has got. */
  private old: Table | undefined;
  private cursor = 0;
  /**
   * The table cur will be compacted into, made ahead so its pages are faulted in off the request thread; a
   * recycled one (the spare below, being cleared) must not be used before it is ready.
   */
  private next: { table: Table; ready: boolean; recycled: boolean } | undefined;
  /**
   * The table the last compaction emptied, kept to be cleared and used as the next one when its size fits.
   * Once the window is full the tables keep one size, so a node at its budget frees and faults in nothing:
   * freeing a table of gigabytes stalled the request thread for tens of milliseconds (the kernel unmapping
   * its pages), and faulting one in took a core for seconds.
   */
  private spare: Table | undefined;
  private recycledTables = 0;
  private readonly prefault: Prefault | undefined;
  private readonly recycleFrom: number;
  /** Ids held at the last compaction and inserts since: how fast the window is growing. */
  private liveAtCompact = 0;
  private insertsSinceCompact = 0;

  private readonly maxIds: number;
  /** Slices of time: ids are counted by the slice of their time, in a ring of `ring` slices. */
  private readonly sliceSec: number;
  private readonly ring: number;
  private readonly sliceOf: Float64Array;
  private readonly sliceCount: Float64Array;
  /** The oldest slice still counted, and the newest seen. */
  private tail = -1;
  private head = -1;
  /** Ids counted in slices tail..head: the ids held (a slice partly past the cutoff counts whole). */
  private live = 0;
  /** Ids of this time (seconds) or older were cut off to keep within maxIds. */
  private evicted = 0;
  /** The last cutoff computed, and for which `now`. */
  private cutNow = Number.NaN;
  private cut = 0;

  constructor(private readonly windowMs: number, private readonly clock: Clock, options: DedupOptions = {}) {
    const windowSec = Math.ceil(windowMs / 1000);
    this.maxIds = Math.min(options.maxIds ?? MAX_IDS, MAX_IDS);
    this.prefault = options.prefault;
    this.recycleFrom = options.recycleFromBytes ?? 256 * 2 ** 20;
    this.sliceSec = Math.max(1, Math.ceil(windowSec / SLICES));
    this.ring = Math.ceil(windowSec / this.sliceSec) + 3;
    this.sliceOf = new Float64Array(this.ring).fill(-1);
    this.sliceCount = new Float64Array(this.ring);
  }

  /**
   * The time (whole seconds) at or before which an id is dead, for the clock's now: the window's start, or
   * later when the budget cut the oldest slices off. Advances the counted slices on the way.
   */
  private cutoff(now: number): number {
    // The ids of one request, and a whole restart's, share one `now`: computed once for them.
    if (now === this.cutNow && this.live <= this.maxIds) return this.cut;
    let cut = Math.max(Math.floor((now - this.windowMs) / 1000), this.evicted);
    if (this.tail < 0) this.tail = this.head = Math.floor((cut + 1) / this.sliceSec);
    // Slices wholly at or before the cutoff are no longer counted.
    const last = Math.floor((cut + 1) / this.sliceSec) - 1;
    if (this.tail >= 0 && this.tail <= last) this.uncount(last);
    // Over budget: cut whole slices off, oldest first (never the newest: it is what arrives now).
    while (this.live > this.maxIds && this.tail >= 0 && this.tail < this.head) {
      this.evicted = (this.tail + 1) * this.sliceSec - 1;
      this.uncount(this.tail);
      cut = Math.max(cut, this.evicted);
    }
    this.cutNow = now;
    this.cut = cut;
    return cut;
  }

  /** Stops counting the slices up to and including `last`. */
  private uncount(last: number): void {
    if (last - this.tail >= this.ring) {
      // A jump of more than the ring (an idle node, a clock step): one pass over the ring.
      for (let r = 0; r < this.ring; r++) {
        if (this.sliceOf[r]! >= this.tail && this.sliceOf[r]! <= last) this.live -= this.sliceCount[r]!;
      }
    } else {
      for (let b = this.tail; b <= last; b++) {
        const r = b % this.ring;
        if (this.sliceOf[r] === b) this.live -= this.sliceCount[r]!;
      }
    }
    this.tail = last + 1;
  }

  private count(atSec: number, delta: number): void {
    const b = Math.floor(atSec / this.sliceSec);
    if (b < this.tail) return; // already past the cutoff: never counted
    if (b > this.head) this.head = b;
    const r = b % this.ring;
    if (this.sliceOf[r] !== b) {
      // The ring slot held a slice long gone; if it was still counted, it is not any more.
      const was = this.sliceOf[r]!;
      if (was >= this.tail) this.live -= this.sliceCount[r]!;
      this.sliceOf[r] = b;
      this.sliceCount[r] = 0;
    }
    this.sliceCount[r]! += delta;
    this.live += delta;
  }

  /**
   * Reserves the fingerprint for the request with this ticket (a positive int32) when it is new, and returns
   * -1; when it was already accepted within the window, returns the ticket of the request that took it (0:
   * loaded at start).
   */
  reserve(h1: number, h2: number, at: number, ticket: number, now = this.clock.now()): number {
    if (this.windowMs <= 0) return -1; // duplicate detection off (dedupWindowHours 0)
    const cut = this.cutoff(now);
    if (this.old) this.move(MOVE_PER_INSERT, cut);
    const cur = this.cur;
    const found = cur.find(h1, h2, cut);
    if (found >= 0) return cur.ticket(found);
    if (this.old) {
      const prior = this.old.find(h1, h2, cut);
      if (prior >= 0) return this.old.ticket(prior);
    }
    const atSec = Math.max(TOMBSTONE + 1, Math.ceil(at / 1000));
    cur.put(cur.slotFor(h1, cut), h1, h2, atSec, ticket);
    this.count(atSec, 1);
    this.insertsSinceCompact++;
    if (!this.old && cur.used > PREPARE_AT * cur.capacity) this.grow();
    return -1;
  }

  /** Undoes a reservation whose write failed, so the client's retry is accepted. */
  release(h1: number, h2: number): void {
    for (const t of this.old ? [this.cur, this.old] : [this.cur]) {
      const slot = t.find(h1, h2, TOMBSTONE);
      if (slot < 0) continue;
      this.count(t.at(slot), -1);
      t.bury(slot);
      return;
    }
  }

  /** Adds an id logged before (in a segment or an id file found at start); `now` is the start's time. */
  load(h1: number, h2: number, at: number, now = this.clock.now()): void {
    if (Math.ceil(at / 1000) > this.cutoff(now)) this.reserve(h1, h2, at, 0, now);
  }

  /**
   * Makes room for about n ids at once (before loading them at start), so loading moves nothing. Resolves
   * once its pages are faulted in, in order on the prefault thread: measured faster than letting the
   * loading inserts fault them in at random, alone or alongside (5 M ids: 1.5 s against 2.4 s).
   */
  async presize(n: number): Promise<void> {
    const want = Math.min(MAX_CAPACITY, Math.ceil(3 * Math.min(n, this.maxIds)));
    if (this.old || want <= this.cur.capacity || this.cur.used > 0) return;
    this.cur = new Table(want);
    this.next = undefined;
    this.spare = undefined;
    await this.prefault?.(this.cur.buffer);
  }

  /**
   * The maintenance tick (every second or so): advances the cutoff, carries on a compaction when no insert
   * does, and starts one when dead ids fill the table or it is far larger than what it holds.
   */
  maintain(now = this.clock.now()): void {
    const cut = this.cutoff(now);
    if (this.old) {
      this.move(MOVE_PER_TICK, cut);
      return;
    }
    const cur = this.cur;
    const oversized = cur.capacity > MIN_CAPACITY && cur.capacity > 12 * Math.max(this.live, MIN_CAPACITY / 3);
    if (cur.used > PREPARE_AT * cur.capacity) this.grow();
    else if (oversized) this.grow(true);
  }

  /**
   * Makes the next table ahead of need, then compacts into it once the current one is half full and the next
   * is ready (or at once, for a shrink, when it is ready). The next table has three slots per id it will
   * hold: the live ids, those that arrive before the switch, and those that arrive while the old one moves.
   */
  private grow(shrink = false): void {
    const cur = this.cur;
    if (!this.next) {
      // Inserts until the switch that will add live ids: in a growing window all of them, in a steady one
      // (as many expire as arrive) almost none. Measured since the last compaction.
      const growth = Math.min(1, Math.max(0, (this.live - this.liveAtCompact) / Math.max(1, this.insertsSinceCompact)));
      const arriving = shrink ? 0 : growth * Math.max(0, Math.floor(cur.capacity / 2) - cur.used);
      const capacity = Math.min(MAX_CAPACITY, Math.max(MIN_CAPACITY, Math.ceil(3 * (Math.min(this.live + arriving, this.maxIds) + cur.capacity / MOVE_PER_INSERT))));
      const spare = this.spare;
      this.spare = undefined;
      // A quarter of a core: the table is made at 35% of the current one's capacity and due at 50%, time
      // enough at any rate the request thread sustains, and the cores stay with the requests.
      if (spare && this.prefault && spare.capacity >= capacity && spare.capacity <= 1.25 * capacity) {
        const next = { table: spare, ready: false, recycled: true };
        this.next = next;
        void this.prefault(spare.buffer, PREFAULT_DUTY, true).then((cleared) => {
          if (cleared) (spare.used = 0), (next.ready = true), this.recycledTables++;
          else if (this.next === next) this.next = undefined; // not cleared: never used; the next grow makes one
        });
      } else {
        const next = { table: new Table(capacity), ready: !this.prefault, recycled: false };
        this.next = next;
        void this.prefault?.(next.table.buffer, PREFAULT_DUTY).then(() => (next.ready = true));
      }
    }
    const due = shrink || cur.used * 2 > cur.capacity;
    if ((due && this.next.ready) || cur.used > FORCE_AT * cur.capacity) this.compact();
  }

  /** Starts moving the live ids into the next table. */
  private compact(): void {
    const cur = this.cur;
    const made = this.next!;
    let next = made.table;
    // Made for fewer ids than there are now (the budget rose, or a shrink was overtaken by traffic): too small.
    // A recycled table not yet cleared still holds the ids it gave up: a fresh one instead.
    const need = 2 * (Math.min(this.live, this.maxIds) + cur.capacity / MOVE_PER_INSERT);
    if ((next.capacity < need && next.capacity < MAX_CAPACITY) || (made.recycled && !made.ready)) next = new Table(Math.min(MAX_CAPACITY, Math.max(next.capacity, Math.ceil(1.5 * need))));
    this.next = undefined;
    this.old = cur;
    this.cursor = 0;
    this.cur = next;
    this.liveAtCompact = this.live;
    this.insertsSinceCompact = 0;
  }

  /**
   * Moves the next slots of the old table into the current one: at least n, and past dead ones (a cheap
   * sequential read) up to 16n, stopping once n live ids have moved. The old table goes once all are moved.
   */
  private move(n: number, cut: number): void {
    const old = this.old!;
    const cur = this.cur;
    const end = Math.min(old.capacity, this.cursor + 16 * n);
    let i = this.cursor;
    for (let moved = 0; i < end && (moved < n || i < this.cursor + n); i++) {
      const t = old.at(i);
      if (t <= cut) continue; // empty, tombstone or dead: left behind
      const h1 = old.hi(i);
      cur.put(cur.slotFor(h1, cut), h1, old.lo(i), t, old.ticket(i));
      old.bury(i);
      moved++;
    }
    this.cursor = i;
    if (i === old.capacity) {
      this.old = undefined;
      // Kept when the next table will be about its size: at one size, as when the window is full. A table left
      // by growth is too small for the next, and one left by a shrink too large to keep: they go.
      // Small tables are freed and made again: cheap, and a spare would double their memory for nothing.
      if (this.prefault && old.capacity * SLOT_BYTES >= this.recycleFrom && old.capacity >= cur.capacity && old.capacity <= 1.25 * cur.capacity) this.spare = old;
    }
  }

  /** Ids held within the effective window (a slice partly past it counts whole). */
  get ids(): number {
    return this.live;
  }

  /** Bytes of the tables (the current one, and the one being moved out, the spare or the next one made ahead). */
  get bytes(): number {
    return SLOT_BYTES * (this.cur.capacity + (this.old?.capacity ?? 0) + (this.next?.table.capacity ?? 0) + (this.spare?.capacity ?? 0));
  }

  /** The window in force: the configured one, or shorter when the budget cut the oldest ids off. */
  effectiveWindowMs(now = this.clock.now()): number {
    // An id is live when its time, rounded up to a second, is after the cutoff: received after cutoff × 1000.
    return Math.min(this.windowMs, Math.max(0, now - this.cutoff(now) * 1000));
  }

  /** Tables used again (cleared spares) since start. */
  get recycled(): number {
    return this.recycledTables;
  }

  /** Whether a compaction is under way (two tables answer). */
  get compacting(): boolean {
    return this.old !== undefined;
  }
}

/**
 * The id files: one per shipped segment, named with its newest time so old ones are pruned unread. Each
 * holds 16 bytes per id: the fingerprint (two int32 LE) and the receipt time (float64 LE). Files of earlier
 * versions (`.jsonl`, one [tenant, messageId, at] per line) are still read.
 */
const IDS_RE = /^ids-(\d{12})-(\d+)\.(bin|jsonl)$/;
export const ID_ENTRY_BYTES = 16;

export async function writeIdsFile(dir: string, seq: number, entries: Buffer, newest: number): Promise<void> {
  if (entries.length === 0) return;
  await writeFileAtomic(path.join(dir, `ids-${String(seq).padStart(12, '0')}-${newest}.bin`), entries);
}

/** Visits the ids of the files newer than cutoff, and deletes the older ones. */
export async function readIdsFiles(dir: string, cutoff: number, visit: (hi: number, lo: number, at: number) => void): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const m = IDS_RE.exec(name);
    if (!m) continue;
    if (Number(m[2]) <= cutoff) {
      await fs.rm(path.join(dir, name), { force: true });
      continue;
    }
    const file = path.join(dir, name);
    if (m[3] === 'jsonl') {
      for (const line of (await fs.readFile(file, 'utf8')).split('\n')) {
        if (!line) continue;
        const [tn, id, at] = JSON.parse(line) as [string, string, number];
        const [hi, lo] = fingerprint(tn, id);
        visit(hi, lo, at);
      }
      continue;
    }
    const buf = await fs.readFile(file);
    const n = Math.floor(buf.length / ID_ENTRY_BYTES);
    if (os.endianness() === 'LE') {
      // Read through typed views (a restart loads up to a hundred million ids): the file is little-endian,
      // as is the machine. A Buffer not on an 8-byte boundary is copied to one that is.
      const own = buf.byteOffset % 8 === 0 ? buf : Buffer.from(buf);
      const ints = new Int32Array(own.buffer, own.byteOffset, n * 4);
      const times = new Float64Array(own.buffer, own.byteOffset, n * 2);
      for (let k = 0; k < n; k++) visit(ints[4 * k]!, ints[4 * k + 1]!, times[2 * k + 1]!);
    } else {
      for (let p = 0; p < n * ID_ENTRY_BYTES; p += ID_ENTRY_BYTES) visit(buf.readInt32LE(p), buf.readInt32LE(p + 4), buf.readDoubleLE(p + 8));
    }
  }
}

/** About how many ids the id files newer than cutoff hold (from their sizes), to size the index before loading. */
export async function countIds(dir: string, cutoff: number): Promise<number> {
  let n = 0;
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const m = IDS_RE.exec(name);
    if (!m || Number(m[2]) <= cutoff) continue;
    const size = (await fs.stat(path.join(dir, name)).catch(() => undefined))?.size ?? 0;
    n += m[3] === 'bin' ? size / ID_ENTRY_BYTES : size / 40;
  }
  return Math.ceil(n);
}

export async function pruneIdsFiles(dir: string, cutoff: number): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const m = IDS_RE.exec(name);
    if (m && Number(m[2]) <= cutoff) await fs.rm(path.join(dir, name), { force: true });
  }
}
