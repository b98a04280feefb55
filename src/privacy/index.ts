/**
 * Finding a person without reading the year: a small index per stored file of the kinds whose rows name
 * people (tracking files, identity links, quarantine). It holds the sorted 32-bit fingerprints
 * (lib/fingerprint.ts, its high word) of every subject id in the file, by type: `u` for an account id, `d`
 * for a device, anonymous or previous id. A deletion looks its subjects up and reads only the files that may
 * hold them. A fingerprint shared by chance costs a read, never a row: with 6 400 ids in a file (bench:erase's
 * files), a lookup of 6 000 subjects reads a file that holds none of them about once in 110 files.
 *
 * The indexes of a month's files are kept together, in `privacy/packs/<kind>/<yyyy>/<mm>.pack`, so finding a
 * year's files takes a dozen reads per kind instead of one per file. Each file's index names the ETag of the
 * file it was built from. The erasure run indexes every file without a current index (so files written
 * before this existed are indexed by the first run, and the collector's hot path does none of this work),
 * and writes again each pack that does not match its month's files (a new, changed or removed file).
 *
 * A pack: `TLPACK02`, the file count (uint32 LE), then per file: its key's length (uint16 LE) and key, zero
 * to three zero bytes (so the entries start at a multiple of 4), its ETag hashed to 40 hex characters, the
 * entry count (uint32 LE) and the entries (uint32 LE, sorted).
 */
import { createHash } from 'node:crypto';
import { fingerprintInto } from '../lib/fingerprint.js';
import { parallel } from '../lib/parallel.js';
import type { ObjectInfo, ObjectStore } from '../storage/store.js';
import type { SubjectType } from './subjects.js';

const PACK = 'TLPACK02';
const DIGEST = 40;

const one = new Int32Array(2);

/** Fingerprints to look up, sorted as hasAny wants them. */
export const sortedPrints = (prints: readonly number[]) => Uint32Array.from(prints).sort();

/** The fingerprint of a subject id within a tenant, as the indexes hold it. */
export function subjectPrint(tenant: string, type: SubjectType, id: string): number {
  fingerprintInto(tenant, `${type === 'USER_ID' ? 'u' : 'd'}\0${id}`, one, 0);
  return one[0]! >>> 0;
}

const etagDigest = (etag: string) => createHash('sha1').update(etag).digest('hex');

/** An index in memory: the digest of the ETag it was built from, and its sorted fingerprints. */
export class SubjectIndex {
  constructor(readonly digest: string, readonly prints: Uint32Array) {}

  describes(etag: string): boolean {
    return this.digest === etagDigest(etag);
  }

  /** Whether any of the prints (sorted ascending, see sortedPrints) is in the file: one merge of two sorted lists. */
  hasAny(prints: Uint32Array): boolean {
    const a = this.prints;
    let i = 0;
    let j = 0;
    while (i < a.length && j < prints.length) {
      const x = a[i]!;
      const y = prints[j]!;
      if (x === y) return true;
      if (x < y) i++;
      else j++;
    }
    return false;
  }
}

/**
 * count uint32 LE entries at offset (this machine is little-endian too): a view of the pack's bytes where
 * they are aligned (they are written so), else a copy.
 */
function entries(buf: Buffer, offset: number, count: number): Uint32Array {
  const at = buf.byteOffset + offset;
  return at % 4 === 0 ? new Uint32Array(buf.buffer, at, count) : new Uint32Array(buf.buffer.slice(at, at + count * 4));
}

/** Collects a file's subject ids while it is read; `build` gives its index. */
export class IndexBuilder {
  private prints = new Uint32Array(1024);
  private n = 0;

  add(tenant: string, type: SubjectType, id: string): void {
    if (id === '') return;
    if (this.n === this.prints.length) {
      const more = new Uint32Array(this.prints.length * 2);
      more.set(this.prints);
      this.prints = more;
    }
    this.prints[this.n++] = subjectPrint(tenant, type, id);
  }

  build(etag: string): SubjectIndex {
    const sorted = this.prints.subarray(0, this.n).sort();
    let unique = 0;
    for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[unique++] = sorted[i]!;
    return new SubjectIndex(etagDigest(etag), sorted.slice(0, unique));
  }
}

