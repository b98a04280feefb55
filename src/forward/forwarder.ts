/**
 * One destination's delivery, at least once and in log order: a cursor into the write-ahead log (like a
 * consumer group's offset) that reads acknowledged frames as they are written, batches of the messages the
 * destination wants, retries with jittered exponential backoff, dead letters for what is refused or keeps
 * failing, and a backlog in the bucket for a destination that falls behind.
 *
 * The cursor (segment, byte offset of the frame, messages of that frame done) is kept in the state folder,
 * written at most every CURSOR_WRITE_MS: a crash repeats at most that much, never skips anything. While the
 * destination needs a segment, the log keeps it (wal.ts holds) after it ships. Past `maxLagBytes` of log
 * waiting, whole segments after the one being delivered are handed over to
 * `destinations/<name>/backlog/<node>-<segment>.jsonl` and the log lets them go; the destination delivers
 * those objects before anything later, so the order holds.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { type Destination, destinationFilter } from '../config/destinations.js';
import { type LogHold, READ_SLICE, segmentName, type WriteAheadLog } from '../ingest/wal.js';
import type { Clock } from '../lib/clock.js';
import { dayOf, dayPath } from '../lib/dates.js';
import type { Metrics } from '../lib/metrics.js';
import { writeFileAtomic } from '../storage/local.js';
import type { ObjectStore } from '../storage/store.js';
import { backlogEntries, backlogOf, type Forwarded, placeName, positionIn, type SliceMessages, sliceMessages } from './messages.js';
import type { PrivacyGate } from '../privacy/ship-filter.js';
import { backoffMs, DeliveryStopped, shortOfBatch } from './deliver.js';
import { deliverBatches, type LogEvent, type LogJobHooks, type LogSender } from './log-delivery.js';
import type { Outgoing, Sender } from './sender.js';
import { deadLetterLines } from './deadletter.js';

/** How often the cursor is written while messages flow; it is also written at every stop. */
const CURSOR_WRITE_MS = 1000;
/** How often an idle destination looks at the log again, and how often lag is checked against the budget. */
const POLL_MS = 100;
const SPILL_CHECK_MS = 1000;
/** Frames parsed between two yields to the event loop (a slice of the log is megabytes). */
const SLICE_FRAMES = 64;

export interface Cursor {
  /** The log segment being read, the offset of its next frame, and how many of that frame's messages are done. */
  seq: number;
  offset: number;
  index: number;
  /** Segments after `seq` up to this one were handed over to the bucket's backlog. */
  skipThrough: number;
  /** The backlog object being delivered, and how many of its lines are done. */
  backlog?: { key: string; index: number };
}

/** Whether a cursor still needs a log segment: the one being read and those after it not handed over. */
export function cursorNeeds(c: Cursor, seq: number): boolean {
  return seq >= c.seq && !(seq > c.seq && seq <= c.skipThrough);
}

/** Bytes of the log a cursor has not read, from each segment's size (sequence number, bytes). */
export function lagBytes(c: Cursor, sizes: Iterable<readonly [number, number]>): number {
  let bytes = 0;
  for (const [seq, size] of sizes) if (cursorNeeds(c, seq)) bytes += size - (seq === c.seq ? c.offset : 0);
  return Math.max(0, bytes);
}

/** What the cursor file holds: the cursor, and what `tracklake destinations status` shows. */
export interface ForwarderState {
  cursor: Cursor;
  delivered: number;
  retried: number;
  deadLettered: number;
  handedOver: number;
  lastDeliveredAt: number | null;
  /** The last failure, until a delivery succeeds again. */
  failing: { error: string; since: number; attempts: number } | null;
  /**
   * Receipt time of the first message of the batch being sent, or of the last one delivered: while the
   * destination has log left to read, how far behind it is (lagSeconds). Absent from older cursor files.
   */
  pendingSince?: number;
  /** The node id its backlog objects are named by (segmentName). Absent from older cursor files. */
  node?: string;
  /**
   * The ids the node had before it was renamed, while the bucket still held backlog objects named by them:
   * those are delivered too, in segment order (the log's numbering goes on across a rename).
   */
  formerNodes?: string[];
}

/** How far behind a destination is, in seconds: the age of the message it is at, while it has log left to read. */
export function lagSeconds(s: Pick<ForwarderState, 'pendingSince'>, bytes: number, now: number): number {
  return bytes > 0 && s.pendingSince ? Math.max(0, (now - s.pendingSince) / 1000) : 0;
}

