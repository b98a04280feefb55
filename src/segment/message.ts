/**
 * The Segment HTTP Tracking API message: parsing a request body into messages and validating each one.
 * Validation returns reasons as data, so one bad message in a batch never costs the good ones.
 */
import { randomUUID } from 'node:crypto';
import { ok, reject, type Rejection, type Result } from '../lib/result.js';
import { isObject } from '../lib/json.js';

export const MESSAGE_TYPES = ['track', 'page', 'screen', 'identify', 'alias', 'group'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export const LIMITS = {
  messageBytes: 32 * 1024,
  requestBytes: 500 * 1024,
  batchMessages: 2500,
  messageIdChars: 100,
  idChars: 255,
  /** Earliest and latest instants a timestamp may name; outside is a client bug, not an event. */
  minTime: Date.parse('2000-01-01T00:00:00Z'),
  maxTime: Date.parse('2100-01-01T00:00:00Z'),
  /** How far past receipt an event's (skew-corrected) time may lie. */
  maxFutureMs: 24 * 3600_000,
  maxDepth: 32,
} as const;

// ISO-8601 date-time as Segment's libraries send it: date, time, optional fraction, Z or offset.
const ISO_RE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const digit = (s: string, i: number) => s.charCodeAt(i) - 48;
const two = (s: string, i: number) => digit(s, i) * 10 + digit(s, i + 1);
const isDigits = (s: string, from: number, to: number) => {
  for (let i = from; i < to; i++) if (s.charCodeAt(i) < 48 || s.charCodeAt(i) > 57) return false;
  return true;
};

/**
 * The instant an ISO-8601 date-time between 2000 and 2100 names, or NaN when it is not one (or names a day
 * that does not exist). The form Segment's libraries send, 2026-03-15T12:00:00.000Z, is read directly:
 * it runs for every message, and a regex plus Date.parse cost several times more.
 */
export function isoTime(s: unknown): number {
  if (typeof s !== 'string') return NaN;
  if (s.length === 24 && s[4] === '-' && s[7] === '-' && s[10] === 'T' && s[13] === ':' && s[16] === ':' && s[19] === '.' && s[23] === 'Z' &&
      isDigits(s, 0, 4) && isDigits(s, 5, 7) && isDigits(s, 8, 10) && isDigits(s, 11, 13) && isDigits(s, 14, 16) && isDigits(s, 17, 19) && isDigits(s, 20, 23)) {
    const y = digit(s, 0) * 1000 + digit(s, 1) * 100 + two(s, 2);
    const m = two(s, 5);
    const d = two(s, 8);
    const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
    if (m < 1 || m > 12 || d < 1 || d > (m === 2 && leap ? 29 : DAYS_IN_MONTH[m - 1]!) || two(s, 11) > 23 || two(s, 14) > 59 || two(s, 17) > 59) return NaN;
    const t = Date.UTC(y, m - 1, d, two(s, 11), two(s, 14), two(s, 17), digit(s, 20) * 100 + two(s, 21));
    return t >= LIMITS.minTime && t < LIMITS.maxTime ? t : NaN;
  }
  if (!ISO_RE.test(s)) return NaN;
  const t = Date.parse(s);
  if (!Number.isFinite(t) || t < LIMITS.minTime || t >= LIMITS.maxTime) return NaN;
  // Date.parse rolls 2026-02-31 over into March; a calendar date that does not exist is a client bug.
  const m = two(s, 5);
  const d = two(s, 8);
  const real = new Date(Date.UTC(Number(s.slice(0, 4)), m - 1, d));
  return real.getUTCMonth() === m - 1 && real.getUTCDate() === d ? t : NaN;
}

/** A valid ISO-8601 date-time between 2000 and 2100 naming a real calendar day. */
export const isIsoDate = (s: unknown): s is string => !Number.isNaN(isoTime(s));

/*
 * Validation is hand-written rather than a schema library's: it runs for every event on the collector's
 * request thread, and bench:ingest measured a zod schema at a sixth of the collector's CPU. Only the shape
 * is checked here; the fields tracklake maps are checked where they are read (tracking/map.ts). Fields are
 * checked in this order and the first failure names the rejection.
 */
const absent = (v: unknown) => v === undefined || v === null;
/**
 * An id field that is absent: null, undefined or "". RudderStack's browser SDK sends `"userId": ""` for
 * every anonymous visitor, and Segment's API reads an empty id as none (a message still needs one id).
 */
const noId = (v: unknown) => v === undefined || v === null || v === '';
const isIdentity = (v: unknown) =>
  (typeof v === 'string' && v.length >= 1 && v.length <= LIMITS.idChars) || (typeof v === 'number' && Number.isFinite(v));
const TYPES: ReadonlySet<string> = new Set(MESSAGE_TYPES);

const REASONS = {
  type: `"type" must be one of ${MESSAGE_TYPES.join(', ')}.`,
  identity: (f: string) => `"${f}" must be a non-empty string of at most ${LIMITS.idChars} characters, or a number.`,
  time: (f: string) => `"${f}" must be an ISO-8601 date between 2000 and 2100.`,
  object: (f: string) => `"${f}" must be a JSON object.`,
  messageId: `"messageId" must be a string of at most ${LIMITS.messageIdChars} characters.`,
};

// Each field read by name (not in a loop over names): payload shapes vary, and keyed reads of varying
// shapes are what made this slow.
const badIdentity = (v: unknown) => !noId(v) && !isIdentity(v);
const badObject = (v: unknown) => !absent(v) && !isObject(v);
/** An optional date-time field: NaN when absent, the instant when valid, undefined when invalid. */
const timeField = (v: unknown): number | undefined => {
  if (absent(v)) return NaN;
  const t = isoTime(v);
  return Number.isNaN(t) ? undefined : t;
};

/** The parsed date-times of a message whose shape is right. */
interface Times {
  timestamp: number;
  sentAt: number;
  originalTimestamp: number;
}

/** The first problem with a message's shape, or its date-times (each read once: this runs per message). */
function checkShape(m: Record<string, unknown>): Rejection | Times {
  if (typeof m.type !== 'string' || !TYPES.has(m.type)) return reject('unknown_type', REASONS.type);
  if (badIdentity(m.userId)) return reject('invalid_identity', REASONS.identity('userId'));
  if (badIdentity(m.anonymousId)) return reject('invalid_identity', REASONS.identity('anonymousId'));
  if (badIdentity(m.previousId)) return reject('invalid_identity', REASONS.identity('previousId'));
  if (badIdentity(m.groupId)) return reject('invalid_identity', REASONS.identity('groupId'));
  // "event" matters to track calls only (validateMessage checks it there); a page's stray event is ignored.
  if (m.type === 'track' && !absent(m.event) && typeof m.event !== 'string') return reject('missing_event', '"event" has the wrong type.');
  if (!absent(m.name) && !((typeof m.name === 'string' && m.name.length <= 1024) || (typeof m.name === 'number' && Number.isFinite(m.name)))) {
    return reject('invalid_field', '"name" must be a string of at most 1024 characters.');
  }
  // A numeric messageId is an id like a numeric userId.
  if (!absent(m.messageId) && !((typeof m.messageId === 'string' && m.messageId.length <= LIMITS.messageIdChars) || (typeof m.messageId === 'number' && Number.isFinite(m.messageId)))) {
    return reject('invalid_message_id', REASONS.messageId);
  }
  const timestamp = timeField(m.timestamp);
  if (timestamp === undefined) return reject('invalid_timestamp', REASONS.time('timestamp'));
  const sentAt = timeField(m.sentAt);
  if (sentAt === undefined) return reject('invalid_timestamp', REASONS.time('sentAt'));
  const originalTimestamp = timeField(m.originalTimestamp);
  if (originalTimestamp === undefined) return reject('invalid_timestamp', REASONS.time('originalTimestamp'));
  if (badObject(m.properties)) return reject('invalid_object', REASONS.object('properties'));
  if (badObject(m.context)) return reject('invalid_object', REASONS.object('context'));
  if (badObject(m.traits)) return reject('invalid_object', REASONS.object('traits'));
  if (badObject(m.integrations)) return reject('invalid_object', REASONS.object('integrations'));
  return { timestamp, sentAt, originalTimestamp };
}

/** A message that passed validation, with ids as strings and the batch's context and sentAt folded in. */
export interface SegmentMessage {
  type: MessageType;
  messageId: string;
  userId?: string;
  anonymousId?: string;
  previousId?: string;
  event?: string;
  name?: string;
  /** timestamp (or originalTimestamp) and sentAt (the message's or the batch's) in epoch ms; NaN when absent. */
  timestampMs: number;
  sentAtMs: number;
  properties: Record<string, unknown>;
  context: Record<string, unknown>;
}

/** What the request carried around its messages (batch-level fields). */
export interface Envelope {
  context?: Record<string, unknown>;
  /** The batch's sentAt in epoch ms. */
  sentAtMs?: number;
  /** Size of the whole request body; when it is under the per-message limit no message can be over it. */
  bodyBytes?: number;
}

const idString = (v: Identity): string | undefined => (noId(v) ? undefined : String(v));

/**
 * Whether a value nests deeper than max. Recursion stops at max, so a hostile body cannot blow the stack
 * (JSON.parse itself is not recursive; JSON.stringify, used to size large messages, is).
 */
function tooDeep(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (max === 0) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (tooDeep(value[i], max - 1)) return true;
  } else {
    for (const k in value) if (tooDeep((value as Record<string, unknown>)[k], max - 1)) return true;
  }
  return false;
}

