/**
 * The write-ahead log: an event is acknowledged only once its record is on local disk and fsynced.
 *
 * Group commit: requests queue their frames; everything queued goes out as one write, durable when it
 * returns (see pump), and settles every request in it. Under load many requests share one write, so
 * durability costs a little latency instead of most of the throughput.
 *
 * The log is a series of numbered segment files. The active one takes appends; `seal()` closes it and opens
 * the next. Sealed segments are shipped to storage and then released. Destinations (forward/) read the same
 * segments through holds: a shipped segment a hold still needs is renamed `shipped-<n>.log` (so a restart
 * does not ship it again) and removed once every hold has passed it.
 *
 * One append (one request's records) is one frame: `<crc32 hex> <payload bytes>\n<payload>\n`. The payload
 * is opaque here (ingest/records.ts lays it out). A tail torn by a crash (a frame that was never
 * acknowledged) fails its length or CRC and is cut off at recovery. (Logs of tracklake 0.1's first cut, one
 * line `<crc32 hex> <json array>\n` per append, are still read: the JSON is the payload.)
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import { ConfigError } from '../lib/errors.js';
import type { ReusedBuffer } from '../lib/reused-buffer.js';
import { lockFolder, makeDir, syncDir, writeFileAtomic } from '../storage/local.js';

export interface WalOptions {
  /** Called when the active segment passes this size, so the owner can seal and ship early. */
  maxSegmentBytes: number;
  onSegmentFull?: () => void;
  nodeId?: string;
  /** The sequence a new log (no meta.json yet) starts at: firstSequence of the clock; 1 when unset. */
  firstSeq?: number;
  /** Called at open with each payload of the segments found (recovered from a previous run), in order. */
  onRecovered?: (payload: Buffer) => void;
  /** Called after each durable write with how long the disk took (ms): a slow disk shows in /metrics. */
  onWrite?: (ms: number) => void;
}

