/**
 * Touches a new buffer's memory pages on a thread of its own. The first write to each page of a fresh
 * allocation is a page fault; on this project's machines (virtual machines) one costs tens of microseconds,
 * so the duplicate index's next table (hundreds of MB) faulted in by the request thread's inserts stalled
 * requests for up to a second (bench:soak). Faulted in here instead, it is ready before it is used. The
 * same thread clears a table the index is done with, so it can be used again (ingest/dedup.ts, spare).
 */
import { Worker } from 'node:worker_threads';

/**
 * What the dedup index needs: have a buffer's pages touched, resolve when done (false: the thread failed and
 * the work may be undone; for faulting that only costs speed). `duty` is the share of a core
 * the thread may take (1: all it can): a table made ahead of need has time, and on a machine whose cores are
 * all busy serving, a thread faulting pages flat out took a core from requests for seconds (bench:soak:
 * request latency doubled while a 1.3 GB table was faulted in). With `zero`, every word is set to 0 instead: a
 * table the index is done with is cleared to be used again (its pages are in already), which no other thread
 * may touch meanwhile.
 */
export type Prefault = (buffer: SharedArrayBuffer, duty?: number, zero?: boolean) => Promise<boolean>;

const WORKER = `
const { parentPort, workerData: { buffer, duty, zero } } = require('node:worker_threads');
// 32-bit words, not bytes: a byte view of a buffer over 4 GiB is over the typed-array length limit.
const words = new Int32Array(buffer, 0, Math.floor(buffer.byteLength / 4));
const nap = new Int32Array(new SharedArrayBuffer(4));
// 16 MiB at a time, then a rest long enough to keep to the duty.
const CHUNK = 4 << 20;
for (let start = 0; start < words.length; start += CHUNK) {
  const t0 = performance.now();
  // One write per 4 KiB page maps it. An atomic OR with 0 writes the value the word holds, so a table that
  // the request thread already uses (the index's forced switch, ingest/dedup.ts) loses nothing.
  const end = Math.min(words.length, start + CHUNK);
  if (zero) words.fill(0, start, end);
  else for (let i = start; i < end; i += 1024) Atomics.or(words, i, 0);
  if (duty < 1) Atomics.wait(nap, 0, 0, (performance.now() - t0) * (1 / duty - 1));
}
parentPort.postMessage('done');`;

/**
 * A worker per buffer, ended once the buffer is faulted in. A long-lived worker kept every table it was
 * ever handed alive: its heap hardly allocates, so it seldom collects, and each buffer it had received stayed
 * referenced and resident (bench:soak at production size: 8 523 MiB resident for an index of 5 013 MiB). Ending the
 * worker drops its references at once; starting one costs a few milliseconds, a few dozen times a day.
 */
export class Prefaulter {
  private readonly running = new Set<Worker>();
  private closed = false;

  /** Resolves once every page of the buffer has been written once (false at once when no thread can do it). */
  readonly prefault: Prefault = (buffer, duty = 1, zero = false) => {
    if (this.closed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      // A worker of a few lines, kept with the code that needs it (eval: no module file to find at run time).
      const w = new Worker(WORKER, { eval: true, workerData: { buffer, duty: Math.min(1, Math.max(0.05, duty)), zero } });
      this.running.add(w);
      const done = (ok: boolean) => {
        this.running.delete(w);
        resolve(ok);
        void w.terminate();
      };
      w.once('message', () => done(true));
      w.once('error', () => done(false));
      w.once('exit', () => done(false));
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
