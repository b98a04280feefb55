/**
 * Where requests are prepared: inline on the request thread, or on a pool of worker threads. Parsing,
 * validating, mapping and rendering are most of a request's CPU and share no state, so with workers the
 * request thread is left with HTTP, duplicates and the log, and the collector uses more than one core.
 */
import { parentPort, Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Observations } from '../plan/observe.js';
import type { SuppressionLists } from '../privacy/subjects.js';
import { arenaMemory, frameDone, FrameArena, type ArenaMemory } from './frame-arena.js';
import { RequestPreparer, type PrepareResult, type PrepareSettings, type RawRequest } from './prepare.js';

export interface Preparer {
  prepare(req: RawRequest): Promise<PrepareResult>;
  /** Puts new tracking plans in force (already validated: see plan/plan.ts, tenantPlans). */
  setPlans(plans: NonNullable<PrepareSettings['plans']>): void;
  /** Puts new suppression lists in force (tenant → keyed hashes, privacy/subjects.ts). */
  setSuppressions(lists: SuppressionLists): Promise<void>;
  /** The observed-schema counts (plan/observe.ts) gathered since the last call. */
  takeObserved(): Observations[];
  /** Stops; counts not yet taken are kept for a last takeObserved. */
  close(): Promise<void>;
}

export function openPreparer(settings: PrepareSettings, workers: number, logger: Logger): Preparer {
  return workers > 0 ? new WorkerPool(settings, workers, logger) : new InlinePreparer(settings);
}

export class InlinePreparer implements Preparer {
  private readonly preparer: RequestPreparer;
  constructor(settings: PrepareSettings) {
    this.preparer = new RequestPreparer(settings);
  }

  prepare(req: RawRequest): Promise<PrepareResult> {
    return Promise.resolve(this.preparer.prepare(req));
  }

  setPlans(plans: NonNullable<PrepareSettings['plans']>): void {
    this.preparer.setPlans(plans);
  }

  async setSuppressions(lists: SuppressionLists): Promise<void> {
    this.preparer.setSuppressions(lists);
  }

  takeObserved(): Observations[] {
    return this.preparer.observed.size > 0 ? [this.preparer.observed.take()] : [];
  }

  async close(): Promise<void> {}
}

/** A message to a worker (the requests of one hand-off) and its answer (their results, in order). */
export interface WorkerJob {
  id: number;
  reqs: RawRequest[];
}
/** `lent[i]`: the id of result i's frame in the worker's ring (frame-arena.ts), or -1 for a buffer of its own. */
export type WorkerAnswer = { id: number; results: PrepareResult[]; lent: number[] } | { id: number; crash: string };
/** What a request worker starts with. */
export interface WorkerData {
  settings: PrepareSettings;
  /** The ring its frames are made in. */
  arena: ArenaMemory;
}
/** Sent to a worker: the tracking plans in force from now on. */
export interface WorkerPlans {
  plans: NonNullable<PrepareSettings['plans']>;
}
/** Sent to a worker: the suppression lists in force from now on; it answers with `{ suppressionsSet }`. */
export interface WorkerSuppressions {
  suppressions: SuppressionLists;
}
/** Sent by a worker on its own: its observed-schema counts, every second it has some, and when asked to drain. */
export interface WorkerCounts {
  observed: Observations;
  drained?: boolean;
}

interface Waiting {
  req: RawRequest;
  resolve: (r: PrepareResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Requests handed to the worker, by hand-off. */
  sent: Map<number, Waiting[]>;
  /** Requests waiting for the worker to finish its current hand-off. */
  queue: Waiting[];
  /** Requests on this worker, sent or queued. */
  load: number;
}

const WORKER_URL = new URL('./prepare-worker.js', import.meta.url);

/**
 * The buffer behind a view when the view spans all of it, so it can move to the other thread instead of
 * being copied; undefined for a view of part of a buffer (Node's pooled ones) or of nothing.
 */
export function ownBuffer(view: ArrayBufferView): ArrayBuffer | undefined {
  const b = view.buffer as ArrayBuffer;
  return view.byteOffset === 0 && view.byteLength === b.byteLength && view.byteLength > 0 ? b : undefined;
}

/**
 * Requests are handed to workers in groups. A worker has at most one hand-off in flight: requests that
 * arrive meanwhile wait on the request thread and go together when it answers. Under load a hand-off
 * carries several requests, so the threads wake each other once per group instead of twice per request:
 * measured at 16 µs of CPU a round trip when they arrive together, and 62 µs when each wakes a sleeping
 * thread, against 100-150 µs to prepare a request.
 *
 * Requests go to the worker with the fewest. A worker that dies (a bug, not bad input: input problems are
 * answers) fails its requests with an internal error, which clients retry, and is replaced; one that dies
 * within a second of starting is replaced a second later, so a worker that cannot start does not spin.
 * While no worker is up, requests are prepared on the request thread.
 */
export class WorkerPool implements Preparer {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closing = false;
  private inline: InlinePreparer | undefined;
  private observed: Observations[] = [];