/** A backlog object in the bucket: `destinations/<name>/backlog/<node>-<segment>.jsonl`. */
interface BacklogObject {
  key: string;
  seq: number;
  node: string;
}

export interface ForwarderDeps {
  wal: WriteAheadLog;
  store: ObjectStore;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** The folder of the destinations' cursor files (`<stateDir>/forward`). */
  dir: string;
  /** With deliverLog, the log's messages are read, batched and sent on the sender's thread. */
  sender: Sender & Partial<LogSender>;
  /**
   * The privacy filter in force: a message acknowledged before a suppression or deletion of its subject
   * reached this node is not forwarded (nor handed over to the backlog), as it is not shipped.
   */
  privacy?: PrivacyGate;
}

export const cursorFile = (dir: string, name: string) => path.join(dir, `${name}.json`);

export async function readState(dir: string, name: string): Promise<ForwarderState | undefined> {
  try {
    return JSON.parse(await fs.readFile(cursorFile(dir, name), 'utf8')) as ForwarderState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`the cursor of destination ${name} (${cursorFile(dir, name)}) is unreadable: ${(e as Error).message}`);
  }
}

export class Forwarder implements LogHold {
  private state!: ForwarderState;
  private readonly wants: (f: Forwarded) => boolean;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private spillTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  /** Decisions about which segment goes where are taken one at a time (delivery and hand-over). */
  private lock: Promise<unknown> = Promise.resolve();
  private writes: Promise<void> = Promise.resolve();
  private lastWrite = 0;
  /** When the log began holding a batch too small to send (performance.now()). */
  private lingerFrom: number | undefined;
  /**
   * This node's backlog objects in the bucket (under its id and former ones), oldest segment first: listed
   * once, then kept as this forwarder hands segments over and delivers objects, since nothing else adds or
   * deletes objects under a node's id (one collector per id; an erasure rewrites them in place). Listing
   * again after each object made catching up quadratic: a week's backlog at a segment a minute is 10 000
   * objects, ten pages of listing each. null: not listed yet.
   */
  private backlog: BacklogObject[] | null = null;
  /** The sender's thread handed a batch back for the privacy filter: the next step delivers it here. */
  private judgeHere = false;
  private readonly log: Logger;
  /** What a sender's thread tells the forwarder while it delivers a job, and asks of it (log slices and backlog objects alike). */
  private readonly jobHooks: LogJobHooks = { event: (e) => this.onLogEvent(e), horizon: () => this.o.privacy?.filter()?.horizon() };

  constructor(readonly d: Destination, private readonly o: ForwarderDeps) {
    this.wants = destinationFilter(d);
    this.log = o.logger.child({ destination: d.name });
  }

  /** Reads the cursor; a new destination starts at the log's head: with the messages accepted from now on. */
  async open(): Promise<void> {
    const kept = await readState(this.o.dir, this.d.name);
    const head = this.o.wal.head;
    const node = this.o.wal.nodeId;
    this.state = kept ?? { cursor: { seq: head, offset: 0, index: 0, skipThrough: 0 }, delivered: 0, retried: 0, deadLettered: 0, handedOver: 0, lastDeliveredAt: null, failing: null, node };
    if (!kept) this.log.info({ segment: head }, 'destination added: forwarding the messages accepted from now on');
    if (kept?.node !== undefined && kept.node !== node) {
      this.state.formerNodes = [...new Set([...(kept.formerNodes ?? []), kept.node])];
      this.log.info({ formerNode: kept.node }, 'node renamed: backlog objects under its former id are delivered too');
    }
    if (!kept || kept.node !== node) {
      this.state.node = node;
      await this.writeState();
    }
  }

  get status(): ForwarderState {
    return this.state;
  }

  /** The log segment this destination still needs: the one being read and those not handed over. */
  needs(seq: number): boolean {
    return cursorNeeds(this.state.cursor, seq);
  }

  /** Bytes of the log waiting for this destination, and how old its oldest waiting message is. */
  lag(): { bytes: number; seconds: number } {
    const wal = this.o.wal;
    const bytes = lagBytes(this.state.cursor, [...wal.segments(), wal.head].map((s) => [s, wal.segmentBytes(s)] as const));
    return { bytes, seconds: lagSeconds(this.state, bytes, this.o.clock.now()) };
  }

