/**
 * The collector's HTTP face: Segment's Tracking API (/v1/*, with analytics.js's short paths), RudderStack's
 * beacon path, what the SDKs fetch before sending (api/sdk.ts), CORS for browsers, and the operational
 * endpoints /health, /ready and /metrics. Handlers are thin: the body is read here, everything else happens
 * in the Collector. One error hook turns TracklakeErrors (and Fastify's own) into the JSON error table.
 */
import cors from '@fastify/cors';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { ERRORS, TracklakeError, errorBody, type ErrorCode } from '../lib/errors.js';
import type { Metrics } from '../lib/metrics.js';
import { LIMITS, type MessageType } from '../segment/message.js';
import type { Clock } from '../lib/clock.js';
import type { Collector } from '../ingest/collector.js';
import type { Preparer } from '../ingest/preparer.js';
import { tenantOf } from '../ingest/prepare.js';
import { readBody } from './body.js';
import { AnalyticsJsAssets, publicBase, rudderSourceConfig, segmentSettings, type Asset } from './sdk.js';

export interface ServerDeps {
  config: Config;
  collector: Collector;
  preparer: Preparer;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  /** For /ready: whether the log is writable and storage answered recently. */
  readiness: () => { ready: boolean; checks: Record<string, boolean | string> };
}

const ROUTES: Record<string, MessageType | 'batch'> = {
  track: 'track', page: 'page', screen: 'screen', identify: 'identify', alias: 'alias', group: 'group', batch: 'batch', import: 'batch',
  // analytics.js posts to one-letter paths, and its batching mode and the mobile libraries to /b.
  t: 'track', p: 'page', s: 'screen', i: 'identify', a: 'alias', g: 'group', b: 'batch',
};
/** Paths outside /v1 that take a batch: RudderStack's browser SDK sends through sendBeacon here (key in the query). */
const BATCH_PATHS = ['/beacon/v1/batch'];

/** Settings change when the configuration does; a client may keep them this long. */
const SETTINGS_MAX_AGE = 'public, max-age=300';
/** The analytics.js entry is named by write key, not by version: short, so an upgrade reaches browsers soon. */
const ENTRY_MAX_AGE = 'public, max-age=300';
/** Chunks are named by content hash: never stale. */
const CHUNK_MAX_AGE = 'public, max-age=31536000, immutable';

/** Retry-After for 503s: Segment's libraries back off on their own; this tells them roughly how long. */
const RETRY_AFTER_SECONDS = '10';
const EMPTY_BODY = Buffer.alloc(0);
const SUCCESS = '{"success":true}';

export function writeKeyFromAuth(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const user = decoded.includes(':') ? decoded.slice(0, decoded.indexOf(':')) : decoded;
  return user === '' ? undefined : user;
}

