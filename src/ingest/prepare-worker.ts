/** A request worker thread (see preparer.ts): prepares the groups of requests the pool hands it. */
import { workerData } from 'node:worker_threads';
import { FrameArena } from './frame-arena.js';
import { RequestPreparer } from './prepare.js';
import { answerJobs, type WorkerData } from './preparer.js';

const { settings, arena } = workerData as WorkerData;
const frames = new FrameArena(arena);
const preparer = new RequestPreparer(settings, (size) => frames.alloc(size));
answerJobs(
  (req) => preparer.prepare(req),
  frames,
  () => preparer.observed.take(),
  (plans) => preparer.setPlans(plans),
  (lists) => preparer.setSuppressions(lists),
);
