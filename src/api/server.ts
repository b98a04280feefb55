/**
 * The collector's HTTP face: Segment's Tracking API (/v1/*), CORS for browsers, and the operational
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
import { checkContentType, readBody } from './body.js';

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
};

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

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { config, collector, preparer, metrics, clock } = deps;
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
    maxRequestsPerSocket: 10_000,
    bodyLimit: LIMITS.requestBytes,
    return503OnClosing: true,
  });
  app.server.headersTimeout = Math.min(10_000, config.requestTimeoutMs);

  await app.register(cors, {
    origin: config.corsOrigins.includes('*') ? '*' : [...config.corsOrigins],
    methods: ['POST', 'GET', 'OPTIONS'],
    maxAge: 86_400,
  });

  // Bodies are read by readBody whatever the declared type, so one place enforces every limit.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', async function readTrackingBody(req: FastifyRequest, payload: import('node:stream').Readable) {
    checkContentType(req.headers['content-type']);
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

  for (const [name, pathType] of Object.entries(ROUTES)) {
    app.post(`/v1/${name}`, async function trackingEndpoint(req, reply) {
      collector.checkOpen();
      const receivedAt = clock.now();
      const prepared = await preparer.prepare({
        body: (req.body as Buffer | undefined) ?? EMPTY_BODY,
        basicKey: writeKeyFromAuth(req.headers.authorization),
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

function sendError(reply: FastifyReply, code: ErrorCode, message?: string): FastifyReply {
  if (ERRORS[code].status === 503) reply.header('retry-after', RETRY_AFTER_SECONDS);
  return reply.code(ERRORS[code].status).send(errorBody(code, message));
}

/** Fastify's own errors, mapped onto the table. */
function fastifyCode(err: FastifyError): ErrorCode {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'request_too_large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported_media_type';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'invalid_body';
    default:
      if (err.statusCode === 408) return 'request_timeout';
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return 'invalid_body';
      return 'internal';
  }
}
