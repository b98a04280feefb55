/**
 * Finding a person without reading the year: a small index per stored file of the kinds whose rows name
 * people (tracking files, identity links, quarantine), kept under `privacy/index/<key>.idx`. It holds the
 * sorted 64-bit fingerprints (lib/fingerprint.ts) of every subject id in the file, by type: `u` for an
 * account id, `d` for a device, anonymous or previous id. A deletion looks its subjects up in the indexes
 * and reads only the files that may hold them (a fingerprint shared by chance costs a read, never a row).
 *
 * Indexes are made by the erasure run for every file without a current one (the index names the ETag of
 * the file it was built from), so files written before this existed are indexed on the first run, and the
 * collector's hot path does none of this work. An erased file's index is rebuilt with it.
 *
 * Layout: 64 bytes of header (the magic `TLIDX001`, the entry count as uint64 LE, the file's ETag hashed to
 * 40 hex characters, padded), then the entries: (high uint32 LE, low uint32 LE), sorted unsigned.
 */
import { createHash } from 'node:crypto';
import { fingerprint, fingerprintInto } from '../lib/fingerprint.js';
import { keys } from '../lake/layout.js';
import type { ObjectInfo, ObjectStore } from '../storage/store.js';
import type { SubjectType } from './subjects.js';

const MAGIC = 'TLIDX001';
const HEAD = 64;

/** The fingerprint of a subject id within a tenant, as the indexes hold it. */
export function subjectPrint(tenant: string, type: SubjectType, id: string): bigint {
  const [hi, lo] = fingerprint(tenant, `${type === 'USER_ID' ? 'u' : 'd'}\0${id}`);
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

const etagDigest = (etag: string) => createHash('sha1').update(etag).digest('hex');

/** Collects a file's subject ids while it is read; `encode` gives the index's bytes. */
export class IndexBuilder {
  private prints = new BigUint64Array(1024);
  private n = 0;
  private readonly one = new Int32Array(2);

  add(tenant: string, type: SubjectType, id: string): void {
    if (id === '') return;
    fingerprintInto(tenant, `${type === 'USER_ID' ? 'u' : 'd'}\0${id}`, this.one, 0);
    if (this.n === this.prints.length) {
      const more = new BigUint64Array(this.prints.length * 2);
      more.set(this.prints);
      this.prints = more;
    }
    this.prints[this.n++] = (BigInt(this.one[0]! >>> 0) << 32n) | BigInt(this.one[1]! >>> 0);
  }

  encode(etag: string): Buffer {
    const sorted = this.prints.subarray(0, this.n).sort();
    let unique = 0;
    for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[unique++] = sorted[i]!;
    const out = Buffer.alloc(HEAD + unique * 8);
    out.write(MAGIC, 0, 'latin1');
    out.writeBigUInt64LE(BigInt(unique), 8);
    out.write(etagDigest(etag), 16, 'latin1');
    for (let i = 0; i < unique; i++) out.writeBigUInt64LE(sorted[i]!, HEAD + i * 8);
    return out;
  }
}

/** A stored index, read: whether it describes this version of its file, and lookups. */
export class SubjectIndex {
  private constructor(private readonly etag: string, private readonly prints: BigUint64Array) {}

  static parse(buf: Buffer): SubjectIndex | undefined {
    if (buf.length < HEAD || buf.toString('latin1', 0, 8) !== MAGIC) return undefined;
    const count = Number(buf.readBigUInt64LE(8));
    if (buf.length !== HEAD + count * 8) return undefined;
    // Copied into an aligned array of its own (the entries are little-endian, as this machine is).
    const prints = new BigUint64Array(buf.buffer.slice(buf.byteOffset + HEAD, buf.byteOffset + HEAD + count * 8));
    return new SubjectIndex(buf.toString('latin1', 16, 56), prints);
  }

  describes(etag: string): boolean {
    return this.etag === etagDigest(etag);
  }

  has(print: bigint): boolean {
    const a = this.prints;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = a[mid]!;
      if (v === print) return true;
      if (v < print) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  hasAny(prints: Iterable<bigint>): boolean {
    for (const p of prints) if (this.has(p)) return true;
    return false;
  }
}

/** The current index of each file that has one (others are missing from the map). */
export async function readIndexes(store: ObjectStore, files: readonly ObjectInfo[]): Promise<Map<string, SubjectIndex>> {
  const out = new Map<string, SubjectIndex>();
  const wanted = new Map(files.map((f) => [keys.subjectIndex(f.key), f]));
  // One listing of the index tree per kind instead of a request per file.
  const prefixes = new Set(files.map((f) => keys.subjectIndex(f.key.slice(0, f.key.indexOf('/') + 1))));
  const listed = (await Promise.all([...prefixes].map((p) => store.list(p.slice(0, -'.idx'.length))))).flat();
  const queue = listed.filter((o) => wanted.has(o.key));
  const worker = async () => {
    for (let o = queue.shift(); o; o = queue.shift()) {
      const body = await store.get(o.key);
      const idx = body && SubjectIndex.parse(body);
      const file = wanted.get(o.key)!;
      if (idx && idx.describes(file.etag)) out.set(file.key, idx);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return out;
}
