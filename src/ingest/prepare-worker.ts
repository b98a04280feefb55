/** A request worker thread (see preparer.ts): prepares the requests the pool sends it. */
import { parentPort, workerData } from 'node:worker_threads';
import { RequestPreparer, type PrepareSettings } from './prepare.js';
import type { WorkerAnswer, WorkerJob } from './preparer.js';

const preparer = new RequestPreparer(workerData as PrepareSettings);

parentPort!.on('message', ({ id, req }: WorkerJob) => {
  let answer: WorkerAnswer;
  try {
    answer = { id, result: preparer.prepare(req) };
  } catch (e) {
    answer = { id, crash: (e as Error).stack ?? String(e) };
  }
  // The frame's and the fingerprints' memory moves to the request thread instead of being copied (each has
  // a buffer of its own).
  const moved: ArrayBuffer[] = [];
  if ('result' in answer && answer.result.ok) {
    for (const a of [answer.result.value.frame, answer.result.value.fingerprints]) {
      if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) moved.push(a.buffer as ArrayBuffer);
    }
  }
  parentPort!.postMessage(answer, moved);
});
