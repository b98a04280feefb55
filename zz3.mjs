import { runAggregates } from './dist/src/jobs/aggregates/job.js';
import { metricSet } from './dist/src/jobs/aggregates/metrics.js';
import { LocalStore } from './dist/src/storage/local.js';
import { Engine } from './dist/src/jobs/engine.js';
import { readTracksSql } from './dist/src/jobs/tracks.js';
import { writeDay } from './dist/bench/tracks-gen.js';
import { pino } from 'pino';
import fs from 'node:fs';
const logger = pino({ level: 'silent' });
const metrics = metricSet();
const root = '/tmp/zzbig';
let files;
if (!fs.existsSync(root)) files = await writeDay(root, '2026-03-15', 5000000, 8, 1);
else files = fs.readdirSync(root + '/tracks/2026/03/15').map(f => root + '/tracks/2026/03/15/' + f);
const raw = async () => { const e = await Engine.open(); const t = performance.now(); await e.all(`SELECT tenantid, coalesce(merchantid, '') AS merchantid, productid, count(*) FILTER (WHERE event = 'view') AS view, count(*) FILTER (WHERE event = 'share') AS share, count(*) FILTER (WHERE event = 'chat') AS chat FROM ${readTracksSql(files)} WHERE productid IS NOT NULL AND bot IS DISTINCT FROM true AND time IS NOT NULL GROUP BY ALL ORDER BY ALL`); e.close(); return performance.now() - t; };
for (let i = 0; i < 3; i++) {
  const t = performance.now(); let day;
  await runAggregates(['2026-03-15'], { store: new LocalStore(root), metrics, logger, force: true, onProgress: () => (day = performance.now() - t) });
  const job = performance.now() - t; const r = await raw(); console.log('raw', r.toFixed(0), 'job', job.toFixed(0), 'day', day.toFixed(0), 'ratio', (job / r).toFixed(2));
}
