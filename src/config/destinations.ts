/**
 * Destinations in the configuration: where the collector forwards every message it logged (forward/).
 * Each is checked at start-up, so one that cannot work (an unknown type, a bad URL, a missing secret) stops
 * the start with exit 2 naming it, instead of failing message after message at run time.
 */
import { z } from 'zod';
import { tenantId } from './ids.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Bytes a batch may hold: a type's own default, within one range for all. */
const batchBytes = (bytes: number) => z.coerce.number().int().min(KiB).max(32 * MiB).default(bytes);
const httpUrl = z
  .url({ protocol: /^https?$/, error: 'an http(s) URL' })
  .refine((u) => URL.canParse(u) && !new URL(u).hash, 'no fragment');

/** Headers a webhook request's sender writes itself (forward/sender.ts). */
const OWN_HEADERS = new Set(['content-type', 'content-length', 'transfer-encoding', 'content-encoding', 'host', 'connection', 'x-tracklake-signature']);

const common = {
  /** Names the destination in metrics, logs, the state folder and the bucket (`deadletter/<name>/…`). */
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'a destination name is 1-64 lowercase letters, digits, "_" or "-"'),
  /** Only these tenants' messages; unset: every tenant's. */
  tenants: z.array(tenantId).min(1).optional(),
  /**
   * Only these events: track calls by event name, other calls by type (`identify`, `page`, …); `*` matches
   * any run of characters. Unset: every message.
   */
  events: z.array(z.string().min(1).max(256)).min(1).optional(),
  /** Also forward messages the tracking plan blocked (quarantined), flagged `context.tracklake.blocked`. */
  includeBlocked: z.boolean().default(false),
  /** Past this many bytes of the log waiting for it, the destination's backlog moves to the bucket. */
  maxLagBytes: z.coerce.number().int().min(64 * KiB).default(256 * MiB),
  /** Attempts at a batch before its messages go to the dead letters. */
  maxAttempts: z.coerce.number().int().min(1).max(100).default(10),
  /** Backoff between attempts: jittered, doubling from retryBaseMs up to retryMaxMs. */
  retryBaseMs: z.coerce.number().int().min(1).max(600_000).default(500),
  retryMaxMs: z.coerce.number().int().min(1).max(3_600_000).default(60_000),
  /** One request's time limit. */
  timeoutMs: z.coerce.number().int().min(100).max(300_000).default(10_000),
  /** How long a batch short of both batchCount and batchBytes waits for more messages before it is sent. */
  lingerMs: z.coerce.number().int().min(0).max(60_000).default(200),
  /**
   * Messages per request (or per Postgres transaction), and bytes per request. Each request has a cost of its
   * own, on both sides: bench:forward's collector spent 47 µs of CPU per event with a webhook at 100 a request,
   * 39.5 at 500. 500 of bench:ingest's messages are about 250 KB, half of batchBytes (segment destinations
   * default lower: Segment's API takes 500 KB a batch).
   */
  batchCount: z.coerce.number().int().min(1).max(10_000).default(500),
  batchBytes: batchBytes(500 * KiB),
};

const webhook = z.strictObject({
  ...common,
  type: z.literal('webhook'),
  url: httpUrl,
  /** Signs each request (X-Tracklake-Signature: HMAC-SHA256 of "<timestamp>.<body>"). */
  secret: z.string().min(16, 'at least 16 characters'),
  /**
   * Extra headers on every request (an API key the receiver wants, say). Not those the sender writes
   * itself: node:http keeps the last of two spellings of a name, the sender's, so one set here would be
   * dropped without a word.
   */
  headers: z
    .record(z.string(), z.string().regex(/^[^\r\n]*$/, 'one line'))
    .superRefine((headers, ctx) => {
      for (const h of Object.keys(headers)) {
        // Checked here, not as the record's key schema: zod names a bad key only "Invalid key in record".
        if (!/^[A-Za-z0-9-]+$/.test(h)) ctx.addIssue({ code: 'custom', path: [h], message: 'a header name is letters, digits and "-"' });
        else if (OWN_HEADERS.has(h.toLowerCase())) ctx.addIssue({ code: 'custom', path: [h], message: `${h} is the sender's own: it cannot be set` });
      }
    })
    .default({}),
});

