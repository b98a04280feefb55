/** A request worker thread (see preparer.ts): prepares the groups of requests the pool hands it. */
import { workerData } from 'node:worker_threads';
import { RequestPreparer, type PrepareSettings } from './prepare.js';
import { answerJobs } from './preparer.js';

const preparer = new RequestPreparer(workerData as PrepareSettings);
answerJobs(
  (req) => preparer.prepare(req),
  () => preparer.observed.take(),
  (plans) => preparer.setPlans(plans),
  (lists) => preparer.setSuppressions(lists),
);
