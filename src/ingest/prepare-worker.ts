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
  // The frame's memory moves to the request thread instead of being copied (it has a buffer of its own).
  const frame = 'result' in answer && answer.result.ok ? answer.result.value.frame : undefined;
  parentPort!.postMessage(answer, frame && frame.byteOffset === 0 && frame.byteLength === frame.buffer.byteLength ? [frame.buffer as ArrayBuffer] : []);
});