/** The pack a file's index belongs to: its kind and month (`tracks/2026/11/22/x.csv` → `privacy/packs/tracks/2026/11.pack`). */
export function packKey(fileKey: string): string | undefined {
  const m = /^([a-z_]+)\/(\d{4})\/(\d{2})\/\d{2}\//.exec(fileKey);
  return m ? `privacy/packs/${m[1]}/${m[2]}/${m[3]}.pack` : undefined;
}

export function encodePack(files: ReadonlyArray<{ key: string; index: SubjectIndex }>): Buffer {
  const parts: Buffer[] = [Buffer.from(PACK, 'latin1'), u32(files.length)];
  let at = 12;
  for (const { key, index } of files) {
    const k = Buffer.from(key, 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16LE(k.length);
    // Zeros after the key, so the entries start at a multiple of 4 and are read in place.
    const pad = Buffer.alloc((4 - ((at + 2 + k.length + DIGEST + 4) % 4)) % 4);
    parts.push(len, k, pad, Buffer.from(index.digest, 'latin1'), u32(index.prints.length), Buffer.from(index.prints.buffer, index.prints.byteOffset, index.prints.byteLength));
    at += 2 + k.length + pad.length + DIGEST + 4 + index.prints.byteLength;
  }
  return Buffer.concat(parts);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** A pack's indexes by file key; undefined for bytes that are not a pack (it is then written again). */
export function parsePack(buf: Buffer): Map<string, SubjectIndex> | undefined {
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== PACK) return undefined;
  const out = new Map<string, SubjectIndex>();
  let at = 12;
  try {
    for (let i = buf.readUInt32LE(8); i > 0; i--) {
      const len = buf.readUInt16LE(at);
      const key = buf.toString('utf8', at + 2, at + 2 + len);
      at += 2 + len;
      at += (4 - ((at + DIGEST + 4) % 4)) % 4;
      const digest = buf.toString('latin1', at, at + DIGEST);
      const count = buf.readUInt32LE(at + DIGEST);
      at += DIGEST + 4;
      if (at + count * 4 > buf.length) return undefined;
      out.set(key, new SubjectIndex(digest, entries(buf, at, count)));
      at += count * 4;
    }
  } catch {
    return undefined; // cut short
  }
  return at === buf.length ? out : undefined;
}

export interface IndexState {
  /** The current index of each file that has one. */
  indexes: Map<string, SubjectIndex>;
  /** Packs that do not match their month's files. */
  stalePacks: Set<string>;
}

/** The current index of each file, from its month's pack; a file without one is missing from the map. */
export async function readIndexes(store: ObjectStore, files: readonly ObjectInfo[]): Promise<IndexState> {
  const indexes = new Map<string, SubjectIndex>();
  const byPack = new Map<string, ObjectInfo[]>();
  for (const f of files) {
    const p = packKey(f.key);
    if (p === undefined) continue;
    let list = byPack.get(p);
    if (!list) byPack.set(p, (list = []));
    list.push(f);
  }
  const listed = new Set((await store.list('privacy/packs/')).map((o) => o.key));
  const stalePacks = new Set<string>();
  await parallel([...byPack], async ([p, mine]) => {
    const body = listed.has(p) ? await store.get(p) : undefined;
    const pack = body && parsePack(body);
    if (!pack || pack.size !== mine.length) stalePacks.add(p);
    for (const f of mine) {
      const idx = pack?.get(f.key);
      if (idx && idx.describes(f.etag)) indexes.set(f.key, idx);
      else stalePacks.add(p);
    }
  });
  return { indexes, stalePacks };
}

/** Writes again every stale pack whose files all have a current index now. */
export async function writePacks(store: ObjectStore, files: readonly ObjectInfo[], state: IndexState): Promise<number> {
  let written = 0;
  for (const p of [...state.stalePacks].sort()) {
    const mine = files.filter((f) => packKey(f.key) === p).sort((a, b) => (a.key < b.key ? -1 : 1));
    if (!mine.every((f) => state.indexes.has(f.key))) continue;
    await store.put(p, encodePack(mine.map((f) => ({ key: f.key, index: state.indexes.get(f.key)! }))));
    state.stalePacks.delete(p);
    written++;
  }
  return written;
}