interface Pending {
  frame: Buffer;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Log writes in flight at once (see pump). */
const PIPELINE = 2;
// Writes that are durable on return where the platform has O_DSYNC: one system call per commit, not two.
const DSYNC = fsConstants.O_DSYNC;
const SEGMENT_FLAGS = fsConstants.O_RDWR | fsConstants.O_CREAT | (DSYNC ?? 0);
const SEG_RE = /^seg-(\d{12})\.log$/;
const SHIPPED_RE = /^shipped-(\d{12})\.log$/;
const segName = (seq: number) => `seg-${String(seq).padStart(12, '0')}.log`;
/**
 * Where a new log's sequence starts: a hundred numbers per second of the clock. A node id can outlive its
 * log (set in the configuration, the log folder lost, or on a disk that did not follow the node): started
 * at 1 again, the new log's objects took the names of the earlier one's of the same day, overwriting them,
 * and its Redis claims of those names were taken for its own. This starts past every number an earlier
 * log used unless it opened over a hundred segments a second; 12 digits last until the year 2286.
 */
export const firstSequence = (now: number) => Math.floor(now / 1000) * 100;

/**
 * A segment's name beyond this node, `<node>-<sequence>`: what the objects it ships, a destination's backlog
 * of it and its dead letters are named by, so nodes on one bucket never overwrite each other's.
 */
export const segmentName = (nodeId: string, seq: number) => `${nodeId}-${String(seq).padStart(12, '0')}`;
const shippedName = (seq: number) => `shipped-${String(seq).padStart(12, '0')}.log`;

/** A reader of the log beside the shipper (a destination): which shipped segments it still needs. */
export interface LogHold {
  needs(seq: number): boolean;
}

/** Bytes of one read of readWhole: a read holds one of libuv's threads, which the log's writes wait for. */
const WHOLE_READ_BYTES = 8 * 1024 * 1024;

/** A whole (sealed) file, read into `into`: a view of it, good until its next read. */
async function readWhole(file: string, into: ReusedBuffer): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const buf = into.take(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await fh.read(buf, at, Math.min(WHOLE_READ_BYTES, size - at), at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return buf.subarray(0, at);
  } finally {
    await fh.close();
  }
}

/**
 * Whole frames of a segment's file (the first of `paths` that exists) from byte `from`, about maxBytes of
 * them, up to `end`, which must be durable; undefined when the file is gone. Any thread may call it. Read
 * into `into` when given (the frames are then views of it, good until its next read), else a new buffer.
 */
export async function readSegmentFrames(paths: readonly string[], from: number, end: number, maxBytes: number, into?: ReusedBuffer): Promise<FrameRead['frames'] | undefined> {
  let fh: fs.FileHandle | undefined;
  for (const p of paths) {
    fh = await fs.open(p, 'r').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (fh) break;
  }
  if (!fh) return undefined;
  try {
    // A frame is at most a request body and its header: a slice that holds none is read again, larger.
    for (let size = Math.min(maxBytes, end - from); ; size = Math.min(size * 2, end - from)) {
      const buf = into ? into.take(size) : Buffer.allocUnsafe(size);
      const { bytesRead } = await fh.read(buf, 0, size, from);
      const payloads: Buffer[] = [];
      const frames: FrameRead['frames'] = [];
      let pos = 0;
      while (pos < bytesRead) {
        // No CRC: every frame under the durable end was checked when it was written or recovered.
        const r = decodeFrames(buf.subarray(0, bytesRead), pos, pos + 1, payloads, false);
        if (payloads.length === frames.length) break;
        pos = r.pos;
        frames.push({ payload: payloads.at(-1)!, end: from + pos });
      }
      if (frames.length > 0 || size >= end - from) return frames;
    }
  } finally {
    await fh.close();
  }
}

/** Bytes of a segment decoded at a time: between two yields to the event loop (about a millisecond of work); a destination thread's read. */
export const READ_SLICE = 4 * 1024 * 1024;

/** Frames read from a segment: each payload with the offset just after its frame. */
export interface FrameRead {
  frames: Array<{ payload: Buffer; end: number }>;
  /** Where the next read starts. */
  next: number;
  /** The segment is sealed and `next` is its end: nothing more will come. */
  done: boolean;
}
const crcHex = (data: Buffer | string) => (crc32(data) >>> 0).toString(16).padStart(8, '0');

/**
 * One frame (header, payload, line end) in memory that can be handed between threads without a copy
 * (ingest/preparer.ts): a buffer of its own, or room `alloc` lends (a worker's ring, ingest/frame-arena.ts).
 * The payload may come in pieces (RecordWriter.parts), joined here.
 */
export function encodeFrame(payload: Uint8Array | readonly Uint8Array[], alloc: (size: number) => Buffer = Buffer.allocUnsafeSlow): Buffer {
  const parts = payload instanceof Uint8Array ? [payload] : payload;
  let size = 0;
  for (const p of parts) size += p.length;
  const header = `00000000 ${size}\n`;
  const frame = alloc(header.length + size + 1);
  frame.write(header, 0, 'latin1');
  let at = header.length;
  for (const p of parts) {
    frame.set(p, at);
    at += p.length;
  }
  frame[frame.length - 1] = 0x0a;
  frame.write(crcHex(frame.subarray(header.length, header.length + size)), 0, 'latin1');
  return frame;
}

/** The payload of a frame made by encodeFrame. */
export function framePayload(frame: Buffer): Buffer {
  return frame.subarray(frame.indexOf(0x0a) + 1, frame.length - 1);
}

/** Parses a segment's bytes; returns the payloads and the byte length of the valid prefix. */
export function decodeSegment(buf: Buffer): { payloads: Buffer[]; validBytes: number } {
  const payloads: Buffer[] = [];
  return { payloads, validBytes: decodeFrames(buf, 0, Infinity, payloads).pos };
}

/**
 * Decodes frames from pos into payloads until the end of buf, a torn or corrupt frame (where the valid
 * prefix ends), or the first frame starting at or past `until` (then `more` is true).
 */
function decodeFrames(buf: Buffer, pos: number, until: number, payloads: Buffer[], verify = true): { pos: number; more: boolean } {
  while (pos < buf.length) {
    if (pos >= until) return { pos, more: true };
    const start = pos;
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0 || nl - pos < 10 || buf[pos + 8] !== 0x20) break; // torn tail: never acknowledged
    const crc = buf.toString('latin1', pos, pos + 8);
    let payload: Buffer;
    if (buf[pos + 9] === 0x5b /* [ */) {
      payload = buf.subarray(pos + 9, nl); // a 0.1 line: the JSON array is the payload
      pos = nl + 1;
    } else {
      const len = Number(buf.toString('latin1', pos + 9, nl));
      const end = nl + 1 + len + 1;
      if (!Number.isSafeInteger(len) || end > buf.length || buf[end - 1] !== 0x0a) break;
      payload = buf.subarray(nl + 1, end - 1);
      pos = end;
    }
    if (verify && crcHex(payload) !== crc) return { pos: start, more: false };
    payloads.push(payload);
  }
  return { pos, more: false };
}

