/** The read side as a part of a process: `tracklake api` alone, or beside the collector in `tracklake serve`. */
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { s3Settings } from '../config/config.js';
import { metricSet } from '../jobs/aggregates/metrics.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import { ReadCache } from '../query/cache.js';
import { buildReadServer } from '../query/server.js';
import { createToken, loadSecret } from '../query/tokens.js';
import { WebAssets } from '../query/web.js';
import { openStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/store.js';
import { makeLogger } from './common.js';
import { Regulations } from '../privacy/regulations.js';
import { loadPrivacySecret } from '../privacy/secret.js';

export interface ReadSide {
  app: FastifyInstance;
  cache: ReadCache;
  /** http://host:port of the dashboard. */
  url: string;
  close(): Promise<void>;
}

/** The cache lies in the state folder, beside the log (as the API secret does). */
export const cacheFile = (config: Config) => path.join(path.dirname(path.resolve(config.walDir)), 'read-cache.duckdb');

export async function startReadSide(config: Config, store: ObjectStore, logger: Logger, clock: Clock = systemClock): Promise<ReadSide> {
  const secret = await loadSecret(config.apiSecret, config.walDir);
  const cache = await ReadCache.open({
    store, file: cacheFile(config), metrics: metricSet(config.metrics), clock, logger, tailDays: config.lookbackDays, tmpDir: config.scratchDir,
    sessions: {
      dir: path.join(path.dirname(cacheFile(config)), 'read-cache-sessions'),
      inactivityMinutes: config.inactivityMinutes,
      includeBots: config.sessionsIncludeBots,
      memoryLimitBytes: config.jobMemoryLimit,
    },
  });
  try {
    // The first load before the first answer: a dashboard on an empty cache would show zeros that are not.
    await cache.refresh();
    cache.start(config.apiRefreshSeconds * 1000);
    const privacySecret = await loadPrivacySecret(config.privacySecret, store);
    const privacy = { regulations: new Regulations(store, privacySecret, clock), secret: privacySecret };
    const app = await buildReadServer({ config, cache, secret, clock, logger, web: WebAssets.load(), privacy });
    const address = await app.listen({ port: config.apiPort, host: config.apiHost }).catch((e: NodeJS.ErrnoException) => {
      throw new ConfigError(e.code === 'EADDRINUSE' || e.code === 'EACCES' ? 'apiPort' : 'apiHost', `the read side cannot listen on ${config.apiHost}:${config.apiPort} (${e.code})`);
    });
    const port = (app.server.address() as { port: number }).port;
    const host = config.apiHost === '0.0.0.0' || config.apiHost === '::' ? '127.0.0.1' : config.apiHost;
    logger.info({ address, computedThrough: cache.computedThrough }, 'read side listening');
    return {
      app,
      cache,
      url: `http://${host}:${port}`,
      async close() {
        await app.close();
        await cache.close();
      },
    };
  } catch (e) {
    await cache.close();
    throw e;
  }
}

/** What to open to see the data: the dashboard with a token for the first tenant (a day's token). */
export async function dashboardHint(config: Config, url: string, clock: Clock = systemClock): Promise<string> {
  const tenant = Object.values(config.sources)[0]!;
  const token = await createToken({ tenant }, 86_400, await loadSecret(config.apiSecret, config.walDir), clock);
  return `Dashboard and query API for tenant "${tenant}" (this link's token lasts a day; \`tracklake token create\` makes more):\n  ${url}/?token=${token}\n`;
}

/** `tracklake api`: the read side alone (any number of read nodes can serve one bucket). */
export async function apiCommand(config: Config): Promise<number> {
  const logger = makeLogger(config.logLevel);
  const store = await openStore(config.storage, s3Settings(config));
  const side = await startReadSide(config, store, logger);
  process.stderr.write(`\ntracklake read side on ${side.url} (storage: ${store.location})\n${await dashboardHint(config, side.url)}\n`);
  return new Promise<number>((resolve) => {
    const stop = async () => {
      await side.close();
      resolve(0);
    };
    process.once('SIGTERM', () => void stop());
    process.once('SIGINT', () => void stop());
  });
}
