import { runAggregates } from './dist/src/jobs/aggregates/job.js';
import { metricSet } from './dist/src/jobs/aggregates/metrics.js';
import { LocalStore } from './dist/src/storage/local.js';
import { Engine } from './dist/src/jobs/engine.js';
import { pino } from 'pino';
const logger = pino({ level: 'silent' });
for (const name of ['run', 'all', 'copyToCsv']) {
  const orig = Engine.prototype[name];
  Engine.prototype[name] = async function (...a) { const t = performance.now(); const r = await orig.apply(this, a); console.log(name, (performance.now() - t).toFixed(0), a[0].replace(/\s+/g, ' ').slice(0, 90)); return r; };
}
const t = performance.now();
await runAggregates(['2026-03-15'], { store: new LocalStore('/tmp/zzbig'), metrics: metricSet(), logger, force: true });
console.log('total', (performance.now() - t).toFixed(0));