function byteSize(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

export function validateMessage(raw: unknown, envelope: Envelope = {}): Result<SegmentMessage> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return reject('message_not_object', 'A message must be a JSON object.');
  }
  if (tooDeep(raw, LIMITS.maxDepth)) {
    return reject('invalid_field', `The message nests deeper than ${LIMITS.maxDepth} levels.`);
  }
  if ((envelope.bodyBytes === undefined || envelope.bodyBytes > LIMITS.messageBytes) && byteSize(raw) > LIMITS.messageBytes) {
    return reject('message_too_large', `The message is over the ${LIMITS.messageBytes / 1024} KB per-message limit.`);
  }
  const m = raw as Record<string, unknown>;
  const times = checkShape(m);
  if ('ok' in times) return times;
  const userId = idString(m.userId as Identity);
  const anonymousId = idString(m.anonymousId as Identity);
  if (userId === undefined && anonymousId === undefined) {
    return reject('missing_identity', 'A message needs "userId" or "anonymousId".');
  }
  const type = m.type as MessageType;
  const event = type === 'track' && typeof m.event === 'string' ? m.event : undefined;
  if (type === 'track' && (event === undefined || event.trim() === '')) {
    return reject('missing_event', 'A track message needs "event", a non-empty string.');
  }
  if (type === 'track' && event!.length > 200) {
    return reject('missing_event', '"event" is over 200 characters.');
  }
  if (type === 'alias' && noId(m.previousId)) {
    return reject('missing_previous_id', 'An alias message needs "previousId".');
  }
  const own = (m.context ?? undefined) as Record<string, unknown> | undefined;
  const context = envelope.context ? { ...envelope.context, ...own } : (own ?? EMPTY);
  return ok({
    type,
    // An empty id is no id: it would make every such message a duplicate of the first.
    messageId: noId(m.messageId) ? `tl-${randomUUID()}` : String(m.messageId),
    userId,
    anonymousId,
    previousId: idString(m.previousId as Identity),
    event,
    name: absent(m.name) || m.name === '' ? undefined : String(m.name),
    timestampMs: absent(m.timestamp) ? times.originalTimestamp : times.timestamp,
    sentAtMs: absent(m.sentAt) ? (envelope.sentAtMs ?? NaN) : times.sentAt,
    properties: (m.properties ?? EMPTY) as Record<string, unknown>,
    context,
  });
}

