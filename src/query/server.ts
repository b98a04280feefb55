/**
 * The read side's HTTP face: the query API (/api/v1/query, /funnel, /flow, /meta) behind Bearer tokens
 * with a per-token rate limit, and the dashboard's static files at /. It listens on its own address,
 * never on the collector's port. Every error is the collector's JSON shape, from the same table.
 */
import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { fastifyCode, sendAsset, sendError } from '../api/server.js';
import type { Config } from '../config/config.js';
import { metricSet } from '../jobs/aggregates/metrics.js';
import { flowPaths, flowStatement, funnelStatement, funnelSteps } from '../jobs/sessions/funnel.js';
import { sqlString } from '../jobs/engine.js';
import type { Clock } from '../lib/clock.js';
import { addDays, dayOf } from '../lib/dates.js';
import { TracklakeError } from '../lib/errors.js';
import { toCsv } from '../tracking/csv.js';
import type { ReadCache } from './cache.js';
import { eventsPage, parseEvents } from './events.js';
import { type LocalLive, LiveReader } from './live.js';
import type { ObjectStore } from '../storage/store.js';
import { compileQuery, factsRelation, familyOf, previousPeriod } from './compile.js';
import { type Filter, type FunnelQuery, parseFlow, parseFunnel, parseQuery, type Query, SESSION_METRICS } from './model.js';
import { type Scope, verifyBearer } from './tokens.js';
import type { WebAssets } from './web.js';
import type { Regulations } from '../privacy/regulations.js';
import { tenantPlans } from '../plan/plan.js';
import { registerRegulationRoutes } from './regulations.js';

export interface ReadServerDeps {
  config: Config;
  cache: ReadCache;
  secret: Uint8Array;
  clock: Clock;
  logger: Logger;
  /** The dashboard's files; absent, / answers that the build did not make them. */
  web?: WebAssets;
  /** The collector of this process, when there is one: its live counts come from memory. */
  live?: LocalLive;
  /** The bucket, for the live counts (`live/`); absent, the live panel answers nothing. */
  store?: ObjectStore;
  /** The regulations API (privacy tokens); absent, its routes are not served. */
  privacy?: { regulations: Regulations; secret: string };
}

declare module 'fastify' {
  interface FastifyRequest {
    scope: Scope | undefined;
  }
}

const NO_STORE = 'no-store';
const PRIVACY_ROUTE = /^\/api\/v1\/(regulations|suppressions)(\/|\?|$)/;
/** Plot styles its SVG inline (a style element and attributes): styles may be inline, scripts never. */
const PAGE_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** The rate limiter's key: the token itself (hashed, so keys are short and no token sits in memory twice). */
const tokenKey = (req: FastifyRequest) => createHash('sha256').update(req.headers.authorization ?? '').digest('base64url');

