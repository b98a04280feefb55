/**
 * A destination's edge: one small interface (send a batch, get an outcome), one implementation per type.
 * An outcome is data: delivered, worth retrying (with the receiver's Retry-After when it gave one), or
 * refused for good, which sends the batch's messages to the dead letters.
 */
import { createHmac } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { Destination } from '../config/destinations.js';
import type { Clock } from '../lib/clock.js';

const gzip = promisify(gzipCb);

export type Outcome = { ok: true } | { ok: false; retry: boolean; error: string; retryAfterMs?: number };

/** A message on its way: its tenant, and the message as JSON text (never parsed on the way to an HTTP receiver). */
export interface Outgoing {
  tenant: string;
  json: string;
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

interface HttpRequest {
  url: string;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** POSTs a request and reads the outcome from the status (a body is read only to name the error). */
async function post(req: HttpRequest, timeoutMs: number, clock: Clock): Promise<Outcome> {
  let res: Response;
  try {
    res = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
    return { ok: false, retry: true, error: `${req.url}: ${why}` };
  }
  const text = await res.text().catch(() => '');
  if (res.ok) return { ok: true };
  const error = `${req.url} answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
  const after = retryAfterMs(res.headers.get('retry-after'), clock.now());
  return { ok: false, retry: retryable(res.status), error, ...(after !== undefined ? { retryAfterMs: after } : {}) };
}

/** A Segment-format batch body from messages as JSON text. */
export const batchBody = (messages: readonly Outgoing[], sentAt: number) => `{"batch":[${messages.map((m) => m.json).join(',')}],"sentAt":"${new Date(sentAt).toISOString()}"}`;

/** Segment-format batches, signed, to any URL. */
export function webhookSender(d: Extract<Destination, { type: 'webhook' }>, clock: Clock): Sender {
  return {
    async send(messages) {
      const body = batchBody(messages, clock.now());
      const timestamp = Math.floor(clock.now() / 1000);
      const headers = { ...d.headers, 'content-type': 'application/json', 'user-agent': 'tracklake', 'x-tracklake-signature': signature(d.secret, timestamp, body) };
      return post({ url: d.url, headers, body }, d.timeoutMs, clock);
    },
    close: async () => undefined,
  };
}

/** Any Segment-compatible HTTP Tracking API: /v1/batch, gzip, the write key as Basic auth, as analytics-node sends. */
export function segmentSender(d: Extract<Destination, { type: 'segment' }>, clock: Clock): Sender {
  const url = `${d.url.replace(/\/+$/, '')}/v1/batch`;
  const auth = `Basic ${Buffer.from(`${d.writeKey}:`).toString('base64')}`;
  return {
    async send(messages) {
      const body = await gzip(batchBody(messages, clock.now()));
      return post({ url, headers: { authorization: auth, 'content-type': 'application/json', 'content-encoding': 'gzip', 'user-agent': 'tracklake' }, body }, d.timeoutMs, clock);
    },
    close: async () => undefined,
  };
}