const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;
type Identity = string | number | null | undefined;

/** The request body of /v1/batch and /v1/import. */
export interface BatchBody {
  messages: unknown[];
  envelope: Envelope;
}

/**
 * Splits a parsed body into its messages: a batch for /v1/batch, else one message whose type the path gives.
 * The path's type wins over the body's, as in Segment's API.
 */
export function splitBody(body: unknown, pathType: MessageType | 'batch', bodyBytes?: number): Result<BatchBody> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return reject('invalid_body', 'The body must be a JSON object.');
  }
  const b = body as Record<string, unknown>;
  if (pathType !== 'batch') {
    return ok({ messages: [{ ...b, type: pathType }], envelope: { bodyBytes } });
  }
  if (!Array.isArray(b.batch)) return reject('batch_not_array', '"batch" must be an array of messages.');
  if (b.batch.length === 0) return reject('batch_empty', 'The batch has no messages.');
  if (b.batch.length > LIMITS.batchMessages) {
    return reject('batch_too_large', `The batch has ${b.batch.length} messages; the limit is ${LIMITS.batchMessages}.`);
  }
  const envelope: Envelope = { bodyBytes };
  if (b.context !== undefined && b.context !== null) {
    if (typeof b.context !== 'object' || Array.isArray(b.context)) return reject('invalid_object', '"context" must be a JSON object.');
    envelope.context = b.context as Record<string, unknown>;
  }
  if (b.sentAt !== undefined && b.sentAt !== null) {
    const t = isoTime(b.sentAt);
    if (Number.isNaN(t)) return reject('invalid_timestamp', REASONS.time('sentAt'));
    envelope.sentAtMs = t;
  }
  return ok({ messages: b.batch, envelope });
}
