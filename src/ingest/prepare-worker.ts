/** A request worker thread (see preparer.ts): prepares the groups of requests the pool hands it. */
import { parentPort, workerData } from 'node:worker_threads';
import { RequestPreparer, type PrepareResult, type PrepareSettings } from './prepare.js';
import { ownBuffer, type WorkerAnswer, type WorkerJob } from './preparer.js';

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
      const frame = ownBuffer(r.value.frame);
      const fingerprints = ownBuffer(r.value.fingerprints);
      if (frame) moved.push(frame);
      if (fingerprints) moved.push(fingerprints);
    }
    answer = { id, results };
  } catch (e) {
    answer = { id, crash: (e as Error).stack ?? String(e) };
    moved.length = 0;
  }
  parentPort!.postMessage(answer, moved);
});
