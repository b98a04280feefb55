/** The read side as a part of a process: `tracklake api` alone, or beside the collector in `tracklake serve`. */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { s3Settings } from '../config/config.js';
import { metricSet } from '../jobs/aggregates/metrics.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import { ReadCache } from '../query/cache.js';
import { buildReadServer } from '../query/server.js';
import type { LocalLive } from '../query/live.js';
import { createToken, loadSecret } from '../query/tokens.js';
import { WebAssets } from '../query/web.js';
import { openStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/store.js';
import { makeLogger } from './common.js';
import { openState, type StatePaths } from './state.js';
import { Regulations } from '../privacy/regulations.js';
import { loadPrivacySecret } from '../privacy/secret.js';

export interface ReadSide {
  app: FastifyInstance;
  cache: ReadCache;
  /** http://host:port of the dashboard. */
  url: string;
  close(): Promise<void>;
}

/** The cache and the token secret lie in the node's state folder (cli/state.ts), opened by the caller. */
export async function startReadSide(config: Config, state: StatePaths, store: ObjectStore, logger: Logger, clock: Clock = systemClock, live?: LocalLive): Promise<ReadSide> {
  const secret = await loadSecret(config.apiSecret, state.secret);
  const cache = await ReadCache.open({
    store, file: state.readCache, metrics: metricSet(config.metrics), clock, logger, tailDays: config.lookbackDays, tmpDir: config.scratchDir,
    sessions: {
      dir: state.readCacheSessions,
      inactivityMinutes: config.inactivityMinutes,
      includeBots: config.sessionsIncludeBots,
      memoryLimitBytes: config.jobMemoryLimit,
    },
  });
  try {
    const privacy = await regulationsApi(config, store, clock, logger);
    // The port is bound before the cache's first load (which can take a while on a year of files), so a port
    // that is taken stops the start-up at once; a query that arrives meanwhile waits until the days it reads
    // are loaded (newest first), since a dashboard on an empty cache would show zeros that are not.
    const app = await buildReadServer({ config, cache, secret, clock, logger, web: WebAssets.load(), privacy, store, live });
    const address = await app.listen({ port: config.apiPort, host: config.apiHost }).catch(async (e: NodeJS.ErrnoException) => {
      await app.close();
      throw new ConfigError(e.code === 'EADDRINUSE' || e.code === 'EACCES' ? 'apiPort' : 'apiHost', `the read side cannot listen on ${config.apiHost}:${config.apiPort} (${e.code})`);
    });
    cache.refresh().catch(
      (e: Error) => void logger.error({ err: e.message }, 'read cache: first load failed; serving what is loaded, retrying every refresh'),
    );
    cache.start(config.apiRefreshSeconds * 1000);
    const port = (app.server.address() as { port: number }).port;
    const host = config.apiHost === '0.0.0.0' || config.apiHost === '::' ? '127.0.0.1' : config.apiHost;
    logger.info({ address }, 'read side listening');
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

/**
 * The regulations API, when the privacy secret can be read (it lives in the bucket unless configured).
 * Storage being down at start-up does not keep the dashboard from starting: the API is then left out, and
 * the log says so.
 */
async function regulationsApi(config: Config, store: ObjectStore, clock: Clock, logger: Logger) {
  try {
    const secret = await loadPrivacySecret(config.privacySecret, store);
    return { regulations: new Regulations(store, secret, clock), secret };
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    logger.error({ err: (e as Error).message }, 'the privacy secret could not be read: the regulations API is off until a restart');
    return undefined;
  }
}

/** What to open to see the data: the dashboard with a token for the first tenant (a day's token). */
export async function dashboardHint(config: Config, state: StatePaths, url: string, clock: Clock = systemClock): Promise<string> {
  const tenant = Object.values(config.sources)[0]!;
  const token = await createToken({ tenant }, 86_400, await loadSecret(config.apiSecret, state.secret), clock);
  return `Dashboard and query API for tenant "${tenant}" (this link's token lasts a day; \`tracklake token create\` makes more):\n  ${url}/?token=${token}\n`;
}

/** `tracklake api`: the read side alone (any number of read nodes can serve one bucket). */
export async function apiCommand(config: Config): Promise<number> {
  const logger = makeLogger(config.logLevel);
  const state = await openState(config, (msg, details) => logger.warn(details, msg), 'api');
  const store = await openStore(config.storage, s3Settings(config));
  const side = await startReadSide(config, state, store, logger);
  process.stderr.write(`\ntracklake read side on ${side.url} (storage: ${store.location})\n${await dashboardHint(config, state, side.url)}\n`);
  return new Promise<number>((resolve) => {
    const stop = async () => {
      await side.close();
      resolve(0);
    };
    process.once('SIGTERM', () => void stop());
    process.once('SIGINT', () => void stop());
  });
}
