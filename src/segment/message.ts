/**
 * The Segment HTTP Tracking API message: parsing a request body into messages and validating each one.
 * Validation returns reasons as data, so one bad message in a batch never costs the good ones.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ErrorCode } from '../lib/errors.js';
import { ok, reject, type Rejection, type Result } from '../lib/result.js';

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

const isoDate = z.string().refine((s) => {
  if (!ISO_RE.test(s)) return false;
  const t = Date.parse(s);
  // Date.parse rolls 2026-02-31 over into March; a calendar date that does not exist is a client bug.
  const [y, m, d] = s.slice(0, 10).split('-').map(Number) as [number, number, number];
  const real = new Date(Date.UTC(y, m - 1, d));
  if (real.getUTCMonth() !== m - 1 || real.getUTCDate() !== d) return false;
  return Number.isFinite(t) && t >= LIMITS.minTime && t < LIMITS.maxTime;
});
// Only the shape is checked here; the fields tracklake maps are checked where they are read.
const plainObject = z.custom<Record<string, unknown>>((v) => v !== null && typeof v === 'object' && !Array.isArray(v));
const identity = z.union([z.string().min(1).max(LIMITS.idChars), z.number().finite()]);

/** Field → reason code; the first failing field names the rejection. */
const FIELD_CODES: Record<string, ErrorCode> = {
  type: 'unknown_type',
  event: 'missing_event',
  userId: 'invalid_identity',
  anonymousId: 'invalid_identity',
  previousId: 'invalid_identity',
  groupId: 'invalid_identity',
  timestamp: 'invalid_timestamp',
  sentAt: 'invalid_timestamp',
  originalTimestamp: 'invalid_timestamp',
  properties: 'invalid_object',
  context: 'invalid_object',
  traits: 'invalid_object',
  integrations: 'invalid_object',
  messageId: 'invalid_message_id',
};

const messageSchema = z.object({
  type: z.enum(MESSAGE_TYPES),
  userId: identity.optional().nullable(),
  anonymousId: identity.optional().nullable(),
  previousId: identity.optional().nullable(),
  groupId: identity.optional().nullable(),
  event: z.string().optional(),
  name: z.string().max(1024).optional().nullable(),
  messageId: z.string().max(LIMITS.messageIdChars).optional().nullable(),
  timestamp: isoDate.optional().nullable(),
  sentAt: isoDate.optional().nullable(),
  originalTimestamp: isoDate.optional().nullable(),
  properties: plainObject.optional().nullable(),
  context: plainObject.optional().nullable(),
  traits: plainObject.optional().nullable(),
  integrations: plainObject.optional().nullable(),
});

/** A message that passed validation, with ids as strings and the batch's context and sentAt folded in. */
export interface SegmentMessage {
  type: MessageType;
  messageId: string;
  userId?: string;
  anonymousId?: string;
  previousId?: string;
  event?: string;
  name?: string;
  timestamp?: string;
  sentAt?: string;
  properties: Record<string, unknown>;
  context: Record<string, unknown>;
}

/** What the request carried around its messages (batch-level fields). */
export interface Envelope {
  context?: Record<string, unknown>;
  sentAt?: string;
  /** Size of the whole request body; when it is under the per-message limit no message can be over it. */
  bodyBytes?: number;
}

const idString = (v: string | number | null | undefined): string | undefined =>
  v === null || v === undefined ? undefined : String(v);

/** Depth of nested objects/arrays, walked without recursion so a hostile body cannot blow the stack. */
function tooDeep(value: unknown, max: number): boolean {
  const values: unknown[] = [value];
  const depths: number[] = [0];
  while (values.length > 0) {
    const v = values.pop() as object;
    const d = depths.pop()!;
    if (d >= max) return true;
    if (Array.isArray(v)) {
      for (const child of v) if (child !== null && typeof child === 'object') (values.push(child), depths.push(d + 1));
    } else {
      for (const k in v) {
        const child = (v as Record<string, unknown>)[k];
        if (child !== null && typeof child === 'object') (values.push(child), depths.push(d + 1));
      }
    }
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
  const parsed = messageSchema.safeParse(raw);
  if (!parsed.success) return fromZod(parsed.error);
  const m = parsed.data;

  const userId = idString(m.userId);
  const anonymousId = idString(m.anonymousId);
  if (userId === undefined && anonymousId === undefined) {
    return reject('missing_identity', 'A message needs "userId" or "anonymousId".');
  }
  if (m.type === 'track' && (typeof m.event !== 'string' || m.event.trim() === '')) {
    return reject('missing_event', 'A track message needs "event", a non-empty string.');
  }
  if (m.type === 'track' && m.event!.length > 200) {
    return reject('missing_event', '"event" is over 200 characters.');
  }
  if (m.type === 'alias' && (m.previousId === undefined || m.previousId === null)) {
    return reject('missing_previous_id', 'An alias message needs "previousId".');
  }
  const context = envelope.context ? { ...envelope.context, ...(m.context ?? {}) } : (m.context ?? {});
  return ok({
    type: m.type,
    // An empty id is no id: it would make every such message a duplicate of the first.
    messageId: m.messageId ? m.messageId : `tl-${randomUUID()}`,
    userId,
    anonymousId,
    previousId: idString(m.previousId),
    event: m.event,
    name: m.name ?? undefined,
    timestamp: m.timestamp ?? m.originalTimestamp ?? undefined,
    sentAt: m.sentAt ?? envelope.sentAt ?? undefined,
    properties: m.properties ?? {},
    context,
  });
}

function fromZod(error: z.ZodError): Rejection {
  const issue = error.issues[0]!;
  const field = String(issue.path[0] ?? '');
  const code = FIELD_CODES[field] ?? 'invalid_field';
  const what = field === '' ? 'message' : `"${field}"`;
  const detail =
    code === 'invalid_timestamp'
      ? 'must be an ISO-8601 date between 2000 and 2100'
      : code === 'unknown_type'
        ? `must be one of ${MESSAGE_TYPES.join(', ')}`
        : code === 'invalid_message_id'
          ? `must be a string of at most ${LIMITS.messageIdChars} characters`
          : code === 'invalid_identity'
            ? `must be a non-empty string of at most ${LIMITS.idChars} characters, or a number`
            : code === 'invalid_object'
              ? 'must be a JSON object'
              : 'has the wrong type';
  return reject(code, `${what} ${detail}.`);
}

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
    const s = isoDate.safeParse(b.sentAt);
    if (!s.success) return reject('invalid_timestamp', '"sentAt" must be an ISO-8601 date between 2000 and 2100.');
    envelope.sentAt = s.data;
  }
  return ok({ messages: b.batch, envelope });
}
