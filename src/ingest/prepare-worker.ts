/** A request worker thread (see preparer.ts): prepares the groups of requests the pool hands it. */
import { parentPort, workerData } from 'node:worker_threads';
import { RequestPreparer, type PrepareResult, type PrepareSettings } from './prepare.js';
import type { WorkerAnswer, WorkerJob } from './preparer.js';

const preparer = new RequestPreparer(workerData as PrepareSettings);

parentPort!.on('message', ({ id, reqs }: WorkerJob) => {
  let answer: WorkerAnswer;
  // The frames' and fingerprints' memory moves to the request thread instead of being copied (each has a
  // buffer of its own).
  const moved: ArrayBuffer[] = [];
  try {
    const results: PrepareResult[] = [];
    for (const req of reqs) {
      const r = preparer.prepare(req);
      results.push(r);
      if (!r.ok) continue;
      for (const a of [r.value.frame, r.value.fingerprints]) {
        if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.byteLength > 0) moved.push(a.buffer as ArrayBuffer);
      }
    }
    answer = { id, results };
  } catch (e) {
    answer = { id, crash: (e as Error).stack ?? String(e) };
    moved.length = 0;
  }
  parentPort!.postMessage(answer, moved);
});