  /**
   * workerUrl is the module a worker runs, one that calls answerJobs: prepare-worker.js, or in bench:ingest
   * a cut-down preparer that shows what the rest of the request path reaches.
   */
  constructor(private settings: PrepareSettings, size: number, private readonly logger: Logger, private readonly workerUrl: URL = WORKER_URL) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const started = Date.now();
    const arena = arenaMemory();
    const worker = new Worker(this.workerUrl, { workerData: { settings: this.settings, arena } satisfies WorkerData });
    const slot: Slot = { worker, sent: new Map(), queue: [], load: 0 };
    const done = new Int32Array(arena.done);
    worker.on('message', (a: WorkerAnswer | WorkerCounts | { suppressionsSet: true }) => {
      if ('suppressionsSet' in a) return void worker.emit('suppressionsSet');
      if ('observed' in a) {
        if (a.observed.length > 0) this.observed.push(a.observed);
        if (a.drained) worker.emit('drained');
        return;
      }
      const group = slot.sent.get(a.id);
      if (!group) return;
      slot.sent.delete(a.id);
      slot.load -= group.length;
      if ('crash' in a) {
        const e = new Error(`request preparation failed: ${a.crash}`);
        for (const w of group) w.reject(e);
      } else {
        for (let i = 0; i < group.length; i++) {
          const r = a.results[i]!;
          const id = a.lent[i]!;
          if (r.ok && id >= 0) r.value.release = once(() => frameDone(done, id));
          group[i]!.resolve(r);
        }
      }
      this.handOff(slot);
      if (slot.load === 0) worker.unref();
    });
    const fail = (e: Error) => {
      for (const group of slot.sent.values()) for (const w of group) w.reject(e);
      for (const w of slot.queue) w.reject(e);
      slot.sent.clear();
      slot.queue = [];
      slot.load = 0;
    };
    worker.on('error', (e) => {
      this.logger.error({ err: e }, 'request worker failed');
      fail(e);
    });
    worker.on('exit', (code) => {
      fail(new Error(`request worker exited with code ${code}`));
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      if (this.closing) return;
      this.logger.error({ code }, 'request worker exited; starting another');
      const respawn = setTimeout(() => this.closing || this.slots.push(this.spawn()), Date.now() - started < 1000 ? 1000 : 0);
      respawn.unref();
    });
    worker.unref(); // an idle worker does not keep the process alive; one with requests does
    return slot;
  }

  /** Sends the slot's queued requests when it has no hand-off in flight. */
  private handOff(slot: Slot): void {
    if (slot.sent.size > 0 || slot.queue.length === 0) return;
    const group = slot.queue;
    slot.queue = [];
    const id = this.nextId++;
    slot.sent.set(id, group);
    // A body with a buffer of its own moves to the worker instead of being copied.
    const moved: ArrayBuffer[] = [];
    for (const w of group) {
      const b = ownBuffer(w.req.body);
      if (b && !moved.includes(b)) moved.push(b);
    }
    const job: WorkerJob = { id, reqs: group.map((w) => w.req) };
    try {
      slot.worker.postMessage(job, moved);
    } catch {
      try {
        slot.worker.postMessage(job); // a buffer that cannot be moved (Node's pooled ones) is copied
      } catch (e) {
        // Requests are plain data, so this is a bug; the group fails (a retryable 500) instead of hanging.
        slot.sent.delete(id);
        slot.load -= group.length;
        for (const w of group) w.reject(e as Error);
      }
    }
  }

