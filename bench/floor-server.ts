/**
 * Baselines for bench:ingest on tracklake's own HTTP layer, duplicate index and durable log, without
 * shipping. Arguments: a scratch directory for the log, then the mode:
 * - `floor` (c): preparing cut down to JSON.parse and fingerprinting the ids, on the request thread: no
 *   validation, mapping, enrichment, CSV or worker thread. Every durable collector needs at least these parts,
 *   so their rate is how far a whole collector can get on this machine.
 * - `validated` (e): the collector's worker thread, preparing cut down to parsing, validating every message
 *   and fingerprinting (bench/cut-prepare.ts): the collector without the work it does for its tracking files.
 */
import path from 'node:path';
import { buildServer } from '../src/api/server.js';
import { makeLogger } from '../src/cli/common.js';
import { loadConfig } from '../src/config/config.js';
import { Collector } from '../src/ingest/collector.js';
import { DedupIndex } from '../src/ingest/dedup.js';
import type { RawRequest } from '../src/ingest/prepare.js';
import { WorkerPool, type Preparer } from '../src/ingest/preparer.js';
import { WriteAheadLog } from '../src/ingest/wal.js';
import { systemClock } from '../src/lib/clock.js';
import { Metrics } from '../src/lib/metrics.js';
import { parseOnly } from './cut-prepare.js';

const config = loadConfig({ flags: { port: 0, walDir: path.join(process.argv[2]!, 'floor-wal'), logLevel: 'info' } });
const logger = makeLogger(config.logLevel);
// Never shipped, so one segment takes the whole run.
const wal = await WriteAheadLog.open(config.walDir, { maxSegmentBytes: Number.MAX_SAFE_INTEGER });
const metrics = new Metrics();
const collector = new Collector({ wal, dedup: new DedupIndex(24 * 3600_000, systemClock), metrics, maxBufferBytes: Number.MAX_SAFE_INTEGER });

const mode = process.argv[3] ?? 'floor';
if (mode !== 'floor' && mode !== 'validated') throw new Error(`unknown mode ${mode}: floor or validated`);
const preparer: Preparer = mode === 'floor'
  ? { prepare: async (req: RawRequest) => parseOnly(req), takeObserved: () => [], setPlans: () => undefined, setSuppressions: async () => undefined, close: async () => {} }
  : new WorkerPool({ sources: config.sources, events: config.events }, 1, logger, new URL('./validate-worker.js', import.meta.url));

const app = await buildServer({ config, collector, preparer, clock: systemClock, metrics, logger, readiness: () => ({ ready: true, checks: {} }) });
const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`{"address":"${address}"}\n`);
process.on('SIGTERM', () => {
  void app.close().then(() => wal.close()).then(() => preparer.close()).then(() => process.exit(0));
});