export class WriteAheadLog {
  private queue: Pending[] = [];
  /** Writes issued and not yet settled. */
  private readonly inflight = new Set<Promise<void>>();
  /** The in-order chain every write settles on. */
  private settled: Promise<void> = Promise.resolve();
  /** Where the next write goes: the durable end plus the writes in flight. */
  private writeEnd = 0;
  /** Set when a write failed: the offset from which the segment is cut once the writes in flight are done. */
  private failedFrom: number | undefined;
  private repairing = false;
  private rotating = false;
  private fh!: fs.FileHandle;
  private activeSeq = 0;
  private activeBytes = 0;
  private sealedBytes = new Map<number, number>();
  /** Shipped segments kept for a hold, with their sizes. */
  private shippedBytes = new Map<number, number>();
  private readonly holds = new Set<LogHold>();
  private rotateWaiters: Array<() => void> = [];
  private broken: Error | undefined;
  private fullSignalled = false;
  private pumpQueued = false;
  readonly nodeId: string;
  /**
   * This log folder's own random id, made with it and kept in meta.json: tells this node's log from another
   * collector's run with the same node id (ingest/node-claim.ts).
   */
  readonly logId: string;

  private constructor(readonly dir: string, private readonly opts: WalOptions, nodeId: string, logId: string) {
    this.nodeId = nodeId;
    this.logId = logId;
  }

