import { runAggregates } from './dist/src/jobs/aggregates/job.js';
import { metricSet } from './dist/src/jobs/aggregates/metrics.js';
import { LocalStore } from './dist/src/storage/local.js';
import { writeDay } from './dist/bench/tracks-gen.js';
import { addDays } from './dist/src/lib/dates.js';
import { pino } from 'pino';
import fs from 'node:fs';
const logger = pino({ level: 'silent' });
const metrics = metricSet();
const root = '/tmp/zzhist';
if (!fs.existsSync(root)) {
  const days = Array.from({ length: 365 }, (_, i) => addDays('2026-03-15', -365 + i));
  for (const [i, d] of days.entries()) await writeDay(root, d, 200, 1, 10 + i);
  await runAggregates(days, { store: new LocalStore(root), metrics, logger });
  await writeDay(root, '2026-03-15', 20000, 2, 3);
}
const store = new LocalStore(root);
const orig = { list: store.list.bind(store), get: store.get.bind(store), put: store.put.bind(store) };
let tl = 0, tg = 0, tp = 0;
store.list = async (p) => { const t = performance.now(); const r = await orig.list(p); tl += performance.now() - t; return r; };
store.get = async (p) => { const t = performance.now(); const r = await orig.get(p); tg += performance.now() - t; return r; };
store.put = async (k, b) => { const t = performance.now(); const r = await orig.put(k, b); tp += performance.now() - t; return r; };
for (let i = 0; i < 3; i++) {
  tl = tg = tp = 0;
  const t = performance.now();
  let dayDone;
  await runAggregates(['2026-03-15'], { store, metrics, logger, force: true, onProgress: () => (dayDone = performance.now() - t) });
  console.log('total', (performance.now() - t).toFixed(0), 'day', dayDone.toFixed(0), 'list', tl.toFixed(0), 'get', tg.toFixed(0), 'put', tp.toFixed(0));
}
