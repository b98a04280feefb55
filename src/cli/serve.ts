/** `tracklake serve`: the collector and the nightly jobs, in one process. */
import type { Config } from '../config/config.js';
import { isDevSources, s3Settings } from '../config/config.js';
import { buildServer } from '../api/server.js';
import { openIngest } from '../ingest/node.js';
import { systemClock } from '../lib/clock.js';
import { openStore } from '../storage/open.js';
import { startNightly } from '../jobs/scheduler.js';
import { aggregateTask } from './aggregate.js';
import { sessionsTask } from './sessions.js';
import { erasureTask } from './regulations.js';
import { ConfigError } from '../lib/errors.js';
import { makeLogger } from './common.js';
import { dashboardHint, startReadSide, type ReadSide } from './api.js';

export async function serve(config: Config): Promise<number> {
  const logger = makeLogger(config.logLevel);
  const store = await openStore(config.storage, s3Settings(config));
  const node = await openIngest(config, { store, clock: systemClock, logger });
  const app = await buildServer({ config, collector: node.collector, preparer: node.preparer, clock: node.clock, metrics: node.metrics, logger, readiness: node.readiness });
  const address = await app.listen({ port: config.port, host: config.host }).catch(async (e: NodeJS.ErrnoException) => {
    await node.close();
    const where = `cannot listen on ${config.host}:${config.port} (${e.code})`;
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES') throw new ConfigError('port', where);
    // Not an address of this machine, or a name that does not resolve.
    if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') throw new ConfigError('host', where);
    throw e;
  });
  let readSide: ReadSide | undefined;
  if (config.api) {
    readSide = await startReadSide(config, store, logger).catch(async (e: unknown) => {
      await app.close();
      await node.close();
      throw e;
    });
  }
  // Only once the collector is up: a process that cannot listen runs no jobs either.
  const nightly = config.scheduler
    ? startNightly({ time: config.scheduleTime, timezone: config.timezone, clock: systemClock, logger, tasks: [erasureTask(config, store, logger), aggregateTask(config, store, logger), sessionsTask(config, store, logger)] })
    : undefined;
  if (nightly) logger.info({ at: config.scheduleTime, timezone: config.timezone, next: nightly.nextRun()?.toISOString() }, 'nightly jobs scheduled');
  const port = app.server.address() && typeof app.server.address() === 'object' ? (app.server.address() as { port: number }).port : config.port;
  logger.info({ address, storage: store.location, walDir: config.walDir, nodeId: node.wal.nodeId, flushIntervalMs: config.flushIntervalMs }, 'collector listening');
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
      (readSide ? `${await dashboardHint(config, readSide.url)}\n` : ''),
  );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping: no new requests, flushing the log to storage');
      nightly?.stop();
      await readSide?.close();
      await app.close();
      const shipped = await node.close();
      if (shipped) logger.info('everything shipped; bye');
      else logger.warn('storage did not take everything in time; the rest stays in the log and ships on next start');
      resolve(shipped ? 0 : 75);
    };
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
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
}
