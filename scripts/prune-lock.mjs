// The registry this project installs from carries only the linux-x64 builds of DuckDB's native bindings.
// `npm install` still records the other platforms as optional edges of @duckdb/node-bindings without lock
// entries, and `npm ci` then refuses the lock as out of sync. This removes the edges to builds the registry
// does not have; run it after any `npm install` that rewrites package-lock.json (`npm run lock:prune`).
import { readFileSync, writeFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
let pruned = 0;
for (const [where, entry] of Object.entries(lock.packages)) {
  for (const name of Object.keys(entry.optionalDependencies ?? {})) {
    if (!lock.packages[`node_modules/${name}`] && !lock.packages[`${where}/node_modules/${name}`]) {
      delete entry.optionalDependencies[name];
      pruned++;
    }
  }
}
writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
console.log(`pruned ${pruned} optional edges without lock entries`);