/** A `writeKey` query parameter (RudderStack's beacon and config URLs carry one). */
function queryWriteKey(query: unknown): string | undefined {
  const k = (query as Record<string, unknown> | undefined)?.writeKey;
  return typeof k === 'string' && k !== '' ? k : undefined;
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { config, collector, preparer, metrics, clock } = deps;
  const assets = new AnalyticsJsAssets();
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request logs would cost more than the request at collector rates; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustProxy,
    requestIdHeader: 'x-request-id',
    // A slow or stuck client cannot hold the server: bounded time for the whole request and for idle sockets.
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: 2 * config.requestTimeoutMs,
    keepAliveTimeout: 5_000,
    // No limit: past it Node answers 503 to whatever a client has already pipelined on the connection, and a
    // busy SDK's keep-alive connection passes 10 000 requests in minutes. Idle connections still close.
    maxRequestsPerSocket: 0,
    bodyLimit: LIMITS.requestBytes,
    return503OnClosing: true,
  });
  app.server.headersTimeout = Math.min(10_000, config.requestTimeoutMs);

  await app.register(cors, {
    origin: config.corsOrigins.includes('*') ? '*' : [...config.corsOrigins],
    methods: ['POST', 'GET', 'OPTIONS'],
    // No allowedHeaders: a preflight's requested headers are allowed as asked (Authorization, the SDKs'
    // AnonymousId, SentAt, X-Retry-Count, ...), as Segment's and RudderStack's APIs do.
    exposedHeaders: ['Retry-After'],
    maxAge: 86_400,
  });

  // Bodies are read by readBody whatever the declared type, so one place enforces every limit. The body
  // decides, not the header: browsers send text/plain to avoid a preflight, RudderStack's Node SDK sends
  // gzip JSON as application/x-www-form-urlencoded (axios' default), and Segment's API takes them all.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', async function readTrackingBody(req: FastifyRequest, payload: import('node:stream').Readable) {
    return readBody(payload, req.headers['content-encoding'], LIMITS.requestBytes);
  });

  app.setErrorHandler(function onError(err: FastifyError | TracklakeError, req, reply) {
    if (err instanceof TracklakeError) return sendError(reply, err.code, err.message);
    const code = fastifyCode(err);
    if (code === 'internal') req.log.error({ err }, 'request failed');
    return sendError(reply, code, code === 'internal' ? undefined : err.message);
  });
  app.setNotFoundHandler(function notFound(req, reply) {
    const m = /^\/v1\/([a-z]+)\/?$/.exec(req.url.split('?')[0]!);
    if (m && ROUTES[m[1]!] && req.method !== 'POST') return sendError(reply, 'method_not_allowed');
    return sendError(reply, 'not_found', `No endpoint ${req.method} ${req.url.slice(0, 200)}.`);
  });
  app.addHook('onResponse', async function countRequest(req, reply) {
    metrics.requests.inc({ route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });

  const routes = new Map<string, MessageType | 'batch'>(Object.entries(ROUTES).map(([name, type]) => [`/v1/${name}`, type]));
  for (const url of BATCH_PATHS) routes.set(url, 'batch');
  for (const [url, pathType] of routes) {
    app.post(url, async function trackingEndpoint(req, reply) {
      collector.checkOpen();
      const receivedAt = clock.now();
      const prepared = await preparer.prepare({
        body: (req.body as Buffer | undefined) ?? EMPTY_BODY,
        basicKey: writeKeyFromAuth(req.headers.authorization),
        queryKey: queryWriteKey(req.query),
        pathType,
        clientIp: req.ip ?? null,
        receivedAt,
      });
      if (!prepared.ok) {
        const body = errorBody(prepared.code, prepared.message);
        return reply.code(ERRORS[prepared.code].status).send(prepared.rejected ? { ...body, rejected: prepared.rejected } : body);
      }
      const { accepted, rejected } = await collector.accept(prepared.value, receivedAt);
      if (rejected.length === 0) return reply.type('application/json').send(SUCCESS);
      return reply.send({ success: true, accepted, rejected });
    });
  }

  // analytics.js reports its own usage here when a settings file samples it (ours sample none): taken and
  // counted, never stored. The body was read within the limits like any other.
  app.post('/v1/m', async function clientMetrics(_req, reply) {
    metrics.clientMetrics.inc();
    return reply.type('application/json').send(SUCCESS);
  });

  // The settings analytics.js and the mobile libraries fetch before they send (also without /v1, as Jitsu serves it).
  for (const url of ['/v1/projects/:writeKey/settings', '/projects/:writeKey/settings']) {
    app.get(url, async function sdkSettings(req, reply) {
      const { writeKey } = req.params as { writeKey: string };
      if (tenantOf(config.sources, writeKey) === undefined) return sendError(reply, 'unknown_source');
      const base = publicBase(config.publicUrl, req);
      if (!base) return sendError(reply, 'invalid_host');
      reply.header('cache-control', SETTINGS_MAX_AGE);
      // Without publicUrl the answer depends on the host the client asked for.
      if (!config.publicUrl) reply.header('vary', config.trustProxy ? 'Host, X-Forwarded-Host, X-Forwarded-Proto' : 'Host');
      return reply.send(segmentSettings(writeKey, base));
    });
  }

  // RudderStack's browser SDK v3 fetches its source config first: the key in Basic auth or the query.
  for (const url of ['/sourceConfig', '/sourceConfig/']) {
    app.get(url, async function rudderConfig(req, reply) {
      const writeKey = writeKeyFromAuth(req.headers.authorization) ?? queryWriteKey(req.query);
      if (writeKey === undefined) return sendError(reply, 'missing_write_key');
      const tenant = tenantOf(config.sources, writeKey);
      if (tenant === undefined) return sendError(reply, 'unknown_source');
      reply.header('cache-control', SETTINGS_MAX_AGE);
      return reply.send(rudderSourceConfig(writeKey, tenant));
    });
  }

  // The analytics.js bundle, where the snippet loads it from once its host is this collector's.
  app.get('/analytics.js/v1/:writeKey/analytics.min.js', async function analyticsJs(req, reply) {
    const { writeKey } = req.params as { writeKey: string };
    if (tenantOf(config.sources, writeKey) === undefined) return sendError(reply, 'unknown_source');
    return sendAsset(req, reply, assets.entryFor(writeKey), ENTRY_MAX_AGE);
  });
  app.get('/analytics-next/bundles/:file', async function analyticsJsChunk(req, reply) {
    const asset = assets.chunk((req.params as { file: string }).file);
    if (!asset) return sendError(reply, 'not_found', `No analytics.js chunk ${req.url.slice(0, 200)} in @segment/analytics-next ${assets.version}.`);
    return sendAsset(req, reply, asset, CHUNK_MAX_AGE);
  });

  app.get('/health', async function health() {
    return { status: 'ok' };
  });
  app.get('/ready', async function ready(_req, reply) {
    const r = deps.readiness();
    return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not ready', checks: r.checks });
  });
  app.get('/metrics', async function prometheus(_req, reply) {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return app;
}

/** A static file (a script by default), gzipped when the client takes it, 304 when it has it already. */
export function sendAsset(req: FastifyRequest, reply: FastifyReply, asset: Asset, cacheControl: string, type = 'application/javascript; charset=utf-8'): FastifyReply {
  reply.header('cache-control', cacheControl).header('etag', asset.etag).header('vary', 'Accept-Encoding');
  if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  reply.type(type);
  if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) return reply.header('content-encoding', 'gzip').send(asset.gzip);
  return reply.send(asset.body);
}

export function sendError(reply: FastifyReply, code: ErrorCode, message?: string): FastifyReply {
  if (ERRORS[code].status === 503) reply.header('retry-after', RETRY_AFTER_SECONDS);
  return reply.code(ERRORS[code].status).send(errorBody(code, message));
}

/** Fastify's own errors, mapped onto the table. */
export function fastifyCode(err: FastifyError): ErrorCode {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'request_too_large';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'invalid_body';
    default:
      if (err.statusCode === 408) return 'request_timeout';
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return 'invalid_body';
      return 'internal';
  }
}