  start(): void {
    this.loop = this.run().catch((e: unknown) => {
      if (!(e instanceof DeliveryStopped)) this.log.error({ err: e }, 'destination stopped by an unexpected error');
    });
    this.spillTimer = setInterval(() => void this.locked(() => this.handOver()).catch((e: Error) => this.log.warn({ err: e.message }, 'backlog hand-over failed; will retry')), SPILL_CHECK_MS);
    this.spillTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.o.sender.stopLog?.();
    if (this.spillTimer) clearInterval(this.spillTimer);
    this.wake?.();
    await this.loop;
    await this.lock.catch(() => undefined);
    await this.writeState();
  }

  async closeSender(): Promise<void> {
    await this.o.sender.close().catch((e: Error) => this.log.warn({ err: e.message }, 'destination connection not closed cleanly'));
  }

  private locked<T>(f: () => Promise<T>): Promise<T> {
    const run = this.lock.then(f, f);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        const progressed = await this.step();
        failures = 0;
        if (!progressed) await this.sleep(POLL_MS);
      } catch (e) {
        if (e instanceof DeliveryStopped) return;
        this.log.warn({ err: (e as Error).message }, 'destination could not read its log or backlog, or its thread died; will retry');
        await this.sleep(backoffMs(this.d, ++failures));
      }
    }
  }

  /**
   * Delivers what comes next: the bucket's backlog, else the log from the cursor. False when there was
   * nothing. Choosing takes the lock (the hand-over moves segments only after the chosen one); delivering
   * does not, so a destination stuck in retries still hands its backlog over.
   */
  private async step(): Promise<boolean> {
    await this.o.privacy?.ready(); // nothing goes out before this node has read the regulations once
    const next = await this.locked(() => this.choose());
    if ('backlog' in next) {
      await this.deliverBacklog(next.backlog);
      return true;
    }
    const sender = this.o.sender;
    if (sender.deliverLog && sender.stopLog && !this.judgeHere) return this.deliverOnThread(next.seq, sender as LogSender);
    this.judgeHere = false;
    const read = await this.o.wal.readFrom(next.seq, this.state.cursor.offset);
    if (read.frames.length === 0 && !read.done) return false;
    const c = this.state.cursor;
    const entries = await sliceMessages(read.frames, c.offset, c.index, { withTracks: true, yieldEvery: SLICE_FRAMES });
    const atEnd = read.next >= this.o.wal.segmentBytes(next.seq); // a slice cut short has more to read at once
    if (!read.done && atEnd && this.lingering(entries)) return false;
    await this.deliverFrames(entries);
    if (read.done) await this.locked(() => this.segmentDone(next.seq));
    return true;
  }

  /**
   * The log from the cursor, a slice at a time, read, batched and sent on the sender's thread
   * (forward/log-delivery.ts): the request thread only moves the cursor. What the thread hands back is
   * decided here: dead letters are stored before the cursor passes them, a batch the privacy filter must
   * judge is delivered by the next step on this thread (deliverFrames), a short batch lingers.
   */
  private async deliverOnThread(seq: number, sender: LogSender): Promise<boolean> {
    const c = this.state.cursor;
    const span = this.o.wal.span(seq);
    if (c.offset >= span.end) {
      if (!span.sealed) return false;
      await this.locked(() => this.segmentDone(seq));
      return true;
    }
    // Stopping, no job goes out: a thread started for it would not have heard the stop.
    if (this.stopping) throw new DeliveryStopped();
    const linger = this.lingerFrom === undefined || performance.now() - this.lingerFrom < this.d.lingerMs;
    // A slice holds two batches at least, so that batches are whole where the log holds enough for them.
    const maxBytes = Math.max(READ_SLICE, 2 * this.d.batchBytes);
    const job = { seq, paths: span.paths, from: c.offset, index: c.index, end: span.end, sealed: span.sealed, maxBytes, linger, node: this.o.wal.nodeId };
    const r = await sender.deliverLog(job, this.jobHooks);
    if (r.held === 'lingering') {
      this.lingerFrom ??= performance.now();
      return false;
    }
    this.lingerFrom = undefined;
    for (const l of r.deadLetters ?? []) await this.deadLetter(l.messages, l.error, l.attempts, l.id);
    Object.assign(c, { offset: r.offset, index: r.index });
    this.writeSoon();
    if (r.held === 'stopped') throw new DeliveryStopped();
    if (r.held === 'privacy') this.judgeHere = true;
    else if (r.done) await this.locked(() => this.segmentDone(seq));
    return true;
  }

  private onLogEvent(e: LogEvent): void {
    switch (e.type) {
      case 'sending':
        this.state.pendingSince = e.receivedAt;
        return;
      case 'delivered':
        return this.onDelivered(e.n);
      case 'failed':
        return this.onFailed(e.error, e.retryInMs);
      case 'progress':
        Object.assign(this.state.cursor, { offset: e.offset, index: e.index });
        return this.writeSoon();
      case 'line':
        if (this.state.cursor.backlog) this.state.cursor.backlog.index = e.n;
        return this.writeSoon();
    }
  }

  /**
   * Whether to wait for more before sending what the log holds so far: a batch short of both batchCount
   * and batchBytes waits up to lingerMs: sent at once, a collector taking a few requests a second sends a
   * request per message it logs, and both sides pay a request's cost for each. A sealed segment's last
   * messages go at once: nothing more comes to it (a batch does not span segments).
   */
  private lingering(entries: SliceMessages): boolean {
    if (!shortOfBatch(entries.list, this.d, this.wants)) {
      this.lingerFrom = undefined;
      return false;
    }
    const now = performance.now();
    this.lingerFrom ??= now;
    if (now - this.lingerFrom < this.d.lingerMs) return true;
    this.lingerFrom = undefined;
    return false;
  }

  /**
   * What comes next. The backlog in the bucket holds whole segments handed over after the one being read
   * at the time (handOver), so that one is finished from the log first (the log keeps it), then the backlog
   * objects in order, then the log after the last one handed over. Delivering the backlog as soon as there
   * was one, then moving past it, skipped the rest of the segment being read whenever it took more than
   * one job (a 64 MB segment does): those messages never reached the destination.
   */
  private async choose(): Promise<{ backlog: { key: string; index: number } } | { seq: number }> {
    const c = this.state.cursor;
    if (c.backlog === undefined && (this.backlog === null || c.skipThrough >= c.seq)) {
      const first = await this.firstBacklog();
      const inLog = c.seq === this.o.wal.head || this.o.wal.segments().includes(c.seq);
      // An object of this segment or an earlier one, or this segment gone from the log: the backlog's turn.
      // (Objects with nothing handed over after the cursor are an earlier run's: delivered first, as found.)
      if (first && (first.seq <= c.seq || !inLog || c.skipThrough < c.seq)) c.backlog = { key: first.key, index: 0 };
      else if (!first && c.seq <= c.skipThrough && !inLog) Object.assign(c, { seq: c.skipThrough + 1, offset: 0, index: 0 });
    }
    if (c.backlog) return { backlog: c.backlog };
    // Segments that never held anything (or are gone) are skipped, up to the one being written.
    const segments = this.o.wal.segments();
    if (c.seq !== this.o.wal.head && !segments.includes(c.seq)) {
      const next = segments.find((s) => s > c.seq) ?? this.o.wal.head;
      Object.assign(c, { seq: next, offset: 0, index: 0 });
    }
    return { seq: c.seq };
  }

  /** The oldest backlog object of this node's in the bucket (under its id or a former one); undefined: none. */
  private async firstBacklog(): Promise<BacklogObject | undefined> {
    if (this.backlog === null) {
      const listed: BacklogObject[] = [];
      for (const node of [this.o.wal.nodeId, ...(this.state.formerNodes ?? [])]) listed.push(...(await this.backlogOf(node)));
      this.backlog = listed.sort((a, b) => a.seq - b.seq);
      this.forgetFormerNodes();
    }
    return this.backlog[0];
  }

  /** A former id is forgotten once none of its objects is left in the bucket. */
  private forgetFormerNodes(): void {
    const former = this.state.formerNodes;
    if (former === undefined || this.backlog === null) return;
    const left = new Set(this.backlog.map((o) => o.node));
    this.state.formerNodes = former.filter((n) => left.has(n));
    if (this.state.formerNodes.length === 0) delete this.state.formerNodes;
  }

  /** The backlog objects named by this node id. */
  private async backlogOf(node: string): Promise<BacklogObject[]> {
    const prefix = `destinations/${this.d.name}/backlog/${node}-`;
    // Only `<prefix><segment>.jsonl`: a node id may hold "-", so node "edge"'s prefix also lists node
    // "edge-2"'s objects, which that node delivers (and deletes) itself.
    return (await this.o.store.list(prefix)).flatMap((o) => {
      const seq = /^(\d+)\.jsonl$/.exec(o.key.slice(prefix.length))?.[1];
      return seq === undefined ? [] : [{ key: o.key, seq: Number(seq), node }];
    });
  }

  private async segmentDone(seq: number): Promise<void> {
    const c = this.state.cursor;
    if (c.seq !== seq) return;
    Object.assign(c, { seq: seq + 1, offset: 0, index: 0 });
    await this.writeState();
    await this.o.wal.collect();
  }

  /**
   * The messages of the frames read, batched across frames (a request's few messages do not make a batch
   * each); the cursor moves to the frame and message each batch ends at.
   */
  private async deliverFrames(slice: SliceMessages): Promise<void> {
    const seq = this.state.cursor.seq;
    await this.deliverEntries(slice.list, 0, {
      id: (n) => placeName(this.o.wal.nodeId, seq, slice, n),
      progress: (n) => ({ type: 'progress', ...positionIn(slice, n) }),
    });
    this.onLogEvent({ type: 'progress', ...positionIn(slice, slice.list.length) });
  }

  /**
   * A backlog object from the bucket, from its cursor line on: on the sender's thread, as the log is
   * (forward/log-delivery.ts), unless that thread handed back a batch the privacy filter must judge: then
   * here, by the next step, from where the thread stopped.
   */
  private async deliverBacklog(b: { key: string; index: number }): Promise<void> {
    const lines = (await this.o.store.get(b.key)) ?? Buffer.alloc(0);
    const name = path.posix.basename(b.key, '.jsonl');
    const sender = this.o.sender;
    if (sender.deliverBacklog && !this.judgeHere) {
      // Dead letters end a job after their batch; they are stored, then the rest of the object (its bytes
      // handed back) is the next job's.
      for (let bytes: Buffer | undefined = lines; bytes !== undefined; ) {
        const r = await sender.deliverBacklog({ lines: bytes, from: b.index, name }, this.jobHooks);
        for (const l of r.deadLetters ?? []) await this.deadLetter(l.messages, l.error, l.attempts, l.id);
        this.onLogEvent({ type: 'line', n: r.next });
        if (r.held === 'stopped') throw new DeliveryStopped();
        if (r.held === 'privacy') return void (this.judgeHere = true);
        bytes = r.lines;
      }
    } else {
      this.judgeHere = false;
      await this.deliverEntries(await backlogEntries(lines), b.index, { id: (i) => `backlog-${name}-${i}`, progress: (n) => ({ type: 'line', n }) });
    }
    await this.o.store.delete(b.key);
    if (this.backlog !== null) {
      const at = this.backlog.findIndex((o) => o.key === b.key);
      const [gone] = at < 0 ? [] : this.backlog.splice(at, 1);
      if (gone && gone.node !== this.o.wal.nodeId) this.forgetFormerNodes();
    }
    this.state.cursor.backlog = undefined;
    await this.writeState();
  }

  /**
   * Entries from `from` on, here beside the log, with the privacy filter taking its messages out before each
   * attempt: the loop a sender's thread runs (deliverBatches), with dead letters stored as they come.
   */
  private async deliverEntries(entries: ReadonlyArray<Forwarded | undefined>, from: number, at: { id(n: number): string; progress(n: number): LogEvent }): Promise<void> {
    const hooks = {
      post: (e: LogEvent) => this.onLogEvent(e),
      sleep: (ms: number) => this.sleep(ms),
      stopped: () => this.stopping,
      mayGo: (m: Forwarded) => !this.leftOut(m),
    };
    for (let i = from; i < entries.length; ) {
      const r = await deliverBatches(entries, i, this.d, this.o.sender, hooks, this.wants, at);
      for (const l of r.deadLetters ?? []) await this.deadLetter(l.messages, l.error, l.attempts, l.id);
      if (r.held === 'stopped') throw new DeliveryStopped();
      i = r.next;
      this.onLogEvent(at.progress(i));
    }
  }

  private onDelivered(n: number): void {
    this.state.delivered += n;
    this.state.lastDeliveredAt = this.o.clock.now();
    if (this.state.failing) {
      this.log.info({ after: this.state.failing.attempts }, 'destination delivering again');
      this.state.failing = null;
      void this.writeState().catch(() => undefined); // status shows the change at once
    }
    this.o.metrics.forwardDelivered.inc({ destination: this.d.name }, n);
  }

  private onFailed(error: string, retryInMs: number | undefined): void {
    const began = this.state.failing === null;
    this.state.failing = { error, since: this.state.failing?.since ?? this.o.clock.now(), attempts: (this.state.failing?.attempts ?? 0) + 1 };
    if (began) void this.writeState().catch(() => undefined);
    if (retryInMs === undefined) return;
    this.state.retried++;
    this.o.metrics.forwardRetried.inc({ destination: this.d.name });
    this.log.warn({ err: error, retryInMs: Math.round(retryInMs) }, 'destination failing; will retry');
  }

  /** Messages that cannot be delivered, with the reason, under the day they failed; retried until stored. */
  private async deadLetter(batch: Outgoing[], error: string, attempts: number, id: string): Promise<void> {
    const at = this.o.clock.now();
    const key = `deadletter/${this.d.name}/${dayPath(dayOf(at))}/${id}.jsonl`;
    const body = deadLetterLines(batch, error, attempts, at);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.o.store.put(key, body);
        break;
      } catch (e) {
        this.log.warn({ err: (e as Error).message, key }, 'dead letters not stored; will retry');
        await this.sleep(backoffMs(this.d, attempt));
        if (this.stopping) throw new DeliveryStopped();
      }
    }
    this.state.deadLettered += batch.length;
    this.o.metrics.forwardDeadLettered.inc({ destination: this.d.name }, batch.length);
    await this.writeState();
    this.log.error({ err: error, messages: batch.length, key }, 'messages dead-lettered (tracklake destinations replay sends them again)');
  }

  /**
   * Whether the privacy filter keeps a message back: one acknowledged before a suppression or deletion of its
   * subject reached this node. Asked before each attempt at a batch and at hand-over, so a regulation that
   * arrives while a batch waits or is retried still takes its subject's messages out.
   */
  private leftOut(m: Forwarded): boolean {
    if (!this.o.privacy?.filter()?.dropsMessage(m.receivedAt, m.tenant, m.json)) return false;
    this.o.metrics.forwardLeftOut.inc({ destination: this.d.name });
    return true;
  }

  /**
   * Past the lag budget, whole sealed segments after the one being delivered go to the bucket (only the
   * messages this destination wants), oldest first, until the log it holds is back under budget.
   */
  private async handOver(): Promise<void> {
    if (this.stopping) return;
    const c = this.state.cursor;
    const sealed = this.o.wal.segments().filter((s) => s > c.seq && s > c.skipThrough);
    let lag = this.lag().bytes;
    for (const seq of sealed) {
      if (lag <= this.d.maxLagBytes) break;
      const { body, messages } = await backlogOf(await this.o.wal.read(seq), (e) => this.wants(e) && !this.leftOut(e));
      const key = `destinations/${this.d.name}/backlog/${segmentName(this.o.wal.nodeId, seq)}.jsonl`;
      await this.o.store.put(key, body);
      if (this.backlog !== null) {
        const at = this.backlog.findIndex((o) => o.seq > seq);
        this.backlog.splice(at < 0 ? this.backlog.length : at, 0, { key, seq, node: this.o.wal.nodeId });
      }
      lag -= this.o.wal.segmentBytes(seq);
      c.skipThrough = seq;
      this.state.handedOver += messages;
      this.o.metrics.forwardHandedOver.inc({ destination: this.d.name }, messages);
      await this.writeState();
      this.log.warn({ segment: seq, messages }, 'destination behind its maxLagBytes: a log segment handed over to the bucket');
    }
    await this.o.wal.collect();
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private writeSoon(): void {
    if (this.o.clock.now() - this.lastWrite >= CURSOR_WRITE_MS) void this.writeState().catch((e: Error) => this.log.warn({ err: e.message }, 'cursor not written'));
  }

  /** Writes the cursor file (writes are serialised, each a copy of the state at its turn). */
  private writeState(): Promise<void> {
    this.lastWrite = this.o.clock.now();
    this.writes = this.writes.catch(() => undefined).then(() => writeFileAtomic(cursorFile(this.o.dir, this.d.name), JSON.stringify(this.state)));
    return this.writes;
  }
}
