/**
 * Where requests are prepared: inline on the request thread, or on a pool of worker threads. Parsing,
 * validating, mapping and rendering are most of a request's CPU and share no state, so with workers the
 * request thread is left with HTTP, duplicates and the log, and the collector uses more than one core.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { RequestPreparer, type PrepareResult, type PrepareSettings, type RawRequest } from './prepare.js';

export interface Preparer {
  prepare(req: RawRequest): Promise<PrepareResult>;
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

  async close(): Promise<void> {}
}

/** A message to a worker and its answer. */
export interface WorkerJob {
  id: number;
  req: RawRequest;
}
export type WorkerAnswer = { id: number; result: PrepareResult } | { id: number; crash: string };

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (r: PrepareResult) => void; reject: (e: Error) => void }>;
}

const WORKER_URL = new URL('./prepare-worker.js', import.meta.url);

/**
 * Requests go to the worker with the fewest in flight. A worker that dies (a bug, not bad input: input
 * problems are answers) fails its requests with an internal error, which clients retry, and is replaced;
 * one that dies within a second of starting is replaced a second later, so a worker that cannot start
 * does not spin. While no worker is up, requests are prepared on the request thread.
 */
export class WorkerPool implements Preparer {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closing = false;
  private inline: InlinePreparer | undefined;

  constructor(private readonly settings: PrepareSettings, size: number, private readonly logger: Logger) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const started = Date.now();
    const worker = new Worker(WORKER_URL, { workerData: this.settings });
    const slot: Slot = { worker, pending: new Map() };
    worker.on('message', (a: WorkerAnswer) => {
      const p = slot.pending.get(a.id);
      if (!p) return;
      slot.pending.delete(a.id);
      if (slot.pending.size === 0) worker.unref();
      if ('crash' in a) p.reject(new Error(`request preparation failed: ${a.crash}`));
      else p.resolve(a.result);
    });
    const fail = (e: Error) => {
      for (const p of slot.pending.values()) p.reject(e);
      slot.pending.clear();
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
    worker.unref(); // an idle worker does not keep the process alive; one with requests in flight does
    return slot;
  }

  prepare(req: RawRequest): Promise<PrepareResult> {
    if (this.slots.length === 0) return (this.inline ??= new InlinePreparer(this.settings)).prepare(req);
    let slot = this.slots[0]!;
    for (const s of this.slots) if (s.pending.size < slot.pending.size) slot = s;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, req } satisfies WorkerJob);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
