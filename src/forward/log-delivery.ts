/**
 * A destination's delivery from the log, as its sender's thread runs it (forward/thread.ts): read a slice of
 * a segment's file, parse the forwarded messages, batch what the destination wants and send each batch until
 * it is delivered or refused, telling the forwarder how far it got after each one. The forwarder beside the
 * log keeps everything else (the cursor and its file, the backlog, hand-over, dead letters in the bucket,
 * metrics). Moved here from the request thread, which is the one a collector cannot split across cores:
 * its CPU per event with a webhook and a Postgres destination went from 23.4 µs to 15.2 (8.5 and 7.2 with
 * no destination; bench:forward, 40 s runs). Each destination now reads and parses the log itself, where
 * the request thread read and parsed it once for all: the page cache makes the second read cheap.
 *
 * A backlog object from the bucket (a destination's log handed over while it was behind) is delivered the
 * same way: the forwarder reads the object and hands its bytes over; the thread parses and sends its lines.
 *
 * A job stops short, and says why, where the forwarder must decide: a short batch it may hold back
 * (`lingering`), a batch with a message the privacy filter must judge (`privacy`: the forwarder sends it
 * itself, from its own read of the log or the object), dead letters to store before the cursor passes them,
 * a stop.
 */
import { type Destination, destinationFilter } from '../config/destinations.js';
import { readSegmentFrames } from '../ingest/wal.js';
import type { ReusedBuffer } from '../lib/reused-buffer.js';
import { deliver, DeliveryStopped, namedDeadLetters, shortOfBatch, takeBatch } from './deliver.js';
import { backlogEntries, type Forwarded, placeName, positionIn, sliceMessages } from './messages.js';
import type { Outgoing, Sender } from './sender.js';

/** A slice of the log to deliver: from frame offset `from`, message `index` of it, up to the durable `end`. */
export interface LogJob {
  seq: number;
  paths: string[];
  from: number;
  index: number;
  end: number;
  sealed: boolean;
  maxBytes: number;
  /** Whether a batch short of batchCount may be held back (the forwarder's lingerMs has not run out). */
  linger: boolean;
  /** Names dead-letter files: `<node>-<segment>-<offset>-<index>` of a batch's first message. */
  node: string;
}

/**
 * Which messages the privacy filter must judge (privacy/ship-filter.ts, looksAt): those of these tenants
 * received before `before`. Undefined: none.
 */
export type PrivacyHorizon = { before: number; tenants: readonly string[] } | undefined;

export type LogEvent =
  | { type: 'sending'; receivedAt: number }
  | { type: 'delivered'; n: number }
  | { type: 'failed'; error: string; attempt: number; retryInMs?: number }
  | { type: 'progress'; offset: number; index: number }
  /** A backlog object's lines before `n` are done. */
  | { type: 'line'; n: number };

type DeadLetters = Array<{ messages: Outgoing[]; error: string; attempts: number; id: string }>;

export interface LogResult {
  /** Where the cursor stands: every message before it was delivered, or is in `deadLetters`. */
  offset: number;
  index: number;
  /** The segment is sealed and was read to its end. */
  done: boolean;
  /** Why the job stopped before the end of what it read. */
  held?: 'lingering' | 'privacy' | 'stopped';
  deadLetters?: DeadLetters;
}

/** A backlog object's lines to deliver, from line `from` on; `name` (the object's) names its dead letters. */
export interface BacklogJob {
  lines: Buffer;
  from: number;
  name: string;
}

export interface BacklogResult {
  /** The line the object's cursor stands at: every line before it was delivered, or is in `deadLetters`. */
  next: number;
  held?: 'privacy' | 'stopped';
  deadLetters?: DeadLetters;
  /** The object's bytes, handed back when the job stopped for dead letters before its end: the rest is the next job's. */
  lines?: Buffer;
}

export interface LogDeliveryHooks {
  post(e: LogEvent): void;
  sleep(ms: number): Promise<void>;
  stopped(): boolean;
  /** The privacy filter's horizon now (asked of the forwarder before each attempt). */
  horizon(): Promise<PrivacyHorizon>;
}

/**
 * What deliverBatches is told and asked. The privacy filter is applied one of two ways: on a sender's
 * thread, a batch it must judge is handed back to the forwarder (`horizon`); beside the log, the forwarder's
 * own filter takes its messages out before each attempt (`mayGo`).
 */
export type BatchHooks = Omit<LogDeliveryHooks, 'horizon'> & Partial<Pick<LogDeliveryHooks, 'horizon'>> & { mayGo?(m: Forwarded): boolean };

/** What the forwarder is told while a sender's thread delivers a slice of the log, and asked. */
export interface LogJobHooks {
  event(e: LogEvent): void;
  horizon(): PrivacyHorizon;
}

/** A sender that delivers slices of the log, and backlog objects, on a thread of its own (forward/thread.ts). */
export interface LogSender {
  deliverLog(job: LogJob, hooks: LogJobHooks): Promise<LogResult>;
  deliverBacklog(job: BacklogJob, hooks: LogJobHooks): Promise<BacklogResult>;
  /** Ends the job under way where it is: after the batch in flight, or at once in a retry's wait. */
  stopLog(): void;
}

