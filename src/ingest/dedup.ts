/**
 * Duplicate detection: a messageId accepted for a tenant within the window (24 h) is acknowledged again but
 * not written again. The index lives in memory and is rebuilt at start from the log's pending segments and
 * the small id files written when a segment is shipped, so it holds across restarts.
 *
 * The index keeps a 64-bit fingerprint of (tenant, messageId) and its time in typed arrays (an open-addressing
 * table): 17 bytes a slot, 35-70 bytes an id, and nothing for the garbage collector to walk (bench:ingest
 * measured a Map of strings at a tenth of the collector's CPU, most of it in GC). Two ids share
 * a fingerprint with probability 2^-64 per pair: a hundred million ids in the window make a wrong "duplicate"
 * a one-in-100-billion event.
 *
 * Dedup is per collector node: behind a load balancer a retry that reaches another node is not caught (the
 * same as Segment's best-effort dedup window).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../lib/clock.js';
import { writeFileAtomic } from '../storage/local.js';

/** The dedup key of a message: its tenant and messageId. */
export const dedupKey = (tenant: string, id: string) => `${tenant}\u0000${id}`;

const EMPTY = 0;
const LIVE = 1;
const RELEASED = 2;
const MIN_CAPACITY = 1 << 12;

export class DedupIndex {
  private capacity = MIN_CAPACITY;
  private hi = new Int32Array(MIN_CAPACITY);
  private lo = new Int32Array(MIN_CAPACITY);
  private at = new Float64Array(MIN_CAPACITY);
  private state = new Uint8Array(MIN_CAPACITY);
  /** Slots not EMPTY (live, expired or released): what probing walks over. */
  private used = 0;
  // The fingerprint of the last key hashed (two 32-bit FNV-1a variants over tenant, NUL, id).
  private h1 = 0;
  private h2 = 0;

  constructor(private readonly windowMs: number, private readonly clock: Clock) {}

  private hash(tenant: string, id: string): void {
    let a = 0x811c9dc5;
    let b = 0x01000193 ^ 0x5bd1e995;
    for (let i = 0; i < tenant.length; i++) {
      const c = tenant.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
    }
    a = Math.imul(a, 0x01000193); // the NUL between tenant and id
    b = Math.imul(b, 0x5bd1e995) ^ (b >>> 15);
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
    }
    // Final avalanche, so the low bits that pick the slot depend on every character.
    a ^= a >>> 16;
    a = Math.imul(a, 0x85ebca6b);
    a ^= a >>> 13;
    b ^= b >>> 16;
    b = Math.imul(b, 0xc2b2ae35);
    b ^= b >>> 16;
    this.h1 = a;
    this.h2 = b;
  }

  /** A slot the current fingerprint may take, set by find. */
  private free = -1;

  /** The slot holding the current fingerprint live after cutoff, or -1 (then `free` is where it may go). */
  private find(cutoff: number): number {
    const mask = this.capacity - 1;
    this.free = -1;
    for (let i = this.h1 & mask; ; i = (i + 1) & mask) {
      const st = this.state[i]!;
      if (st === EMPTY) {
        if (this.free < 0) this.free = i;
        return -1;
      }
      const live = st === LIVE && this.at[i]! > cutoff;
      if (live && this.hi[i] === this.h1 && this.lo[i] === this.h2) return i;
      if (!live && this.free < 0) this.free = i;
    }
  }

  /** Reserves the id when it is new; false when it was already accepted within the window. */
  reserve(tenant: string, id: string, at: number): boolean {
    this.hash(tenant, id);
    if (this.find(this.clock.now() - this.windowMs) >= 0) return false;
    const free = this.free;
    if (this.state[free] === EMPTY) this.used++;
    this.hi[free] = this.h1;
    this.lo[free] = this.h2;
    this.at[free] = at;
    this.state[free] = LIVE;
    if (this.used * 2 > this.capacity) this.rebuild();
    return true;
  }

  /** Undoes a reservation whose write failed, so the client's retry is accepted. */
  release(tenant: string, id: string): void {
    this.hash(tenant, id);
    const slot = this.find(-Infinity);
    if (slot >= 0) this.state[slot] = RELEASED;
  }

  load(entries: Iterable<[string, string, number]>): void {
    const cutoff = this.clock.now() - this.windowMs;
    for (const [t, id, at] of entries) if (at > cutoff) this.reserve(t, id, at);
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
    const { hi, lo, at, state, capacity } = this;
    let live = 0;
    for (let i = 0; i < capacity; i++) if (state[i] === LIVE && at[i]! > cutoff) live++;
    let size = MIN_CAPACITY;
    while (size < live * 4) size *= 2;
    this.capacity = size;
    this.hi = new Int32Array(size);
    this.lo = new Int32Array(size);
    this.at = new Float64Array(size);
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

/** The id files: one per shipped segment, named with its newest time so old ones are pruned unread. */
const IDS_RE = /^ids-(\d{12})-(\d+)\.jsonl$/;

export async function writeIdsFile(dir: string, seq: number, entries: Array<[string, string, number]>): Promise<void> {
  if (entries.length === 0) return;
  let newest = 0;
  for (const e of entries) newest = Math.max(newest, e[2]);
  const name = `ids-${String(seq).padStart(12, '0')}-${newest}.jsonl`;
  await writeFileAtomic(path.join(dir, name), entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
}

export async function readIdsFiles(dir: string, cutoff: number): Promise<Array<[string, string, number]>> {
  const out: Array<[string, string, number]> = [];
  for (const name of await fs.readdir(dir)) {
    const m = IDS_RE.exec(name);
    if (!m) continue;
    if (Number(m[2]) <= cutoff) {
      await fs.rm(path.join(dir, name), { force: true });
      continue;
    }
    const text = await fs.readFile(path.join(dir, name), 'utf8');
    for (const line of text.split('\n')) if (line) out.push(JSON.parse(line) as [string, string, number]);
  }
  return out;
}

export async function pruneIdsFiles(dir: string, cutoff: number): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const m = IDS_RE.exec(name);
    if (m && Number(m[2]) <= cutoff) await fs.rm(path.join(dir, name), { force: true });
  }
}