const segment = z.strictObject({
  ...common,
  type: z.literal('segment'),
  /** The API's base URL: https://api.segment.io, a RudderStack data plane, another tracklake. */
  url: httpUrl,
  writeKey: z.string().min(1),
  // Segment's API refuses a batch over 500 KB; analytics-node fills its batches to 480 KiB to keep clear of
  // it, and so does this (the default 500 KiB of the others is over that limit).
  batchBytes: batchBytes(480 * KiB),
});

const postgres = z.strictObject({
  ...common,
  type: z.literal('postgres'),
  // The Postgres client parses it as a URL (pg-connection-string): one it cannot parse failed every batch
  // at run time, so every message went to the dead letters. The value is not echoed: it may hold a password.
  url: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, 'a postgres:// URL')
    .refine((u) => URL.canParse(u), 'not a URL: a user name or password with a character a URL reserves (/ ? # @ : and space) must be percent-encoded, or left out of the URL and set as PGUSER or PGPASSWORD'),
  /** The schema that holds one table per tenant (`tracks_<tenant>`; forward/postgres.ts, tenantTable). */
  schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lowercase SQL name').default('tracklake'),
  // A transaction a batch, each with its commit's flush: rows per second against one plain COPY of the same
  // rows (bench:forward) at 100 a batch, a quarter; 1000, 0.80; 2000, 0.89; 5000, 0.96; 10 000, 1.04.
  batchCount: z.coerce.number().int().min(1).max(10_000).default(5000),
  batchBytes: batchBytes(8 * MiB),
});

export const destinationSchema = z.discriminatedUnion('type', [webhook, segment, postgres], {
  error: (issue) => (issue.code === 'invalid_union' ? 'type must be webhook, segment or postgres' : undefined),
});

export const destinationsSchema = z
  .array(destinationSchema)
  .default([])
  .superRefine((ds, ctx) => {
    const seen = new Set<string>();
    for (const [i, d] of ds.entries()) {
      if (seen.has(d.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `two destinations are named "${d.name}"` });
      seen.add(d.name);
      if (d.retryMaxMs < d.retryBaseMs) ctx.addIssue({ code: 'custom', path: [i, 'retryMaxMs'], message: 'must be at least retryBaseMs' });
    }
  });

export type Destination = z.infer<typeof destinationSchema>;

/** What decides which messages a destination takes (the preparing workers get these, as data). */
export type DestinationFilterSpec = Pick<Destination, 'tenants' | 'events' | 'includeBlocked'>;

/** `*` as any run of characters; everything else literal. */
function globRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** Which messages a destination forwards: its tenants, its events (track calls by name, others by type), blocked or not. */
export function destinationFilter(d: DestinationFilterSpec): (f: { tenant: string; name: string; blocked: boolean }) => boolean {
  const tenants = d.tenants ? new Set(d.tenants) : undefined;
  const events = d.events?.map(globRegExp);
  return (f) => {
    if (f.blocked && !d.includeBlocked) return false;
    if (tenants && !tenants.has(f.tenant)) return false;
    return !events || events.some((e) => e.test(f.name));
  };
}

/**
 * An issue's setting as the operator wrote it: `destinations.crm.url` rather than `destinations.0.url`,
 * when the destination has a name.
 */
export function destinationSetting(pathParts: readonly PropertyKey[], input: unknown): string | undefined {
  if (pathParts[0] !== 'destinations' || typeof pathParts[1] !== 'number') return undefined;
  const list = (input as { destinations?: unknown } | null)?.destinations;
  const name = Array.isArray(list) ? (list[pathParts[1]] as { name?: unknown } | undefined)?.name : undefined;
  const rest = pathParts.slice(2).map(String);
  return ['destinations', typeof name === 'string' && name !== '' ? name : String(pathParts[1]), ...rest].join('.');
}