export async function buildReadServer(deps: ReadServerDeps): Promise<FastifyInstance> {
  const { config, cache, clock } = deps;
  const metrics = metricSet(config.metrics).map((m) => m.name);
  const tenants = new Set(Object.values(config.sources));
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 256 * 1024,
    requestTimeout: config.requestTimeoutMs,
    trustProxy: config.trustProxy,
  });

  app.setErrorHandler(function onError(err: FastifyError | TracklakeError, req, reply) {
    if (err instanceof TracklakeError) return sendError(reply, err.code, err.message);
    const code = fastifyCode(err);
    if (code === 'internal') req.log.error({ err }, 'read request failed');
    // A body that is not JSON is a query that cannot be read.
    if (code === 'invalid_body') return sendError(reply, 'invalid_query', `The body is not a JSON query: ${err.message}`);
    return sendError(reply, code, code === 'internal' ? undefined : err.message);
  });
  app.setNotFoundHandler(function notFound(req, reply) {
    return sendError(reply, 'not_found', `No endpoint ${req.method} ${req.url.slice(0, 200)}.`);
  });

  app.decorateRequest('scope', undefined);
  await app.register(rateLimit, {
    global: true,
    max: config.apiRateLimit,
    timeWindow: 60_000,
    keyGenerator: tokenKey,
    allowList: (req) => !req.url.startsWith('/api/'),
    errorResponseBuilder: (_req, ctx) => new TracklakeError('rate_limited', `Over ${ctx.max} requests a minute for this token; retry in ${ctx.after}.`),
  });
  app.addHook('onRequest', async function authenticate(req, reply) {
    if (!req.url.startsWith('/api/')) return;
    reply.header('cache-control', NO_STORE);
    const r = await verifyBearer(req.headers.authorization, deps.secret, clock);
    if (!r.ok) return sendError(reply, r.code, r.message);
    // A token signed here for a tenant this configuration no longer has reads nothing.
    if (!tenants.has(r.scope.tenant)) return sendError(reply, 'forbidden', `Tenant "${r.scope.tenant}" is not served here.`);
    // Each kind of token reaches its own routes only: reading the data and regulating it are different jobs.
    const privacyRoute = PRIVACY_ROUTE.test(req.url);
    if (privacyRoute && r.scope.access !== 'privacy') return sendError(reply, 'forbidden', 'Only a privacy token (tracklake token create --scope privacy) may use the regulations API.');
    if (!privacyRoute && r.scope.access !== 'read') return sendError(reply, 'forbidden', 'A privacy token may use the regulations API only.');
    req.scope = r.scope;
  });

  const today = () => dayOf(clock.now());

  app.post('/api/v1/query', async function query(req, reply) {
    const parsed = parseQuery(req.body, req.scope!, metrics, today());
    if (!parsed.ok) return sendError(reply, parsed.code, parsed.message);
    const q = parsed.query;
    // While a new node loads, a query waits for its own days (the previous period's too), not for the year.
    const from = q.compare === 'previous_period' && q.dateRange.from !== null ? previousPeriod(q.dateRange.from, q.dateRange.to).from : q.dateRange.from;
    await Promise.all([...new Set(q.metrics.map(familyOf))].map((f) => cache.ready(f, from)));
    const compiled = compileQuery(q, cache.computedThrough, metrics);
    const rows = await cache.read<Record<string, unknown>>(compiled.sql, compiled.values, compiled.types);
    const results = rows.map((r) => ({
      dimensions: q.dimensions.map((_, i) => String(r[`k${i}`] ?? '')),
      metrics: q.metrics.map((_, i) => Number(r[`m${i}`] ?? 0)),
      ...(q.compare ? { comparison: q.metrics.map((_, i) => Number(r[`c${i}`] ?? 0)) } : {}),
    }));
    if (wantsCsv(req)) {
      const columns = [...q.dimensions, ...q.metrics, ...(q.compare ? q.metrics.map((m) => `${m}_previous`) : [])];
      return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="tracklake.csv"')
        .send(toCsv(columns, results.map((r) => [...r.dimensions, ...r.metrics, ...(r.comparison ?? [])])));
    }
    return {
      results,
      meta: { total_rows: rows.length > 0 ? Number(rows[0]!.total_rows) : 0, computed_through: computedThrough(q.metrics) },
      query: normalised(q),
    };
  });

  app.post('/api/v1/funnel', async function funnelEndpoint(req, reply) {
    const parsed = parseFunnel(req.body, req.scope!, today());
    if (!parsed.ok) return sendError(reply, parsed.code, parsed.message);
    const f = parsed.query;
    await cache.ready('sessions', f.dateRange.from);
    const [row] = await cache.read<Record<string, bigint>>(funnelStatement(factsOf(f), f.steps, ''));
    const steps = funnelSteps(f.steps, row).map((s) => ({ event: s.step, sessions: s.sessions, conversion: s.conversion }));
    if (wantsCsv(req)) return reply.type('text/csv; charset=utf-8').send(toCsv(['event', 'sessions', 'conversion'], steps.map((s) => [s.event, s.sessions, s.conversion])));
    return { steps, meta: { computed_through: cache.computedThrough.sessions } };
  });

  app.post('/api/v1/flow', async function flowEndpoint(req, reply) {
    const parsed = parseFlow(req.body, req.scope!, today());
    if (!parsed.ok) return sendError(reply, parsed.code, parsed.message);
    const f = parsed.query;
    await cache.ready('sessions', f.dateRange.from);
    const paths = flowPaths(await cache.read<{ path: unknown; sessions: bigint }>(flowStatement(factsOf(f), { event: f.from, depth: f.depth, limit: f.limit }, '')));
    if (wantsCsv(req)) return reply.type('text/csv; charset=utf-8').send(toCsv(['path', 'sessions'], paths.map((p) => [p.events.join(' > '), p.sessions])));
    return { paths, meta: { computed_through: cache.computedThrough.sessions } };
  });

  // Tracking-plan health over the range (src/query/events.ts); the plans are read once, as the collector does.
  const plans = new Map([...tenantPlans(config.plans)].map(([t, p]) => [t, p.compiled]));
  app.post('/api/v1/events', async function eventsEndpoint(req, reply) {
    const parsed = parseEvents(req.body, req.scope!, today());
    if (!parsed.ok) return sendError(reply, parsed.code, parsed.message);
    return eventsPage(cache, parsed.query, plans);
  });

  const live = deps.store ? new LiveReader(deps.store, deps.live) : undefined;
  app.get('/api/v1/live', async function liveEndpoint(req, reply) {
    if (req.scope!.merchant !== undefined) return sendError(reply, 'forbidden', 'Live traffic spans every merchant of the tenant: a merchant token cannot read it.');
    if (!live) return sendError(reply, 'not_found', 'Live counts are not served by this read side.');
    return live.traffic(req.scope!.tenant, clock.now());
  });

  /** What the dashboard needs to draw itself: the token's scope, the metrics, the events funnels can use. */
  app.get('/api/v1/meta', async function meta(req) {
    const scope = req.scope!;
    // The events a funnel can start from, by how often they occur: while a new node loads, those of the
    // last month (the page's first view) are enough to draw the page.
    await cache.ready('sessions', addDays(today(), -29));
    const events = await cache.read<{ event: string }>(
      `SELECT event FROM ${factsRelation(cache.computedThrough)} WHERE tenantid = $tenant ${scope.merchant ? 'AND merchantid = $merchant' : ''} GROUP BY event ORDER BY count(*) DESC, event LIMIT 100`,
      scope.merchant ? { tenant: scope.tenant, merchant: scope.merchant } : { tenant: scope.tenant },
    );
    return {
      tenant: scope.tenant,
      merchant: scope.merchant ?? null,
      expires: new Date(scope.exp * 1000).toISOString(),
      today: today(),
      metrics: { aggregates: metrics, sessions: scope.merchant ? [] : [...SESSION_METRICS] },
      events: events.map((e) => e.event),
      computed_through: cache.computedThrough,
    };
  });

  if (deps.privacy) registerRegulationRoutes(app, deps.privacy.regulations, deps.privacy.secret);

  app.get('/health', async () => ({ status: 'ok' }));

  // The dashboard: one page and its bundle. The page is never cached (it names the bundle by hash).
  for (const url of ['/', '/index.html']) {
    app.get(url, async function dashboard(req, reply) {
      if (!deps.web) return sendError(reply, 'not_found', 'The dashboard was not built: run `npm run build`.');
      // Only its own files run on the page; the token in the first address goes to no other site.
      reply.header('content-security-policy', PAGE_CSP).header('referrer-policy', 'no-referrer').header('x-content-type-options', 'nosniff').header('x-frame-options', 'DENY');
      return sendAsset(req, reply, deps.web.page, 'no-cache', 'text/html; charset=utf-8');
    });
  }
  app.get('/assets/:file', async function dashboardAsset(req, reply) {
    const asset = deps.web?.asset((req.params as { file: string }).file);
    if (!asset) return sendError(reply, 'not_found', `No dashboard file ${req.url.slice(0, 200)}.`);
    return sendAsset(req, reply, asset, 'public, max-age=31536000, immutable', asset.type);
  });
  return app;

  /**
   * The track facts a funnel or flow reads, as a relation: the range's days (a session's facts may run into
   * the day after), the tenant, the token's merchant and the page's filters. Values are escaped literals:
   * the funnel's statement is shared with `tracklake funnel`, which builds it the same way.
   */
  function factsOf(f: Omit<FunnelQuery, 'steps'>): string {
    const where = [`tenantid = ${sqlString(f.tenant)}`, `day <= DATE ${sqlString(addDays(f.dateRange.to, 1))}`];
    if (f.dateRange.from !== null) where.push(`day >= DATE ${sqlString(f.dateRange.from)}`);
    if (f.merchant !== null) where.push(`merchantid = ${sqlString(f.merchant)}`);
    for (const x of f.filters as Filter[]) {
      const test = `${x.dimension === 'merchant' ? 'merchantid' : 'productid'} IN (${x.values.map(sqlString).join(', ')})`;
      where.push(x.op === 'is' ? test : `NOT (${test})`);
    }
    return `(SELECT tenantid, session_id, sequence, event FROM ${factsRelation(cache.computedThrough)} WHERE ${where.join(' AND ')})`;
  }

  /** The computed_through of the families a query reads: the earliest of them. */
  function computedThrough(ms: readonly string[]): string | null {
    const days = [...new Set(ms.map(familyOf))].map((f) => cache.computedThrough[f]);
    if (days.some((d) => d === null)) return null;
    return (days as string[]).sort()[0]!;
  }
}

function wantsCsv(req: FastifyRequest): boolean {
  return /\btext\/csv\b/.test(req.headers.accept ?? '');
}

/** The query as it was run: defaults filled in, the range as days, the token's merchant as a filter. */
function normalised(q: Query) {
  const filters: Array<[string, string, string[]]> = q.filters.map((f) => [f.op, f.dimension, f.values]);
  if (q.merchant !== null) filters.push(['is', 'merchant', [q.merchant]]);
  return {
    metrics: q.metrics,
    date_range: [q.dateRange.from, q.dateRange.to],
    dimensions: q.dimensions,
    filters,
    order_by: q.orderBy,
    limit: q.limit,
    offset: q.offset,
    ...(q.compare ? { compare: q.compare } : {}),
  };
}
