import { runAggregates } from './dist/src/jobs/aggregates/job.js';
import { metricSet } from './dist/src/jobs/aggregates/metrics.js';
import { LocalStore } from './dist/src/storage/local.js';
import { writeDay } from './dist/bench/tracks-gen.js';
import { pino } from 'pino';
import fs from 'node:fs';
const logger = pino({ level: 'silent' });
const metrics = metricSet();
if (!fs.existsSync('/tmp/zzone')) {
  await writeDay('/tmp/zzone', '2026-03-14', 200, 1, 2);
  await runAggregates(['2026-03-14'], { store: new LocalStore('/tmp/zzone'), metrics, logger });
  await writeDay('/tmp/zzone', '2026-03-15', 20000, 2, 3);
}
const m = async (root) => { const t = performance.now(); await runAggregates(['2026-03-15'], { store: new LocalStore(root), metrics, logger, force: true }); return performance.now() - t; };
for (let i = 0; i < 4; i++) console.log('1-day', (await m('/tmp/zzone')).toFixed(0), '365-day', (await m('/tmp/zzhist')).toFixed(0));
