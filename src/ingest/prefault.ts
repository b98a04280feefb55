/**
 * Touches a new buffer's memory pages on a thread of its own. The first write to each page of a fresh
 * allocation is a page fault; on this project's machines (virtual machines) one costs tens of microseconds,
 * so the duplicate index's next table (hundreds of MB) faulted in by the request thread's inserts stalled
 * requests for up to a second (bench:soak). Faulted in here instead, it is ready before it is used.
 */
import { Worker } from 'node:worker_threads';

/** What the dedup index needs: have a buffer's pages touched, resolve when done. */
export type Prefault = (buffer: SharedArrayBuffer) => Promise<void>;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
// 32-bit words, not bytes: a byte view of a buffer over 4 GiB is over the typed-array length limit.
const words = new Int32Array(workerData, 0, Math.floor(workerData.byteLength / 4));
// One write per 4 KiB page maps it. An atomic OR with 0 writes the value the word holds, so a table that
// the request thread already uses (the index's forced switch, ingest/dedup.ts) loses nothing.
for (let i = 0; i < words.length; i += 1024) Atomics.or(words, i, 0);
parentPort.postMessage('done');`;

/**
 * A worker per buffer, ended once the buffer is faulted in. A long-lived worker kept every table it was
 * ever handed alive: its heap hardly allocates, so it seldom collects, and each buffer it had received stayed
 * referenced and resident (bench:soak at production size: 8.4 GB resident for an index of 5 GB). Ending the
 * worker drops its references at once; starting one costs a few milliseconds, a few dozen times a day.
 */
export class Prefaulter {
  private readonly running = new Set<Worker>();
  private closed = false;

  /** Resolves once every page of the buffer has been written once (or at once, when no thread can do it). */
  readonly prefault: Prefault = (buffer) => {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      // A worker of a few lines, kept with the code that needs it (eval: no module file to find at run time).
      const w = new Worker(WORKER, { eval: true, workerData: buffer });
      this.running.add(w);
      // A worker that fails leaves the pages to the request thread: slower, never wrong.
      const done = () => {
        this.running.delete(w);
        resolve();
        void w.terminate();
      };
      w.once('message', done);
      w.once('error', done);
      w.once('exit', done);
    });
  };

  /** Threads at work now. */
  get threads(): number {
    return this.running.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.running].map((w) => w.terminate()));
  }
}
