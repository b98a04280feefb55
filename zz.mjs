import { runSessions } from './dist/src/jobs/sessions/job.js';
import { LocalStore } from './dist/src/storage/local.js';
import { Engine } from './dist/src/jobs/engine.js';
import { writeDay } from './dist/bench/tracks-gen.js';
import { pino } from 'pino';
import fs from 'node:fs';
const root = process.argv[2], rows = Number(process.argv[3]);
if (!fs.existsSync(root)) await writeDay(root, '2026-03-15', rows, 8, 1);
for (const name of ['run', 'all', 'copyToCsv']) {
  const orig = Engine.prototype[name];
  Engine.prototype[name] = async function (...a) { const t = performance.now(); const r = await orig.apply(this, a); console.log(name, (performance.now() - t).toFixed(0), a[0].replace(/\s+/g, ' ').slice(0, 80)); return r; };
}
const t = performance.now();
await runSessions(['2026-03-15'], { store: new LocalStore(root), logger: pino({ level: 'silent' }), inactivityMinutes: 30, includeBots: false, lookbackDays: 35, force: true });
console.log('total', (performance.now() - t).toFixed(0));
