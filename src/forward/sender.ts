/**
 * A destination's edge: one small interface (send a batch, get an outcome), one implementation per type.
 * An outcome is data: delivered, worth retrying (with the receiver's Retry-After when it gave one), or
 * refused for good, which sends the batch's messages to the dead letters.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { Destination } from '../config/destinations.js';
import type { Clock } from '../lib/clock.js';
import { agentFor } from '../lib/egress.js';

const gzip = promisify(gzipCb);

export type Outcome = { ok: true } | { ok: false; retry: boolean; error: string; retryAfterMs?: number };

/** A message on its way: its tenant, and the message as JSON in UTF-8 (never decoded on the way to an HTTP receiver). */
export interface Outgoing {
  tenant: string;
  json: Buffer;
  /** Its tracking rows as logged (CSV lines), when it was read from the log (see ForwardRow). */
  tracks?: readonly Buffer[];
}

export interface Sender {
  /** Sends messages, in order. */
  send(messages: readonly Outgoing[]): Promise<Outcome>;
  close(): Promise<void>;
}

/** Statuses worth another try: a timeout, too many requests, the receiver's own trouble. */
const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

/** Retry-After as milliseconds: seconds, or an HTTP date. */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The webhook's signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function signature(secret: string, timestamp: number, body: string | Buffer): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/**
 * POSTs to one receiver over kept-alive connections, reading the outcome from the status (a body is read
 * only to name the error). node:http rather than fetch: for a request of 100 messages like bench:forward's,
 * fetch cost 870 µs of CPU against 215 µs here, and the collector's cores are what ingest runs on.
 */
export class HttpPoster {
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  /** How errors name the receiver: the URL without what may be a credential (safeUrl). */
  private readonly where: string;

  constructor(private readonly url: string, private readonly timeoutMs: number, private readonly clock: Clock) {
    const tls = new URL(url).protocol === 'https:';
    this.where = safeUrl(url);
    // One connection: a destination sends one batch at a time, in log order. Through the proxy the
    // environment names for the receiver, if any (lib/egress.ts).
    this.agent = agentFor(url, { keepAlive: true, maxSockets: 1 });
    this.request = tls ? https.request : http.request;
  }

  async post(headers: Record<string, string>, body: string | Buffer): Promise<Outcome> {
    const r = await this.once(headers, body);
    // A kept-alive connection the receiver closed while idle fails at once, before any answer: once more on a new one.
    return r.stale ? (await this.once(headers, body)).outcome : r.outcome;
  }

  close(): void {
    this.agent.destroy();
  }

  private once(headers: Record<string, string>, body: string | Buffer): Promise<{ outcome: Outcome; stale?: boolean }> {
    return new Promise((resolve) => {
      const fail = (why: string, stale = false) => resolve({ outcome: { ok: false, retry: true, error: `${this.where}: ${why}` }, stale });
      const req = this.request(this.url, { method: 'POST', agent: this.agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
        const status = res.statusCode ?? 0;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text.length < 200) text += c;
        });
        res.on('error', (e) => {
          clearTimeout(timer);
          fail(e.message);
        });
        res.on('end', () => {
          clearTimeout(timer);
          if (status >= 200 && status < 300) return resolve({ outcome: { ok: true } });
          const error = `${this.where} answered ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}${text ? `: ${text.slice(0, 200)}` : ''}`;
          const after = retryAfterMs(header(res.headers['retry-after']), this.clock.now());
          // A redirect is the configuration's to fix: tried again, as a receiver's trouble is, until maxAttempts.
          resolve({ outcome: { ok: false, retry: retryable(status) || (status >= 300 && status < 400), error, ...(after !== undefined ? { retryAfterMs: after } : {}) } });
        });
      });
      const timer = setTimeout(() => {
        req.destroy();
        fail(`no answer within ${this.timeoutMs} ms`);
      }, this.timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        fail(e.code ?? e.message, req.reusedSocket && e.code === 'ECONNRESET');
      });
      req.end(body);
    });
  }
}

/**
 * A receiver's URL as errors show it (logs, status, dead letters): its origin, and its path only when it is
 * Segment's `/v1/batch`. A webhook's path or query is often its credential (Slack's and Zapier's hooks are
 * secret URLs), and a URL may hold a user and password.
 */
export function safeUrl(url: string): string {
  const u = new URL(url);
  const path = u.pathname === '/' && u.search === '' ? '' : u.pathname.endsWith('/v1/batch') && u.search === '' ? u.pathname : '/…';
  return `${u.protocol}//${u.host}${path}`;
}

const header = (v: string | string[] | undefined) => (Array.isArray(v) ? (v[0] ?? null) : (v ?? null));

/** A Segment-format batch body from messages' JSON: their bytes copied once, into the body, never decoded. */
export function batchBody(messages: readonly Outgoing[], sentAt: number): Buffer {
  const parts: Buffer[] = [BATCH_OPEN];
  messages.forEach((m, i) => (i === 0 ? parts.push(m.json) : parts.push(COMMA, m.json)));
  parts.push(Buffer.from(`],"sentAt":"${new Date(sentAt).toISOString()}"}`));
  return Buffer.concat(parts);
}
const BATCH_OPEN = Buffer.from('{"batch":[');
const COMMA = Buffer.from(',');

/** Segment-format batches, signed, to any URL. */
export function webhookSender(d: Extract<Destination, { type: 'webhook' }>, clock: Clock): Sender {
  const poster = new HttpPoster(d.url, d.timeoutMs, clock);
  return {
    async send(messages) {
      const body = batchBody(messages, clock.now());
      const timestamp = Math.floor(clock.now() / 1000);
      const headers = { ...d.headers, 'content-type': 'application/json', 'user-agent': 'tracklake', 'x-tracklake-signature': signature(d.secret, timestamp, body) };
      return poster.post(headers, body);
    },
    close: async () => poster.close(),
  };
}

/** Any Segment-compatible HTTP Tracking API: /v1/batch, gzip, the write key as Basic auth, as analytics-node sends. */
export function segmentSender(d: Extract<Destination, { type: 'segment' }>, clock: Clock): Sender {
  const url = `${d.url.replace(/\/+$/, '')}/v1/batch`;
  const auth = `Basic ${Buffer.from(`${d.writeKey}:`).toString('base64')}`;
  const poster = new HttpPoster(url, d.timeoutMs, clock);
  return {
    async send(messages) {
      const body = await gzip(batchBody(messages, clock.now()));
      return poster.post({ authorization: auth, 'content-type': 'application/json', 'content-encoding': 'gzip', 'user-agent': 'tracklake' }, body);
    },
    close: async () => poster.close(),
  };
}
