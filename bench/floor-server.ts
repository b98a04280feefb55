/**
 * The floor for bench:ingest: tracklake's own HTTP layer, duplicate index and durable log, with preparing a
 * request cut down to JSON.parse and fingerprinting the ids: no validation, mapping, enrichment, CSV or
 * shipping, and no worker thread. Every durable Segment collector needs at least these parts, so their rate
 * is how far a whole collector can get on this machine. Argument: a scratch directory for the log.
 */
import path from 'node:path';
import { buildServer } from '../src/api/server.js';
import { makeLogger } from '../src/cli/common.js';
import { loadConfig } from '../src/config/config.js';
import { Collector } from '../src/ingest/collector.js';
import { DedupIndex } from '../src/ingest/dedup.js';
import { fingerprintInto } from '../src/ingest/fingerprint.js';
import type { PrepareResult, RawRequest } from '../src/ingest/prepare.js';
import type { Preparer } from '../src/ingest/preparer.js';
import { encodeFrame, WriteAheadLog } from '../src/ingest/wal.js';
import { systemClock } from '../src/lib/clock.js';
import { Metrics } from '../src/lib/metrics.js';

const config = loadConfig({ flags: { port: 0, walDir: path.join(process.argv[2]!, 'floor-wal'), logLevel: 'info' } });
const logger = makeLogger(config.logLevel);
// Never shipped, so one segment takes the whole run.
const wal = await WriteAheadLog.open(config.walDir, { maxSegmentBytes: Number.MAX_SAFE_INTEGER });
const metrics = new Metrics();
const collector = new Collector({ wal, dedup: new DedupIndex(24 * 3600_000, systemClock), metrics, maxBufferBytes: Number.MAX_SAFE_INTEGER });

const preparer: Preparer = {
  async prepare(req: RawRequest): Promise<PrepareResult> {
    const body = JSON.parse(Buffer.from(req.body.buffer, req.body.byteOffset, req.body.length).toString('utf8')) as { batch: Array<{ messageId: string }> };
    const fingerprints = new Int32Array(2 * body.batch.length);
    for (let i = 0; i < body.batch.length; i++) fingerprintInto('demo', body.batch[i]!.messageId, fingerprints, i);
    // The body itself is the record: the log's cost is in the bytes and the sync, not in their layout.
    return { ok: true, value: { tenant: 'demo', messages: body.batch.length, rejected: [], fingerprints, frame: encodeFrame(req.body) } };
  },
  async close() {},
};

const app = await buildServer({ config, collector, preparer, clock: systemClock, metrics, logger, readiness: () => ({ ready: true, checks: {} }) });
const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`{"address":"${address}"}\n`);
process.on('SIGTERM', () => {
  void app.close().then(() => wal.close()).then(() => process.exit(0));
});
