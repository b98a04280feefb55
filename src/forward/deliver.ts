/**
 * Delivering one batch through a sender, shared by the forwarders and `tracklake destinations replay`:
 * retries with jittered exponential backoff (or the receiver's Retry-After), and a batch refused for good
 * split in two until the refused messages stand alone, so one bad message does not take its neighbours to
 * the dead letters. What cannot be delivered comes back as data, with its last error.
 */
import type { Destination } from '../config/destinations.js';
import type { Outgoing, Sender } from './sender.js';

/** Bytes of a batch's own JSON around its messages, counted against batchBytes. */
const BATCH_ENVELOPE = 64;

/** The longest Retry-After honoured. */
const MAX_RETRY_AFTER_MS = 3_600_000;

export type DeliveryPolicy = Pick<Destination, 'maxAttempts' | 'retryBaseMs' | 'retryMaxMs'>;

export interface DeliveryHooks<M extends Outgoing = Outgoing> {
  /** Waits (interruptibly: a stopping caller resolves it early, then `stopped` says so). */
  sleep(ms: number): Promise<void>;
  stopped(): boolean;
  delivered(n: number): void;
  failed(error: string, attempt: number, retryInMs: number | undefined): void;
  /**
   * Asked before each attempt: whether a message may still go (a deletion that arrived while a batch waited
   * or was being retried takes its subject's messages out of it). Unset: all may.
   */
  mayGo?(message: M): boolean;
  /** Asked before each attempt, with the messages about to go: it may throw to give the batch up. */
  beforeAttempt?(batch: readonly M[]): Promise<void>;
}

export interface Undelivered {
  messages: Outgoing[];
  error: string;
  attempts: number;
}

export class DeliveryStopped extends Error {}

/**
 * The next batch of `entries` from `from`: what the destination wants, up to batchCount messages and
 * batchBytes of JSON (a single larger message goes alone). `next` is where the one after it starts; a hole
 * (a backlog line an erasure emptied) is passed over.
 */
export function takeBatch<M extends { json: Buffer }>(entries: ReadonlyArray<M | undefined>, from: number, d: Pick<Destination, 'batchCount' | 'batchBytes'>, wants: (m: M) => boolean): { batch: M[]; next: number } {
  const batch: M[] = [];
  let bytes = BATCH_ENVELOPE;
  let j = from;
  for (; j < entries.length && batch.length < d.batchCount; j++) {
    const e = entries[j];
    if (e === undefined || !wants(e)) continue;
    if (batch.length > 0 && bytes + e.json.length + 1 > d.batchBytes) break;
    batch.push(e);
    bytes += e.json.length + 1;
  }
  return { batch, next: j };
}

/**
 * Whether `entries` hold a batch short of the destination's limits (batchCount messages, batchBytes) of what
 * it wants: one that may linger. A batch full by its bytes goes at once, as one full by its count.
 */
export function shortOfBatch<M extends { json: Buffer }>(entries: readonly M[], d: Pick<Destination, 'batchCount' | 'batchBytes'>, wants: (m: M) => boolean): boolean {
  let wanted = 0;
  let bytes = BATCH_ENVELOPE;
  for (const e of entries) if (wants(e) && (++wanted >= d.batchCount || (bytes += e.json.length + 1) > d.batchBytes)) return false;
  return wanted > 0;
}

/**
 * A batch's undelivered parts with the names of their dead-letter files: the batch's own `id`, or `<id>-<k>`
 * when its splitting left several parts.
 */
export function namedDeadLetters(undelivered: readonly Undelivered[], id: string): Array<Undelivered & { id: string }> {
  return undelivered.map((u, k) => ({ ...u, id: undelivered.length > 1 ? `${id}-${k}` : id }));
}

export function backoffMs(policy: DeliveryPolicy, attempt: number): number {
  const cap = Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** Math.min(attempt - 1, 30));
  return cap / 2 + Math.random() * (cap / 2);
}

/** Delivers a batch; returns what was refused for good or still failed after maxAttempts. Throws DeliveryStopped. */
export async function deliver<M extends Outgoing>(sender: Sender, batch: M[], policy: DeliveryPolicy, hooks: DeliveryHooks<M>): Promise<Undelivered[]> {
  for (let attempt = 1; ; attempt++) {
    if (hooks.mayGo) batch = batch.filter((m) => hooks.mayGo!(m));
    if (batch.length === 0) return [];
    await hooks.beforeAttempt?.(batch);
    const r = await sender.send(batch);
    if (r.ok) {
      hooks.delivered(batch.length);
      return [];
    }
    if (!r.retry && batch.length > 1) {
      const half = Math.ceil(batch.length / 2);
      hooks.failed(r.error, attempt, undefined);
      return [...(await deliver(sender, batch.slice(0, half), policy, hooks)), ...(await deliver(sender, batch.slice(half), policy, hooks))];
    }
    if (!r.retry || attempt >= policy.maxAttempts) {
      hooks.failed(r.error, attempt, undefined);
      return [{ messages: batch, error: r.error, attempts: attempt }];
    }
    const wait = r.retryAfterMs !== undefined ? Math.min(r.retryAfterMs, MAX_RETRY_AFTER_MS) : backoffMs(policy, attempt);
    hooks.failed(r.error, attempt, wait);
    await hooks.sleep(wait);
    if (hooks.stopped()) throw new DeliveryStopped();
  }
}