class NeedsPrivacy extends Error {}

const judged = (h: PrivacyHorizon, m: Forwarded) => h !== undefined && m.receivedAt < h.before && h.tenants.includes(m.tenant);

/**
 * Delivers a slice of the log. With `reads` (a sender's thread has one), the slice is read into that
 * buffer: nothing of the slice outlives the job (dead letters are copied out as the thread posts them), so
 * the next job may read over it.
 */
export async function deliverLog(job: LogJob, d: Destination, sender: Sender, hooks: LogDeliveryHooks, reads?: ReusedBuffer): Promise<LogResult> {
  const wants = destinationFilter(d);
  const frames = await readSegmentFrames(job.paths, job.from, job.end, job.maxBytes, reads);
  // Released meanwhile: nobody holds it, so nobody needs it (as WriteAheadLog.readFrom says).
  if (frames === undefined) return { offset: job.from, index: job.index, done: true };
  // Only Postgres takes the tracking rows.
  const slice = await sliceMessages(frames, job.from, job.index, { withTracks: d.type === 'postgres' });
  const { list, end } = slice;
  const done = job.sealed && end >= job.end;
  const position = (n: number) => positionIn(slice, n);
  // Only at the log's acknowledged end: a slice that stopped short of it has more to read at once.
  if (job.linger && !done && end >= job.end && shortOfBatch(list, d, wants)) return { offset: job.from, index: job.index, done: false, held: 'lingering' };
  const r = await deliverBatches(list, 0, d, sender, hooks, wants, {
    id: (n) => placeName(job.node, job.seq, slice, n),
    progress: (n) => ({ type: 'progress', ...position(n) }),
  });
  return { ...position(r.next), done: r.held === undefined && done && r.next >= list.length, ...(r.held ? { held: r.held } : {}), ...(r.deadLetters ? { deadLetters: r.deadLetters } : {}) };
}

/** A backlog object's lines from `from` on, as deliverLog delivers a slice of the log. */
export async function deliverBacklog(job: BacklogJob, d: Destination, sender: Sender, hooks: LogDeliveryHooks): Promise<BacklogResult> {
  const list = await backlogEntries(job.lines);
  const r = await deliverBatches(list, job.from, d, sender, hooks, destinationFilter(d), { id: (n) => `backlog-${job.name}-${n}`, progress: (n) => ({ type: 'line', n }) });
  return r.deadLetters && r.next < list.length ? { ...r, lines: job.lines } : r;
}

/**
 * Entries from `from` on (a hole is a backlog line an erasure emptied), in batches of what the destination
 * wants, each until it is delivered or refused; after each batch the forwarder is told how far it got
 * (`progress`). Stops at a batch the privacy filter must judge, at a stop, and after a batch with dead
 * letters (named by `id` of the batch's first entry): `next` is the entry after that batch, and the caller
 * stores them before it moves its cursor there. The one batch loop of every delivery: a sender's thread
 * runs it for the log and the backlog, the forwarder for what the privacy filter judges (forwarder.ts).
 */
export async function deliverBatches(
  list: ReadonlyArray<Forwarded | undefined>,
  from: number,
  d: Destination,
  sender: Sender,
  hooks: BatchHooks,
  wants: (m: Forwarded) => boolean,
  at: { id(n: number): string; progress(n: number): LogEvent },
): Promise<BacklogResult> {
  let i = from;
  while (i < list.length) {
    if (hooks.stopped()) return { next: i, held: 'stopped' };
    const { batch, next: j } = takeBatch(list, i, d, wants);
    if (batch.length > 0) {
      hooks.post({ type: 'sending', receivedAt: batch[0]!.receivedAt });
      let undelivered;
      try {
        const horizon = hooks.horizon;
        undelivered = await deliver(sender, batch, d, {
          ...(hooks.mayGo ? { mayGo: hooks.mayGo } : {}),
          ...(horizon
            ? {
                beforeAttempt: async (b: readonly Forwarded[]) => {
                  const h = await horizon();
                  if (h !== undefined && b.some((m) => judged(h, m))) throw new NeedsPrivacy();
                },
              }
            : {}),
          sleep: hooks.sleep,
          stopped: hooks.stopped,
          delivered: (n) => hooks.post({ type: 'delivered', n }),
          failed: (error, attempt, retryInMs) => hooks.post({ type: 'failed', error, attempt, ...(retryInMs !== undefined ? { retryInMs } : {}) }),
        });
      } catch (e) {
        if (e instanceof NeedsPrivacy) return { next: i, held: 'privacy' };
        if (e instanceof DeliveryStopped) return { next: i, held: 'stopped' };
        throw e;
      }
      if (undelivered.length > 0) {
        return { next: j, deadLetters: namedDeadLetters(undelivered, at.id(i)) };
      }
    }
    i = j;
    hooks.post(at.progress(i));
  }
  return { next: i };
}