  /** Opens (and recovers) the log in dir: every segment found is sealed, a torn tail is cut, a new segment starts. */
  static async open(dir: string, opts: WalOptions): Promise<WriteAheadLog> {
    await makeDir(dir).catch((e: NodeJS.ErrnoException) => {
      throw new ConfigError('walDir', `cannot make the log folder ${dir} (${e.code ?? e.message})`);
    });
    // One process per log: a second collector on the same folder would interleave segments.
    await lockFolder(dir, 'walDir', (pid) => `the log in ${dir} is in use by process ${pid}; give each collector its own --wal-dir`);
    const meta = await readMeta(dir);
    const nodeId = opts.nodeId ?? meta?.nodeId ?? randomBytes(4).toString('hex');
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(nodeId)) throw new Error(`invalid node id ${JSON.stringify(nodeId)}`);
    const wal = new WriteAheadLog(dir, opts, nodeId, meta?.logId ?? randomBytes(8).toString('hex'));
    let next = meta?.nextSeq ?? opts.firstSeq ?? 1;
    // Shipped segments kept for destinations: their ids are in the ids files already, so nothing is recovered.
    for (const name of await fs.readdir(dir)) {
      const m = SHIPPED_RE.exec(name);
      if (!m) continue;
      wal.shippedBytes.set(Number(m[1]), (await fs.stat(path.join(dir, name))).size);
      next = Math.max(next, Number(m[1]) + 1);
    }
    for (const seq of await wal.segmentsOnDisk()) {
      const file = path.join(dir, segName(seq));
      const buf = await fs.readFile(file);
      const { payloads, validBytes } = decodeSegment(buf);
      if (opts.onRecovered) for (const p of payloads) opts.onRecovered(p);
      if (validBytes < buf.length) await fs.truncate(file, validBytes);
      if (validBytes === 0) await fs.rm(file);
      else wal.sealedBytes.set(seq, validBytes);
      next = Math.max(next, seq + 1);
    }
    // A segment's objects are named by the node (segmentName): shipped again under another name, what a crash
    // left half shipped would be in the lake twice, and its ids claimed across nodes taken for another's.
    const held = wal.sealedBytes.size + wal.shippedBytes.size;
    if (meta?.nodeId !== undefined && meta.nodeId !== nodeId && held > 0) {
      throw new ConfigError('nodeId', `the log in ${dir} holds ${held} segment(s) written as node "${meta.nodeId}", not yet shipped or forwarded: start it as "${meta.nodeId}" until they are (or give node "${nodeId}" a --wal-dir of its own)`);
    }
    await wal.openSegment(next);
    return wal;
  }

  private async segmentsOnDisk(): Promise<number[]> {
    const names = await fs.readdir(this.dir);
    return names.flatMap((n) => (SEG_RE.test(n) ? [Number(SEG_RE.exec(n)![1])] : [])).sort((a, b) => a - b);
  }

  private async openSegment(seq: number): Promise<void> {
    // Persist the sequence before using it: object keys derive from it and must never repeat.
    await writeMeta(this.dir, { nodeId: this.nodeId, nextSeq: seq + 1, logId: this.logId });
    this.fh = await fs.open(path.join(this.dir, segName(seq)), SEGMENT_FLAGS);
    await syncDir(this.dir);
    this.activeSeq = seq;
    this.activeBytes = 0;
    this.writeEnd = 0;
    this.fullSignalled = false;
  }

  /** False once a write failed and could not be undone: the log refuses appends until restarted. */
  get writable(): boolean {
    return this.broken === undefined;
  }

  /** Bytes held locally that are not yet released: the buffer that --max-buffer-bytes bounds. */
  get bufferedBytes(): number {
    let n = this.activeBytes;
    for (const b of this.sealedBytes.values()) n += b;
    return n;
  }

  /** Sealed segments waiting to be shipped, oldest first. */
  sealed(): number[] {
    return [...this.sealedBytes.keys()].sort((a, b) => a - b);
  }

  /** Every sealed segment on disk, shipped or not, oldest first: what holds read. */
  segments(): number[] {
    return [...this.sealedBytes.keys(), ...this.shippedBytes.keys()].sort((a, b) => a - b);
  }

  /** A segment's size in bytes: the active one as far as it is durable; 0 when it is gone. */
  segmentBytes(seq: number): number {
    if (seq === this.activeSeq) return this.activeBytes;
    return this.sealedBytes.get(seq) ?? this.shippedBytes.get(seq) ?? 0;
  }

  /** The sequence number the next sealed segment will have at the earliest: where a new hold starts. */
  get head(): number {
    return this.activeSeq;
  }

  /** Keeps the shipped segments a hold needs until it has passed them (see collect). */
  addHold(hold: LogHold): void {
    this.holds.add(hold);
  }

  private held(seq: number): boolean {
    for (const h of this.holds) if (h.needs(seq)) return true;
    return false;
  }

  /**
   * Durable frames of a segment from byte `from` on, at most about maxBytes of them: a sealed segment to
   * its end, the active one as far as it is acknowledged (so destinations forward within a second, not at
   * the next seal). A frame not yet whole is left for the next read.
   */
  async readFrom(seq: number, from: number, maxBytes = READ_SLICE): Promise<FrameRead> {
    const active = seq === this.activeSeq;
    const end = this.segmentBytes(seq);
    // A sealed segment read to its end, or one that is gone (or never held anything), has no more to give.
    if (from >= end) return { frames: [], next: from, done: !active };
    const frames = await readSegmentFrames(this.span(seq).paths, from, end, maxBytes);
    if (frames === undefined) return { frames: [], next: from, done: true }; // released meanwhile: nobody holds it
    const next = frames.at(-1)?.end ?? from;
    return { frames, next, done: !active && next >= end };
  }

  /**
   * Where a reader on another thread finds a segment's durable frames (readSegmentFrames): its file, under
   * either name (it is renamed when it ships), how far its acknowledged frames go, and whether it is sealed.
   */
  span(seq: number): { paths: string[]; end: number; sealed: boolean } {
    const names = this.shippedBytes.has(seq) ? [shippedName(seq), segName(seq)] : [segName(seq), shippedName(seq)];
    return { paths: names.map((n) => path.join(this.dir, n)), end: this.segmentBytes(seq), sealed: seq !== this.activeSeq };
  }

  /** Removes the shipped segments no hold needs any more (holds call this as they move on). */
  async collect(): Promise<void> {
    for (const seq of [...this.shippedBytes.keys()].sort((a, b) => a - b)) {
      if (this.held(seq)) continue;
      await fs.rm(path.join(this.dir, shippedName(seq)), { force: true });
      this.shippedBytes.delete(seq);
    }
  }

  /** Appends one request's frame (see encodeFrame); resolves once it is durable. */
  append(frame: Buffer): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      // Appends made in the same turn (a worker's answer settles a group of requests at once) go out as
      // one write: the pump runs once they are all queued.
      if (!this.pumpQueued) {
        this.pumpQueued = true;
        queueMicrotask(() => {
          this.pumpQueued = false;
          this.pump();
        });
      }
    });
  }

  /** Closes the active segment (when it holds anything) and starts the next one. */
  seal(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.rotateWaiters.push(resolve);
      this.pump();
    });
  }

  /*
   * Group commit, pipelined: everything queued goes out as one write, and while up to PIPELINE writes are in
   * flight the next batch is already being written. Each write is durable when it returns (O_DSYNC, or a
   * datasync after it where there is no O_DSYNC), but batches are acknowledged strictly in file order: a
   * batch is never acknowledged while an earlier one might still be lost, so recovery, which stops at the
   * first torn frame, never drops an acknowledged one.
   */
  private pump(): void {
    if (this.rotating || this.repairing) return;
    if (this.rotateWaiters.length > 0) {
      if (this.inflight.size > 0) return; // the rotation waits for the writes in flight
      this.rotating = true;
      void this.rotate(this.rotateWaiters.splice(0)).finally(() => {
        this.rotating = false;
        this.pump();
      });
      return;
    }
    while (this.queue.length > 0 && this.inflight.size < PIPELINE) {
      const batch = this.queue.splice(0);
      let size = 0;
      for (const p of batch) size += p.frame.length;
      const start = this.writeEnd;
      this.writeEnd += size;
      const written = this.writeAt(batch.map((p) => p.frame), size, start);
      this.inflight.add(written);
      this.settled = this.settled.then(() => this.settle(batch, written, start, size));
    }
  }

  private async writeAt(bufs: Buffer[], size: number, start: number): Promise<void> {
    const t0 = performance.now();
    let off = (await this.fh.writev(bufs, start)).bytesWritten;
    if (off < size) {
      const buf = Buffer.concat(bufs); // a short write: the rest goes byte range by byte range
      while (off < size) off += (await this.fh.write(buf, off, size - off, start + off)).bytesWritten;
    }
    if (!DSYNC) await this.fh.datasync();
    this.opts.onWrite?.(performance.now() - t0);
  }

  /** Settles one batch, in file order (the settled chain). */
  private async settle(batch: Pending[], written: Promise<void>, start: number, size: number): Promise<void> {
    let error: Error | undefined;
    try {
      await written;
    } catch (e) {
      error = e as Error;
    }
    this.inflight.delete(written);
    if (error === undefined && this.failedFrom === undefined) {
      this.activeBytes = start + size;
      for (const p of batch) p.resolve();
      if (!this.fullSignalled && this.activeBytes >= this.opts.maxSegmentBytes) {
        this.fullSignalled = true;
        this.opts.onSegmentFull?.();
      }
    } else {
      // Nothing from here on was acknowledged: once the writes in flight are done, cut it all off so it can
      // never be shipped (the clients retry it).
      this.failedFrom ??= start;
      this.repairing = true;
      for (const p of batch) p.reject(error ?? new Error('an earlier write to the log failed'));
      if (this.inflight.size === 0) await this.repair();
    }
    this.pump();
  }

  private async repair(): Promise<void> {
    try {
      await this.fh.truncate(this.failedFrom!);
      await this.fh.datasync();
    } catch (e) {
      this.broken = e as Error;
      for (const p of this.queue.splice(0)) p.reject(this.broken);
    }
    this.writeEnd = this.activeBytes;
    this.failedFrom = undefined;
    this.repairing = false;
  }

  private async rotate(waiters: Array<() => void>): Promise<void> {
    try {
      if (this.activeBytes > 0) {
        await this.fh.close();
        this.sealedBytes.set(this.activeSeq, this.activeBytes);
        await this.openSegment(this.activeSeq + 1);
      }
    } catch (e) {
      this.broken = e as Error;
      for (const p of this.queue.splice(0)) p.reject(this.broken);
    } finally {
      for (const w of waiters) w();
    }
  }

  /**
   * A sealed segment's payloads, in append order, read back from disk (from the page cache, as a rule: the
   * segment was just written). Keeping the payloads of recent segments in memory instead saved this read
   * but cost more: tens of thousands of buffers kept alive made the request thread collect garbage often.
   * Without them bench:ingest's durable baseline served 19–52% more, the collector about 4% more. No CRC, as
   * in readFrom: a sealed segment was either written by this process or checked as it was recovered, and
   * checking again cost the request thread 1.1 µs per event with destinations' whole messages in the log
   * (bench:profile). Decoding yields to requests between slices.
   */
  async read(seq: number, into?: ReusedBuffer): Promise<Buffer[]> {
    // A segment may be renamed (shipped) between the two reads; the first name is the likelier.
    const file = (name: (n: number) => string) => (into ? readWhole(path.join(this.dir, name(seq)), into) : fs.readFile(path.join(this.dir, name(seq))));
    const [first, second] = this.shippedBytes.has(seq) ? [shippedName, segName] : [segName, shippedName];
    const buf = await file(first).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return file(second);
      throw e;
    });
    const payloads: Buffer[] = [];
    let r = decodeFrames(buf, 0, READ_SLICE, payloads, false);
    while (r.more) {
      await setImmediate();
      r = decodeFrames(buf, r.pos, r.pos + READ_SLICE, payloads, false);
    }
    return payloads;
  }

  /** Drops a shipped segment, or keeps it as shipped while a hold still needs it. */
  async release(seq: number): Promise<void> {
    const bytes = this.sealedBytes.get(seq) ?? 0;
    if (this.held(seq)) {
      await fs.rename(path.join(this.dir, segName(seq)), path.join(this.dir, shippedName(seq)));
      await syncDir(this.dir);
      this.shippedBytes.set(seq, bytes);
    } else {
      await fs.rm(path.join(this.dir, segName(seq)), { force: true });
    }
    this.sealedBytes.delete(seq);
  }

  async close(): Promise<void> {
    await this.seal();
    await this.fh.close();
    if (this.activeBytes === 0) await fs.rm(path.join(this.dir, segName(this.activeSeq)), { force: true });
    await fs.rm(path.join(this.dir, 'LOCK'), { force: true });
  }
}

interface Meta {
  nodeId: string;
  nextSeq: number;
  /** Absent from logs before 2026-12-06: such a log takes a new one at its next start. */
  logId?: string;
}

async function readMeta(dir: string): Promise<Meta | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, 'meta.json'), 'utf8')) as Meta;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${path.join(dir, 'meta.json')} is unreadable: ${(e as Error).message}`);
  }
}

const writeMeta = (dir: string, meta: Meta) => writeFileAtomic(path.join(dir, 'meta.json'), JSON.stringify(meta));

