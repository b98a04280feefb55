/** `tracklake serve`: the collector and the nightly jobs, in one process. */
import type { Config } from '../config/config.js';
import { isDevSources, s3Settings } from '../config/config.js';
import { buildServer } from '../api/server.js';
import { destinationReaders } from '../forward/destinations.js';
import { openIngest } from '../ingest/node.js';
import { systemClock } from '../lib/clock.js';
import { openStore } from '../storage/open.js';
import { startNightly } from '../jobs/scheduler.js';
import { nightlyThreads } from './nightly.js';
import { ConfigError } from '../lib/errors.js';
import type { Cron } from 'croner';
import type { FastifyInstance } from 'fastify';
import { makeLogger } from './common.js';
import { dashboardHint, startReadSide, type ReadSide } from './api.js';
import { openState } from './state.js';

/** A node that dies mid-run leaves the nightly lease this long before another node takes the night over. */
const NIGHTLY_LEASE_MS = 60_000;
/** A stop signal repeated within this long is the same stop handed on (by npm), not a second one (serve). */
const REPEAT_SIGNAL_MS = 1000;

export async function serve(config: Config): Promise<number> {
  const logger = makeLogger(config.logLevel);
  // The state folder first: a second node on it is refused before anything else is touched.
  const state = await openState(config, (msg, details) => logger.warn(details, msg), 'serve');
  const store = await openStore(config.storage, s3Settings(config));
  // 1. Recover the log (and the duplicate window): nothing listens yet.
  const node = await openIngest(config, { store, clock: systemClock, logger, readers: destinationReaders(config, { store, clock: systemClock, logger }) });
  node.collector.hold();

  // 2. Signal handlers, before any port is bound: from here on SIGTERM ships everything, whatever is running.
  let app: FastifyInstance | undefined;
  let readSide: ReadSide | undefined;
  let nightly: Cron | undefined;
  const nightlyTasks = nightlyThreads(config);
  let stopping: Promise<number> | undefined;
  const stop = (signal: string) =>
    (stopping ??= (async () => {
      logger.info({ signal }, 'stopping: no new requests, flushing the log to storage');
      nightly?.stop();
      node.collector.close();
      // The log ships while the servers close: a read cache in its first load stops at its next batch. A
      // nightly task running now ends where it is: its outputs are atomic, and the next run catches up.
      const [shipped] = await Promise.all([node.close(), app?.close(), readSide?.close(), nightlyTasks.stop()]);
      if (shipped) logger.info('everything shipped; bye');
      else logger.warn('storage did not take everything in time; the rest stays in the log and ships on next start');
      return shipped ? 0 : 75;
    })());
  let stopped: (code: number) => void = () => undefined;
  const exit = new Promise<number>((resolve) => (stopped = resolve));
  // A signal again within a second is a copy, not a wish: `npm start` under systemd (whose stop signals the
  // whole group) or a `kill` of the process group hands the collector a second SIGTERM from npm, which
  // ended it mid-shipment. A later one stops it at once (the log keeps what did not ship).
  let firstSignalAt: number | undefined;
  const onSignal = (signal: string) => {
    const now = performance.now();
    if (firstSignalAt === undefined) {
      firstSignalAt = now;
      return void stop(signal).then(stopped);
    }
    if (now - firstSignalAt < REPEAT_SIGNAL_MS) return logger.info({ signal }, 'already stopping');
    logger.warn({ signal }, 'stopped at once: what did not ship stays in the log and ships on next start');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  // SIGHUP reads the plan files again: a plan edit takes effect without a restart (README, "Tracking plans").
  process.on('SIGHUP', () => {
    try {
      node.reloadPlans();
      logger.info({ plans: config.plans }, 'tracking plans reloaded');
    } catch (e) {
      logger.error({ err: (e as Error).message }, 'tracking plans not reloaded: the plans in force stay');
    }
    // And the privacy regulations, at once rather than at the next refresh.
    node.reloadPrivacy().catch((e: Error) => logger.warn({ err: e.message }, 'privacy regulations not read; the lists in force stay'));
  });
  logger.info({ segments: node.wal.sealed().length }, 'log recovered; SIGTERM now ships everything');

  // 3. Every port bound: requests that arrive meanwhile are refused with a retryable 503 (`starting`), so a
  //    start-up that fails here has acknowledged nothing.
  let listening = '';
  try {
    app = await buildServer({ config, collector: node.collector, preparer: node.preparer, clock: node.clock, metrics: node.metrics, logger, readiness: node.readiness });
    const bound = app;
    listening = await bound.listen({ port: config.port, host: config.host }).catch((e: NodeJS.ErrnoException) => {
      const where = `cannot listen on ${config.host}:${config.port} (${e.code})`;
      if (e.code === 'EADDRINUSE' || e.code === 'EACCES') throw new ConfigError('port', where);
      // Not an address of this machine, or a name that does not resolve.
      if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') throw new ConfigError('host', where);
      throw e;
    });
    if (config.api && !stopping) {
      const side = await startReadSide(config, state, store, logger, systemClock, { node: node.wal.nodeId, minutes: (now, tenant) => node.live.snapshot(now, tenant) });
      // A SIGTERM that came while it started finds no read side to close: close it here.
      if (stopping) await side.close();
      else readSide = side;
    }
  } catch (e) {
    if (!stopping) {
      await stop('start-up failed');
      throw e;
    }
  }
  if (stopping) return exit;

  // 4. Open: requests are accepted and /ready answers 200. Only now: a process that cannot listen runs no jobs.
  node.collector.open();
  nightly = config.scheduler
    ? startNightly({
        time: config.scheduleTime, timezone: config.timezone, clock: systemClock, logger,
        tasks: nightlyTasks.tasks,
        // With shared state, one node of the bucket runs the night (the lease's holder, renewed while it works).
        lease: node.shared && { leases: node.shared, holder: node.wal.nodeId, ttlMs: NIGHTLY_LEASE_MS },
      })
    : undefined;
  if (nightly) logger.info({ at: config.scheduleTime, timezone: config.timezone, next: nightly.nextRun()?.toISOString() }, 'nightly jobs scheduled');
  const address = app!.server.address();
  const port = address && typeof address === 'object' ? address.port : config.port;
  logger.info({ address: listening, storage: store.location, walDir: config.walDir, nodeId: node.wal.nodeId, flushIntervalMs: config.flushIntervalMs }, 'collector listening');
  if (Object.keys(config.plans).length > 0) logger.info({ plans: config.plans }, 'tracking plans checked at the door');
  if (isDevSources(config)) {
    logger.warn('no sources configured: accepting the embedded default write key "dev" for tenant "demo"; set TRACKLAKE_SOURCES or "sources" for production');
  }
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const key = Object.keys(config.sources)[0]!;
  process.stderr.write(
    `\ntracklake collector on http://${host}:${port} (storage: ${store.location})\n` +
      `Send a first event:\n  curl -u ${key}: -H 'Content-Type: application/json' \\\n` +
      `    -d '{"userId":"u1","event":"Product Viewed","properties":{"product_id":"p1","merchant_id":"m1"}}' \\\n` +
      `    http://${host}:${port}/v1/track\n` +
      `It reaches ${store.location}/tracks/<yyyy>/<mm>/<dd>/ within ${config.flushIntervalMs / 1000} s, or at once on Ctrl-C.\n` +
      `Browsers and apps: point Segment's or RudderStack's SDKs here (README, "Clients"); analytics.js is served at\n` +
      `  http://${host}:${port}/analytics.js/v1/${key}/analytics.min.js\n\n` +
      (readSide ? `${await dashboardHint(config, state, readSide.url)}\n` : ''),
  );
  return exit;
}
