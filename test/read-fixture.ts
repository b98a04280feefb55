/**
 * The read side's test world: a collector fed by the simulator (real HTTP), its tracking files shipped, the
 * aggregate job run on every day but the last (so the last day is read from tracking files), the sessions
 * job on all days, and a read side on a free port over a cache in a temp folder. An independent
 * computation straight from the tracking and session files is what tests compare with.
 */
import { Writable } from 'node:stream';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parse } from 'csv-parse/sync';
import { loadConfig, type Config } from '../src/config/config.js';
import { runAggregates } from '../src/jobs/aggregates/job.js';
import { metricSet } from '../src/jobs/aggregates/metrics.js';
import { runSessions } from '../src/jobs/sessions/job.js';
import { simulate } from '../src/cli/simulate.js';
import { ManualClock, systemClock } from '../src/lib/clock.js';
import { ReadCache } from '../src/query/cache.js';
import { buildReadServer } from '../src/query/server.js';
import { createToken } from '../src/query/tokens.js';
import { WebAssets } from '../src/query/web.js';
import type { ObjectStore } from '../src/storage/store.js';
import { post, readRows, silent, startCollector, tempDir } from './helpers.js';

export const DAYS = ['2026-01-29', '2026-01-30', '2026-01-31'];
/** "Today" for the read side: the last simulated day, which the aggregate job has not computed. */
export const TODAY_MS = Date.parse('2026-01-31T18:00:00Z');
export const SECRET = new TextEncoder().encode('test-secret-of-at-least-thirty-two-bytes!');

export interface ReadWorld {
  store: ObjectStore;
  dir: string;
  config: Config;
  clock: ManualClock;
  cache: ReadCache;
  app: FastifyInstance;
  url: string;
  token(scope?: { tenant?: string; merchant?: string }, seconds?: number): Promise<string>;
  close(): Promise<void>;
}

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

/** Tracking files of simulated traffic (tenant demo) in a temp folder's `data`, and the jobs run over them. */
export async function simulatedStore(events = 4000, sessionDays = DAYS): Promise<{ store: ObjectStore; dir: string }> {
  const c = await startCollector({}, { clock: systemClock });
  const r = await simulate({ url: c.url, writeKey: 'dev', events, days: 3, batchSize: 50, concurrency: 4, seed: 11, endMs: Date.parse('2026-02-01T00:00:00Z') }, sink());
  if (r.failed > 0) throw new Error(`simulate: ${r.failed} failed`);
  await c.close(); // ships everything
  const metrics = metricSet();
  await runAggregates(DAYS.slice(0, -1), { store: c.store, metrics, logger: silent });
  await runSessions(sessionDays, { store: c.store, logger: silent, inactivityMinutes: 30, includeBots: false, lookbackDays: 35 });
  return { store: c.store, dir: c.dir };
}

export async function startReadWorld(store: ObjectStore, settings: Record<string, unknown> = {}, nowMs = TODAY_MS): Promise<ReadWorld> {
  const dir = tempDir('read');
  const config = loadConfig({ flags: { storage: path.join(dir, 'unused'), walDir: path.join(dir, 'wal'), sources: { dev: 'demo', other: 'acme' }, logLevel: 'silent', ...settings } });
  const clock = new ManualClock(nowMs);
  const cache = await ReadCache.open({
    store, file: path.join(dir, 'cache.duckdb'), metrics: metricSet(config.metrics), clock, logger: silent, tailDays: 35,
    sessions: { dir: path.join(dir, 'sessions'), inactivityMinutes: 30, includeBots: false },
  });
  await cache.refresh();
  const app = await buildReadServer({ config, cache, secret: SECRET, clock, logger: silent, web: WebAssets.load(), store });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  return {
    store, dir, config, clock, cache, app, url,
    token: (scope = {}, seconds = 3600) => createToken({ tenant: scope.tenant ?? 'demo', merchant: scope.merchant }, seconds, SECRET, clock),
    async close() {
      await app.close();
      await cache.close();
    },
  };
}

/** Counts of view, share and chat straight from the tracking files, keyed as the caller groups them. */
export async function expectedCounts(store: ObjectStore, key: (r: Record<string, string>) => string | undefined, days = DAYS): Promise<Map<string, { view: number; share: number; chat: number }>> {
  const out = new Map<string, { view: number; share: number; chat: number }>();
  for (const r of await readRows(store)) {
    const day = new Date(Number(r.time)).toISOString().slice(0, 10);
    if (!days.includes(day) || !r.productid || r.bot === 'true' || !['view', 'share', 'chat'].includes(r.event!)) continue;
    const k = key({ ...r, day });
    if (k === undefined) continue;
    const c = out.get(k) ?? { view: 0, share: 0, chat: 0 };
    c[r.event as 'view' | 'share' | 'chat']++;
    out.set(k, c);
  }
  return out;
}

export async function sessionRows(store: ObjectStore): Promise<Array<Record<string, string>>> {
  const rows: Array<Record<string, string>> = [];
  for (const o of await store.list('sessions/')) {
    if (!o.key.endsWith('/sessions.csv') || o.key.startsWith('sessions/_state/')) continue;
    const day = o.key.slice(9, 19).replaceAll('/', '-');
    for (const r of parse((await store.get(o.key))!.toString('utf8'), { columns: true }) as Array<Record<string, string>>) rows.push({ ...r, day });
  }
  return rows;
}

/** A read-side API call; no token sends none (the collector's Basic auth is no Bearer token). */
export function api(url: string, token: string | undefined, body: unknown, opts: { path?: string; accept?: string; raw?: string } = {}) {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  if (opts.accept) headers.accept = opts.accept;
  return post(`${url}${opts.path ?? '/api/v1/query'}`, opts.raw ?? body, headers);
}
