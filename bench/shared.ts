/**
 * bench:shared — the collector with its ids claimed in a shared Redis (`dedupRedisUrl`, exactly once across
 * nodes) against the same collector without, on bench:ingest's traffic, in BENCH_ROUNDS (2) interleaved
 * rounds, best of each. Target: with ≥ 0.9 × without. Then what Redis holds per id: its memory over the ids
 * claimed (a real redis-server, started here as the tests start it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { startRedis } from '../test/redis.js';
import { payloadTemplates, start } from './load.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const PER_BATCH = 20;

const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-shared-'));
const templates = payloadTemplates(PER_BATCH);
const redis = await startRedis();
console.log(`bench:shared — ${DURATION} s per run, ${ROUNDS} rounds, ${CONNECTIONS} connections, ${PER_BATCH} events per request, ${os.cpus().length} cores`);
let runs = 0;
const measure = async (extra: string[]) => {
  const run = path.join(dir, `run-${runs++}`);
  // Flushes every 5 s, as bench:ingest: the claims are made while the load runs.
  const server = await start([path.join(here, '../src/cli/main.js'), 'serve', '--port', '0', '--storage', path.join(run, 'data'), '--state-dir', run, '--log-level', 'info', '--flush-interval-ms', '5000', '--no-api', '--no-scheduler', ...extra], dir);
  let n = 0;
  const r = await autocannon({
    url: `${server.url}/v1/batch`, method: 'POST', connections: CONNECTIONS, duration: DURATION,
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('dev:').toString('base64')}` },
    requests: [{ setupRequest: (req) => ({ ...req, body: templates[n % templates.length]!.replaceAll('@@', `r${runs}-${n++}`) }) }],
  });
  await server.stop(); // ships (and claims) the rest
  rmSync(run, { recursive: true, force: true });
  return ((r.requests.total - r.non2xx) * PER_BATCH) / DURATION;
};
try {
  let without = 0;
  let withRedis = 0;
  for (let round = 0; round < ROUNDS; round++) {
    without = Math.max(without, await measure([]));
    withRedis = Math.max(withRedis, await measure(['--dedup-redis-url', redis.url]));
  }
  const client = new Redis(redis.url);
  const ids = await client.dbsize();
  const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
  const empty = 1_000_000; // a fresh redis-server's own memory, about 1 MB: left out of the per-id figure
  client.disconnect();
  const ratio = withRedis / without;
  console.log(`collector without shared state   ${Math.round(without).toString().padStart(8)} events/s`);
  console.log(`collector with ids claimed in Redis ${Math.round(withRedis).toString().padStart(8)} events/s`);
  console.log(`ratio = ${ratio.toFixed(2)} (target ≥ 0.90) ${ratio >= 0.9 ? 'PASS' : 'FAIL'}`);
  console.log(`Redis: ${ids} ids claimed, ${(used / 2 ** 20).toFixed(0)} MiB used: ${((used - empty) / ids).toFixed(0)} bytes per id`);
  process.exitCode = ratio >= 0.9 ? 0 : 1;
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
