/**
 * Duplicate detection: a messageId accepted for a tenant within the window (24 h) is acknowledged again but
 * not written again. The index lives in memory and is rebuilt at start from the log's pending segments and
 * the small id files written when a segment is shipped, so it holds across restarts.
 *
 * The index keeps the 64-bit fingerprint of (tenant, messageId) (ingest/fingerprint.ts), its time and the
 * ticket of the request that logged it in typed arrays (an open-addressing table): 21 bytes a slot, and
 * nothing for the garbage collector to walk (bench:ingest measured a Map of strings at a tenth of the
 * collector's CPU, most of it in GC).
 *
 * Dedup is per collector node: behind a load balancer a retry that reaches another node is not caught (the
 * same as Segment's best-effort dedup window).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../lib/clock.js';
import { writeFileAtomic } from '../storage/local.js';
import { fingerprint } from './fingerprint.js';

const EMPTY = 0;
const LIVE = 1;
const RELEASED = 2;
const MIN_CAPACITY = 1 << 12;

export class DedupIndex {
  private capacity = MIN_CAPACITY;
  private hi = new Int32Array(MIN_CAPACITY);
  private lo = new Int32Array(MIN_CAPACITY);
  private at = new Float64Array(MIN_CAPACITY);
  private ticket = new Int32Array(MIN_CAPACITY);
  private state = new Uint8Array(MIN_CAPACITY);
  /** Slots not EMPTY (live, expired or released): what probing walks over. */
  private used = 0;

  constructor(private readonly windowMs: number, private readonly clock: Clock) {}

  /** A slot the fingerprint may take, set by find. */
  private free = -1;

  /** The slot holding the fingerprint live after cutoff, or -1 (then `free` is where it may go). */
  private find(h1: number, h2: number, cutoff: number): number {
    const mask = this.capacity - 1;
    this.free = -1;
    for (let i = h1 & mask; ; i = (i + 1) & mask) {
      const st = this.state[i]!;
      if (st === EMPTY) {
        if (this.free < 0) this.free = i;
        return -1;
      }
      const live = st === LIVE && this.at[i]! > cutoff;
      if (live && this.hi[i] === h1 && this.lo[i] === h2) return i;
      if (!live && this.free < 0) this.free = i;
    }
  }

  /**
   * Reserves the fingerprint for the request with this ticket (a positive int32) when it is new, and returns
   * -1; when it was already accepted within the window, returns the ticket of the request that took it (0:
   * loaded at start).
   */
  reserve(h1: number, h2: number, at: number, ticket: number, now = this.clock.now()): number {
    const found = this.find(h1, h2, now - this.windowMs);
    if (found >= 0) return this.ticket[found]!;
    const free = this.free;
    if (this.state[free] === EMPTY) this.used++;
    this.hi[free] = h1;
    this.lo[free] = h2;
    this.at[free] = at;
    this.ticket[free] = ticket;
    this.state[free] = LIVE;
    if (this.used * 2 > this.capacity) this.rebuild();
    return -1;
  }

  /** Undoes a reservation whose write failed, so the client's retry is accepted. */
  release(h1: number, h2: number): void {
    const slot = this.find(h1, h2, -Infinity);
    if (slot >= 0) this.state[slot] = RELEASED;
  }

  /** Adds an id logged before (in a segment or an id file found at start). */
  load(h1: number, h2: number, at: number): void {
    const now = this.clock.now();
    if (at > now - this.windowMs) this.reserve(h1, h2, at, 0, now);
  }

  /** Forgets ids older than the window when they take up a quarter of the table. */
  prune(): void {
    const cutoff = this.clock.now() - this.windowMs;
    let dead = 0;
    for (let i = 0; i < this.capacity; i++) if (this.state[i] !== EMPTY && (this.state[i] !== LIVE || this.at[i]! <= cutoff)) dead++;
    if (dead * 4 > this.used) this.rebuild();
  }

  /** A table sized for the live ids (at most a quarter full), without the expired and released ones. */
  private rebuild(): void {
    const cutoff = this.clock.now() - this.windowMs;
    const { hi, lo, at, ticket, state, capacity } = this;
    let live = 0;
    for (let i = 0; i < capacity; i++) if (state[i] === LIVE && at[i]! > cutoff) live++;
    let size = MIN_CAPACITY;
    while (size < live * 4) size *= 2;
    this.capacity = size;
    this.hi = new Int32Array(size);
    this.lo = new Int32Array(size);
    this.at = new Float64Array(size);
    this.ticket = new Int32Array(size);
    this.state = new Uint8Array(size);
    this.used = live;
    const mask = size - 1;
    for (let i = 0; i < capacity; i++) {
      if (state[i] !== LIVE || at[i]! <= cutoff) continue;
      let j = hi[i]! & mask;
      while (this.state[j] !== EMPTY) j = (j + 1) & mask;
      this.hi[j] = hi[i]!;
      this.lo[j] = lo[i]!;
      this.at[j] = at[i]!;
      this.ticket[j] = ticket[i]!;
      this.state[j] = LIVE;
    }
  }

  /** Ids held (live within the window or not yet pruned). */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.capacity; i++) if (this.state[i] === LIVE) n++;
    return n;
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
    for (let p = 0; p + ID_ENTRY_BYTES <= buf.length; p += ID_ENTRY_BYTES) visit(buf.readInt32LE(p), buf.readInt32LE(p + 4), buf.readDoubleLE(p + 8));
  }
}

export async function pruneIdsFiles(dir: string, cutoff: number): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const m = IDS_RE.exec(name);
    if (m && Number(m[2]) <= cutoff) await fs.rm(path.join(dir, name), { force: true });
  }
}
