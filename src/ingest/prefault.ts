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
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ id, buffer }) => {
  // 32-bit words, not bytes: a byte view of a buffer over 4 GiB is over the typed-array length limit.
  const words = new Int32Array(buffer, 0, Math.floor(buffer.byteLength / 4));
  // One write per 4 KiB page maps it; the value written is the zero it already holds.
  for (let i = 0; i < words.length; i += 1024) words[i] = 0;
  parentPort.postMessage(id);
});`;

export class Prefaulter {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, () => void>();

  /** Resolves once every page of the buffer has been written once. */
  readonly prefault: Prefault = (buffer) => {
    const id = this.nextId++;
    return new Promise<void>((resolve) => {
      this.waiting.set(id, resolve);
      const w = this.start();
      // Held while it has work (someone may be awaiting it), let go when idle so it never keeps the process up.
      w.ref();
      w.postMessage({ id, buffer });
    });
  };

  private start(): Worker {
    if (this.worker) return this.worker;
    // A worker of a few lines, kept with the code that needs it (eval: no module file to find at run time).
    const w = new Worker(WORKER, { eval: true });
    w.on('message', (id: number) => {
      this.waiting.get(id)?.();
      this.waiting.delete(id);
      if (this.waiting.size === 0) w.unref();
    });
    // A worker that dies leaves the pages to the request thread: slower, never wrong.
    w.on('error', () => this.release(w));
    w.on('exit', () => this.release(w));
    w.unref();
    this.worker = w;
    return w;
  }

  private release(w: Worker | undefined): void {
    if (this.worker === w) this.worker = undefined;
    for (const resolve of this.waiting.values()) resolve();
    this.waiting.clear();
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
    this.release(w);
  }
}