  prepare(req: RawRequest): Promise<PrepareResult> {
    if (this.slots.length === 0) return (this.inline ??= new InlinePreparer(this.settings)).prepare(req);
    let slot = this.slots[0]!;
    for (const s of this.slots) if (s.load < slot.load) slot = s;
    return new Promise((resolve, reject) => {
      if (slot.load === 0) slot.worker.ref();
      slot.load++;
      slot.queue.push({ req, resolve, reject });
      this.handOff(slot);
    });
  }

  /** Each worker takes the plans before the next request it is handed; a worker started later gets them too. */
  setPlans(plans: NonNullable<PrepareSettings['plans']>): void {
    this.settings = { ...this.settings, plans };
    for (const s of this.slots) s.worker.postMessage({ plans } satisfies WorkerPlans);
    this.inline?.setPlans(plans);
  }

  /**
   * Resolves once every worker has the lists: from then on no request is prepared with the old ones, which
   * is what the shipper's filter of older records relies on (ingest/node.ts).
   */
  async setSuppressions(suppressions: SuppressionLists): Promise<void> {
    this.settings = { ...this.settings, suppressions };
    await this.inline?.setSuppressions(suppressions);
    await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            // A worker that dies meanwhile is replaced with the new settings; do not wait for it for ever.
            const timer = setTimeout(resolve, 5000);
            s.worker.once('suppressionsSet', () => {
              clearTimeout(timer);
              resolve();
            });
            s.worker.postMessage({ suppressions } satisfies WorkerSuppressions);
          }),
      ),
    );
  }

  takeObserved(): Observations[] {
    const out = this.observed;
    this.observed = [];
    if (this.inline) out.push(...this.inline.takeObserved());
    return out;
  }

  async close(): Promise<void> {
    this.closing = true;
    // Each worker hands over its last counts first (at most a second's wait for one that does not answer).
    await Promise.all(
      this.slots.map(async (s) => {
        s.worker.ref(); // an idle worker is unref'd: the process must wait for its answer
        const drained = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          s.worker.once('drained', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        s.worker.postMessage('drain');
        await drained;
        await s.worker.terminate();
      }),
    );
  }
}

/** f, run at most once however often it is called: a frame marked done twice could free a later frame's room. */
function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    f();
  };
}

/**
 * The worker's side of the pool (run in a worker thread): prepares each hand-off's requests in order and
 * answers with their results. The frames' and fingerprints' memory moves to the request thread instead of
 * being copied (each has a buffer of its own).
 */
export function answerJobs(
  prepare: (req: RawRequest) => PrepareResult,
  frames: FrameArena | undefined,
  takeObserved: () => Observations = () => [],
  setPlans: (plans: WorkerPlans['plans']) => void = () => undefined,
  setSuppressions: (lists: WorkerSuppressions['suppressions']) => void = () => undefined,
): void {
  const sendCounts = (drained: boolean) => {
    const observed = takeObserved();
    if (observed.length > 0 || drained) parentPort!.postMessage({ observed, drained } satisfies WorkerCounts);
  };
  setInterval(() => sendCounts(false), 1000).unref();
  parentPort!.on('message', (job: WorkerJob | WorkerPlans | WorkerSuppressions | 'drain') => {
    if (job === 'drain') return sendCounts(true);
    if ('plans' in job) return setPlans(job.plans);
    if ('suppressions' in job) {
      setSuppressions(job.suppressions);
      return parentPort!.postMessage({ suppressionsSet: true });
    }
    const { id, reqs } = job;
    let answer: WorkerAnswer;
    const moved: ArrayBuffer[] = [];
    const lent: number[] = [];
    try {
      const results: PrepareResult[] = [];
      for (const req of reqs) {
        frames?.take();
        const r = prepare(req);
        results.push(r);
        const frame = frames?.take();
        if (frame !== undefined && !r.ok) frames!.release(frame);
        lent.push(frame !== undefined && r.ok ? frame : -1);
        if (!r.ok) continue;
        for (const view of [r.value.frame, r.value.fingerprints, r.value.violations]) {
          const b = view && ownBuffer(view);
          if (b) moved.push(b);
        }
      }
      answer = { id, results, lent };
    } catch (e) {
      answer = { id, crash: (e as Error).stack ?? String(e) };
      moved.length = 0;
      // Nobody will write the frames this job made: their room in the ring is free again.
      if (frames) for (const i of [...lent, frames.take() ?? -1]) if (i >= 0) frames.release(i);
    }
    parentPort!.postMessage(answer, moved);
  });
}
