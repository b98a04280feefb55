/**
 * One collector node: the log, the dedup index rebuilt from it, the collector and the shipper, wired from
 * the configuration. `serve` and the tests both start nodes through here.
 */
import type { Logger } from 'pino';
import { hashesAddresses, retentionSettings, type Config } from '../config/config.js';
import { loadPrivacySecret } from '../privacy/secret.js';
import type { PrivacyGate } from '../privacy/ship-filter.js';
import { PrivacyWatcher } from '../privacy/watch.js';
import type { Clock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import { Metrics } from '../lib/metrics.js';
import { watchPauses } from '../lib/pauses.js';
import type { ObjectStore } from '../storage/store.js';
import os from 'node:os';
import { Collector } from './collector.js';
import { keys } from '../lake/layout.js';
import { LiveCounter, type LiveFile, parseLiveFile } from '../lake/live.js';
import { BYTES_PER_ID, DedupIndex, countIds, readIdsFiles } from './dedup.js';
import { readRecords } from './records.js';
import { Prefaulter } from './prefault.js';
import { openPreparer, type Preparer } from './preparer.js';
import { Shipper } from './shipper.js';
import { RedisState } from '../storage/redis.js';
import { firstSequence, WriteAheadLog } from './wal.js';
import { describeHolder, NodeClaim, STALE_MS } from './node-claim.js';
import { SchemaRecorder } from '../plan/observe.js';
import { tenantPlans } from '../plan/plan.js';

export interface IngestNode {
  wal: WriteAheadLog;
  dedup: DedupIndex;
  collector: Collector;
  preparer: Preparer;
  clock: Clock;
  shipper: Shipper;
  metrics: Metrics;
  /** The state shared with the other collectors on the bucket (dedupRedisUrl), when configured. */
  shared: RedisState | undefined;
  /** The readers of the log beside the shipper (destinations), as the caller wired them. */
  readers: LogReaders | undefined;
  /** This node's entry in the bucket: shipping waits while another collector runs with its id. */
  nodeClaim: NodeClaim;
  readiness: () => { ready: boolean; checks: Record<string, boolean | string> };
  /** Messages acknowledged per tenant and minute, the last half hour (the live panel's numbers). */
  live: LiveCounter;
  /**
   * Reads the configured plan files again and puts them in force for the requests that follow. A plan that
   * cannot be used is refused (the error says why) and the plans in force stay.
   */
  reloadPlans(): void;
  /** Reads the privacy regulations now (SIGHUP); throws when storage cannot be read. */
  reloadPrivacy(): Promise<void>;
  /** Stops accepting, ships everything, closes the log. True when everything reached storage. */
  close(): Promise<boolean>;
}

/** Readers of the log beside the shipper (forward/: the destinations), wired in by the caller. */
export interface LogReaders {
  start(): void;
  stop(): Promise<void>;
  /** Names of the readers whose last attempt failed (for /ready's checks). */
  failing(): string[];
}

export interface IngestDeps {
  store: ObjectStore;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
  /** Opens the log's readers once the log is open and before anything ships (they hold segments). */
  readers?: (wal: WriteAheadLog, metrics: Metrics, privacy: PrivacyGate) => Promise<LogReaders>;
}

export async function openIngest(config: Config, deps: IngestDeps): Promise<IngestNode> {
  // A plan that cannot be used stops start-up here, before the log is opened or anything listens.
  const readPlans = () => Object.fromEntries([...tenantPlans(config.plans)].map(([tenant, p]) => [tenant, { file: p.file, text: p.text }]));
  const plans = readPlans();
  const metrics = deps.metrics ?? new Metrics();
  let shipper: Shipper | undefined;
  const windowMs = config.dedupWindowHours * 3600_000;
  const prefaulter = new Prefaulter();
  const dedup = new DedupIndex(windowMs, deps.clock, { maxIds: Math.floor(config.dedupMaxBytes / BYTES_PER_ID), prefault: prefaulter.prefault });
  // Sized once for the ids about to be loaded, so loading a large window moves nothing.
  const startedAt = deps.clock.now();
  await dedup.presize(await countIds(config.walDir, startedAt - windowMs));
  // The index holds the ids of the segments not yet shipped (read as the log recovers them) and of the id
  // files written for the shipped ones.
  const wal = await WriteAheadLog.open(config.walDir, {
    maxSegmentBytes: config.maxSegmentBytes,
    nodeId: config.nodeId,
    firstSeq: firstSequence(deps.clock.now()),
    onSegmentFull: () => void shipper?.flush(),
    onWrite: (ms) => metrics.logWrites.observe(ms / 1000),
    onRecovered: (payload) => readRecords(payload, { record: (hi, lo, at) => dedup.load(hi, lo, at, startedAt) }),
  });
  // Another collector running with this node id is refused before anything listens. Storage down at start
  // does not stop the start: shipping waits for a first look, as it waits for the privacy regulations.
  const nodeClaim = new NodeClaim({ store: deps.store, clock: deps.clock, logger: deps.logger, node: wal.nodeId, log: wal.logId });
  const holder = await nodeClaim.look().catch((e: Error) => void deps.logger.warn({ err: e.message }, 'node id not checked in the bucket at start-up; will retry (nothing ships before it is)'));
  if (holder) {
    await wal.close();
    throw new ConfigError('nodeId', `${describeHolder(holder, deps.clock.now())}: give each collector its own nodeId (an entry not refreshed for ${STALE_MS / 1000} s is a collector gone)`);
  }
  nodeClaim.start();
  await readIdsFiles(config.walDir, startedAt - windowMs, (hi, lo, at) => dedup.load(hi, lo, at, startedAt));
  // Expiry, compaction when idle, and the budget's warning: each tick does a bounded slice of work.
  let warned = 0;
  const maintainTimer = setInterval(() => {
    const now = deps.clock.now();
    dedup.maintain(now);
    const effective = dedup.effectiveWindowMs(now);
    if (effective < windowMs && now - warned > 600_000) {
      warned = now;
      deps.logger.warn({ effectiveWindowSeconds: Math.round(effective / 1000), configuredWindowSeconds: windowMs / 1000, ids: dedup.ids, dedupMaxBytes: config.dedupMaxBytes }, 'duplicate window shortened: more ids than dedupMaxBytes holds (README, Operations)');
    }
  }, 1000);
  maintainTimer.unref();
  // A request-thread pause of 100 ms or more is logged with its collections and the index's size then.
  const pauses = watchPauses(100, (p) => deps.logger.warn({ ...p, dedupIds: dedup.ids, dedupBytes: dedup.bytes, dedupCompacting: dedup.compacting, rssBytes: process.memoryUsage.rss(), heapBytes: process.memoryUsage().heapUsed }, 'event loop paused'));
  metrics.dedupState = () => ({ windowSeconds: dedup.effectiveWindowMs() / 1000, ids: dedup.ids, bytes: dedup.bytes });

  const live = new LiveCounter();
  const collector = new Collector({ wal, dedup, metrics, maxBufferBytes: config.maxBufferBytes, live });
  const livePublisher = config.liveIntervalMs > 0 ? await publishLive(live, wal.nodeId, config.liveIntervalMs, deps) : undefined;
  const workers = config.ingestWorkers ?? Math.min(8, os.availableParallelism() - 1);
  // Hashed addresses need the privacy secret before the first request; the suppression lists can follow.
  const privacySecret = hashesAddresses(config) ? await loadPrivacySecret(config.privacySecret, deps.store) : config.privacySecret;
  const forward = config.destinations.length > 0;
  const preparer = openPreparer({ sources: config.sources, events: config.events, plans, retention: retentionSettings(config), privacySecret, forward: config.destinations.map(({ tenants, events, includeBlocked }) => ({ tenants, events, includeBlocked })) }, workers, deps.logger);
  const privacy = new PrivacyWatcher({ store: deps.store, configuredSecret: privacySecret, clock: deps.clock, logger: deps.logger, refreshMs: config.privacyRefreshSeconds * 1000, apply: (lists) => preparer.setSuppressions(lists) });
  // Read once before the collector listens, so a restart applies every suppression at once; storage being
  // down does not stop the collector (the shipper waits for a first read instead).
  await privacy.refresh().catch((e: Error) => deps.logger.warn({ err: e.message }, 'privacy regulations not read at start-up; will retry (nothing ships before they are read)'));
  privacy.start();
  const schemas = new SchemaRecorder(deps.store, wal.nodeId);
  const recordSchemas = async () => {
    for (const o of preparer.takeObserved()) schemas.add(o);
    await schemas.flush().catch((e: Error) => deps.logger.warn({ err: e.message }, 'observed schemas not written; will retry'));
  };
  const schemaTimer = setInterval(() => void recordSchemas(), config.flushIntervalMs);
  schemaTimer.unref();
  // Shared with the other collectors on the bucket, when configured (its URL was checked with the
  // configuration): Redis being down does not stop the start; shipping waits for it, as for storage.
  const shared = config.dedupRedisUrl ? await RedisState.open(config.dedupRedisUrl) : undefined;
  if (shared) deps.logger.info({ redis: shared.where }, 'duplicates removed across collectors through shared state');
  // Holds on the log before anything ships, so no segment a destination needs is released.
  const readers = await deps.readers?.(wal, metrics, privacy);
  shipper = new Shipper({ wal, store: deps.store, clock: deps.clock, logger: deps.logger, metrics, flushIntervalMs: config.flushIntervalMs, dedupWindowMs: windowMs, privacy, claims: windowMs > 0 ? shared : undefined, nodeClaim });
  const pending = wal.sealed().length;
  if (pending > 0) deps.logger.info({ segments: pending, nodeId: wal.nodeId }, 'recovered log segments from a previous run; shipping them');
  shipper.start();
  readers?.start();

  const s = shipper;
  return {
    wal,
    dedup,
    collector,
    preparer,
    clock: deps.clock,
    shipper: s,
    metrics,
    shared,
    readers,
    nodeClaim,
    reloadPlans() {
      preparer.setPlans(readPlans());
    },
    reloadPrivacy: () => privacy.refresh(),
    readiness() {
      const storageOk = s.storageHealthy;
      const underBudget = wal.bufferedBytes <= config.maxBufferBytes;
      const log = !wal.writable ? 'not writable' : underBudget ? true : 'over --max-buffer-bytes';
      const accepting = collector.accepting ? true : 'not accepting requests (starting or stopping)';
      // A failing destination is named, but ingest stays ready: its messages wait in the log or the bucket.
      const failing = readers?.failing() ?? [];
      const forwarding = failing.length === 0 ? true : `failing: ${failing.join(', ')}`;
      const nodeId = nodeClaim.status();
      return { ready: storageOk && log === true && accepting === true && nodeId === true, checks: { accepting, log, storage: storageOk ? true : (s.lastError ?? 'no recent upload'), nodeId, ...(forward ? { destinations: forwarding } : {}) } };
    },
    live,
    async close() {
      clearInterval(maintainTimer);
      pauses.stop();
      clearInterval(schemaTimer);
      privacy.stop();
      collector.close();
      const shipped = await s.stop(config.shutdownTimeoutMs);
      await readers?.stop();
      await wal.close();
      await preparer.close();
      await recordSchemas();
      await livePublisher?.stop();
      await prefaulter.close();
      await shared?.close();
      await nodeClaim.stop();
      return shipped;
    },
  };
}

/**
 * Writes the live counts to `live/<node>.json` every intervalMs while they change (and once at the stop),
 * after taking back the counts of this node's previous run. A failed write is logged and tried again at
 * the next tick: the counts are statistics, and nothing else waits on them.
 */
async function publishLive(live: LiveCounter, node: string, intervalMs: number, deps: IngestDeps): Promise<{ stop(): Promise<void> }> {
  const key = keys.live(node);
  const earlier = parseLiveFile(await deps.store.get(key).catch(() => undefined));
  if (earlier) live.restore(earlier);
  // One write at a time: while the bucket is slow, ticks that find a write in flight let it be (the next
  // write takes whatever was counted meanwhile), so writes never queue up behind an outage.
  let writing: Promise<void> | undefined;
  const write = () => {
    live.changed = false;
    const file: LiveFile = { version: 1, node, at: deps.clock.now(), minutes: live.snapshot(deps.clock.now()) };
    writing = deps.store
      .put(key, JSON.stringify(file))
      .catch((e: Error) => {
        live.changed = true;
        deps.logger.warn({ err: e.message, key }, 'live counts not written; will retry');
      })
      .finally(() => (writing = undefined));
    return writing;
  };
  const timer = setInterval(() => {
    if (live.changed && !writing) void write();
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await writing;
      if (live.changed) await write();
    },
  };
}
