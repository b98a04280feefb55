/** The worker thread of bench:ingest's (e): the pool's protocol with preparing cut down to validation. */
import { answerJobs } from '../src/ingest/preparer.js';
import { validateOnly } from './cut-prepare.js';

answerJobs(validateOnly, undefined);
