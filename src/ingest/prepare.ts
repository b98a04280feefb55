/**
 * Preparing a request: everything between the body's bytes and a log payload that needs no shared state.
 * The body is decoded and parsed, the write key resolved to its tenant, each message validated, mapped to
 * rows and rendered as CSV, and the accepted ones laid out as one log payload; a tenant's tracking plan is
 * applied on the way (plan/apply.ts). It is a function of the request and the settings alone (it only also
 * counts observed schemas, handed over later), so it runs on worker threads (ingest/preparer.ts) as well as
 * inline; what needs the process's state (duplicates, the log) happens afterwards in the Collector.
 */
import { isUtf8 } from 'node:buffer';
import { destinationFilter, type DestinationFilterSpec } from '../config/destinations.js';
import { ERRORS, type ErrorCode } from '../lib/errors.js';
import { DAY_MS, dayOf } from '../lib/dates.js';
import { isObject } from '../lib/json.js';
import { reject, type Rejection } from '../lib/result.js';
import { splitBody, validateMessage, type MessageType } from '../segment/message.js';
import { IDENTITY_COLUMNS } from '../tracking/columns.js';
import { csvRecord, trackCsv } from '../tracking/csv.js';
import { UaClassifier } from '../tracking/enrich.js';
import { buildEventMap, type EventMap } from '../tracking/events.js';
import { eventTime, mapMessage, type MapContext } from '../tracking/map.js';
import { quarantineLine, violationLine } from '../plan/files.js';
import { judge } from '../plan/apply.js';
import { ObservationCounter } from '../plan/observe.js';
import { parsePlan, violationCode, type CompiledPlan } from '../plan/plan.js';
import { AddressReducer, KEEP_ALL, reduceCoordinate, type Retention } from '../privacy/reduce.js';
import { SuppressionSet, type SuppressionLists } from '../privacy/subjects.js';
import { fingerprintInto } from '../lib/fingerprint.js';
import { forwardLine, RecordWriter } from './records.js';
import { encodeFrame } from './wal.js';

export interface RawRequest {
  /** The body as received, decompressed; empty when there was none. */
  body: Uint8Array;
  /** The write key from HTTP Basic auth, when given there. */
  basicKey: string | undefined;
  /** The write key from a `writeKey` query parameter (RudderStack's beacon), when given there. */
  queryKey?: string;
  pathType: MessageType | 'batch';
  clientIp: string | null;
  receivedAt: number;
}

export interface RejectedMessage {
  index: number;
  messageId: string | null;
  code: ErrorCode;
  reason: string;
}

export interface PreparedRequest {
  tenant: string;
  /** Messages in the request, accepted or not. */
  messages: number;
  rejected: RejectedMessage[];
  /** The dedup fingerprints (lib/fingerprint.ts) of the records in frame, in order: two int32 each. */
  fingerprints: Int32Array;
  /** The records of the accepted messages that have rows, as one log frame (ingest/wal.ts, encodeFrame). */
  frame: Uint8Array;
  /**
   * Tracking-plan violations, three int32 each: the record's index in frame, the violation type's and the
   * action's index (plan/plan.ts, violationCode), so the request thread counts those of records it keeps.
   */
  violations?: Int32Array;
  /** Messages acknowledged but written nowhere: their subject is suppressed (privacy/subjects.ts). */
  suppressed?: number;
  /**
   * Set when the frame is memory a worker lends (ingest/frame-arena.ts): call it once the frame is written to
   * the log or dropped, and do not read the frame after. The collector does.
   */
  release?: () => void;
}

/** A request refused as a whole; for a batch whose every message was refused, the reasons come along. */
export type RequestRejection = Rejection & { rejected?: RejectedMessage[] };
export type PrepareResult = { ok: true; value: PreparedRequest } | RequestRejection;

/** What preparing needs from the configuration: plain data, so it can be sent to a worker. */
export interface PrepareSettings {
  sources: Readonly<Record<string, string>>;
  events: Readonly<Record<string, string>>;
  /**
   * tenant → its tracking plan's file and text. The text comes along (not just the path) so every worker
   * compiles the very plan that was checked at start-up.
   */
  plans?: Readonly<Record<string, { file: string; text: string }>>;
  /** What is kept of addresses and positions: the default, and per write key. */
  retention?: { all: Retention; bySource: Readonly<Record<string, Retention>> };
  /** The privacy secret: keys the hashes of suppressed subjects and of addresses in `hash` mode. */
  privacySecret?: string;
  /** The suppression lists in force (privacy/subjects.ts). */
  suppressions?: SuppressionLists;
  /**
   * The configured destinations' filters: a message one of them wants is also logged whole, as they forward
   * it (`m`); nothing else is, so a destination for one tenant or a few events costs the log little.
   */
  forward?: readonly DestinationFilterSpec[];
}

export class RequestPreparer {
  private readonly eventMap: EventMap;
  private readonly uaClassifier = new UaClassifier();
  /** Lays out the records of the request being prepared; encodeFrame copies them out. */
  private readonly records = new RecordWriter();
  private readonly plans = new Map<string, CompiledPlan>();
  /** Observed schemas (plan/observe.ts), handed over with takeObserved. */
  readonly observed = new ObservationCounter();
  private readonly suppressions: SuppressionSet;
  private readonly reducer: AddressReducer;
  /** Whether each destination wants a message. */
  private readonly forwardTo: ReadonlyArray<ReturnType<typeof destinationFilter>>;

  // The day of the last row, and the instants it spans: a request's rows nearly always share a day.
  private day = '';
  private dayStart = NaN;

  /** frameMemory: where frames are made (a worker's ring, ingest/frame-arena.ts); else a buffer each. */
  constructor(private readonly settings: PrepareSettings, private readonly frameMemory?: (size: number) => Buffer) {
    this.eventMap = buildEventMap(settings.events);
    this.setPlans(settings.plans ?? {});
    this.suppressions = new SuppressionSet(settings.suppressions);
    this.reducer = new AddressReducer(settings.privacySecret);
    this.forwardTo = (settings.forward ?? []).map(destinationFilter);
  }

  /** Puts these suppression lists in force for the requests prepared from now on. */
  setSuppressions(lists: SuppressionLists): void {
    this.suppressions.set(lists);
  }

  /** Puts these plans in force for the requests prepared from now on (a reload: tracklake serve's SIGHUP). */
  setPlans(plans: NonNullable<PrepareSettings['plans']>): void {
    // A plan shared by several tenants is compiled once.
    const byFile = new Map<string, CompiledPlan>();
    this.plans.clear();
    for (const [tenant, { file, text }] of Object.entries(plans)) {
      let plan = byFile.get(file);
      if (!plan) byFile.set(file, (plan = parsePlan(text, file)));
      this.plans.set(tenant, plan);
    }
  }

  private dayOf(time: number): string {
    if (!(time >= this.dayStart && time < this.dayStart + DAY_MS)) {
      this.day = dayOf(time);
      this.dayStart = Math.floor(time / DAY_MS) * DAY_MS;
    }
    return this.day;
  }

  prepare(req: RawRequest): PrepareResult {
    const parsed = parseBody(req.body);
    if (!parsed.ok) return parsed;
    const { json, mayHoldNul } = parsed.value;
    const writeKey = req.basicKey ?? bodyWriteKey(json) ?? req.queryKey;
    if (writeKey === undefined) return reject('missing_write_key', ERRORS.missing_write_key.message);
    const tenant = tenantOf(this.settings.sources, writeKey);
    if (tenant === undefined) return reject('unknown_write_key', ERRORS.unknown_write_key.message);
    if (json === undefined) return reject('invalid_body', 'The body is empty; send a JSON object.');
    const split = splitBody(json, req.pathType, req.body.length);
    if (!split.ok) return split;

    const { messages, envelope } = split.value;
    const retention = retentionOf(this.settings.retention, writeKey);
    const receiptDay = this.dayOf(req.receivedAt);
    const keep = retention === KEEP_ALL ? undefined : {
      ip: (ip: string) => this.reducer.reduce(ip, retention.ipMode, receiptDay),
      coordinate: (v: number) => reduceCoordinate(v, retention.geoPrecision)!,
    };
    const mapContext: MapContext = { tenant, receivedAt: req.receivedAt, clientIp: req.clientIp, eventMap: this.eventMap, uaClassifier: this.uaClassifier, mayHoldNul, keep };
    const rejected: RejectedMessage[] = [];
    const records = this.records;
    records.reset();
    const fingerprints = new Int32Array(2 * messages.length);
    const refuse = (index: number, r: Rejection) => {
      const id = (messages[index] as { messageId?: unknown } | null)?.messageId;
      rejected.push({ index, messageId: typeof id === 'string' ? id.slice(0, 100) : null, code: r.code, reason: r.message });
    };
    const plan = this.plans.get(tenant);
    let violations: number[] | undefined;
    let suppressed = 0;
    let times: RequestTimes | undefined; // a forwarded message's receivedAt and sentAt: the request's, written once
    for (let index = 0; index < messages.length; index++) {
      const validated = validateMessage(messages[index], envelope);
      if (!validated.ok) {
        refuse(index, validated);
        continue;
      }
      const v = validated.value;
      // A suppressed subject's message is acknowledged like any other (so the client does not retry it) and
      // goes nowhere: no rows, no violations, no quarantine, no observed schema, not even a dedup id.
      if (this.suppressions.suppresses(tenant, { userId: v.userId, anonymousId: v.anonymousId, deviceId: deviceIdOf(v.context), previousId: v.previousId })) {
        suppressed++;
        continue;
      }
      const raw = messages[index] as Record<string, unknown>;
      const { message: msg, verdict, observedAs, values } = judge(plan, validated.value, raw);
      const rows = mapMessage(msg, mapContext);
      if (!rows.ok) {
        refuse(index, rows);
        continue;
      }
      if (observedAs !== undefined) this.observed.observe(receiptDay, tenant, observedAs, values);
      const { tracks, identities } = rows.value;
      const flagged = verdict !== undefined && verdict.violations.length > 0;
      const name = msg.type === 'track' && typeof msg.event === 'string' ? msg.event : msg.type;
      const blocked = flagged && verdict.action === 'block';
      const forward = this.forwardTo.length > 0 && this.forwardTo.some((wants) => wants({ tenant, name, blocked }));
      if (tracks.length === 0 && identities.length === 0 && !flagged && !forward) continue; // group calls, identify without a link
      const k = records.records;
      fingerprintInto(tenant, msg.messageId, fingerprints, k);
      records.record(fingerprints[2 * k]!, fingerprints[2 * k + 1]!, req.receivedAt);
      if (!blocked) {
        for (const row of tracks) records.row('t', this.dayOf(row.time), trackCsv(row));
        for (const row of identities) records.row('i', this.dayOf(row.time), csvRecord(row, IDENTITY_COLUMNS));
      }
      // A violation's row, a blocked message and a forwarded one go to the day of the message's own rows.
      const time = tracks[0]?.time ?? identities[0]?.time ?? Math.round(eventTime(msg, req.receivedAt));
      const day = this.dayOf(time);
      if (forward) records.row('m', day, ...forwardLine(tenant, blocked, req.receivedAt, name, forwardedMessage(raw, msg, envelope, (times ??= requestTimes(req, envelope)), req.clientIp, retention, keep?.ip, blocked)));
      if (!flagged) continue;
      if (blocked) {
        // Kept whole, out of the tracking files, until `plan replay` lets it in.
        // With less kept (ipMode, geoPrecision), the message is stored as reduced as its tracking rows would be.
        const kept = keep === undefined ? undefined : keptMessage(raw, envelope.context, retention, keep.ip, req.clientIp);
        const entry = { tenant, receivedAt: req.receivedAt, ip: kept?.ip ?? req.clientIp, messageId: msg.messageId, context: kept?.context ?? envelope.context, sentAt: envelope.sentAtMs, violations: verdict.violations, message: kept?.message ?? raw };
        records.row('q', day, quarantineLine(entry));
      }
      for (const v of verdict.violations) {
        records.row('v', day, violationLine(time, tenant, msg.messageId, msg.event ?? msg.type, v, verdict.action));
        (violations ??= []).push(k, ...violationCode(v.type, verdict.action));
      }
    }
    if (rejected.length === messages.length) {
      const first = rejected[0]!;
      if (req.pathType !== 'batch') return reject(first.code, first.reason);
      return { ok: false, code: 'all_rejected', message: `No message was valid; the first (index ${first.index}) was rejected: ${first.reason}`, rejected };
    }
    const frame = encodeFrame(records.parts(), this.frameMemory);
    const value: PreparedRequest = { tenant, messages: messages.length, rejected, fingerprints: fingerprints.slice(0, 2 * records.records), frame };
    if (violations) value.violations = Int32Array.from(violations);
    if (suppressed > 0) value.suppressed = suppressed;
    return { ok: true, value };
  }
}

/** The retention of a write key's source: its own, else the default, else everything kept. */
function retentionOf(r: PrepareSettings['retention'], writeKey: string): Retention {
  if (r === undefined) return KEEP_ALL;
  const own = Object.hasOwn(r.bySource, writeKey) ? r.bySource[writeKey] : undefined;
  const chosen = own ?? r.all;
  return chosen.ipMode === 'full' && chosen.geoPrecision === undefined ? KEEP_ALL : chosen;
}

function deviceIdOf(context: Record<string, unknown>): string | undefined {
  const id = isObject(context.device) ? context.device.id : undefined;
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

type Json = Record<string, unknown>;

/**
 * A blocked message and its batch context as quarantine keeps them under a reduced retention: the address
 * goes to the entry's `ip` reduced (a replay maps it from there) and leaves `context.ip` unless it is still
 * an address (truncate); positions are rounded. Copies: the request's objects are not changed.
 */
function keptMessage(raw: Json, batchContext: Json | undefined, retention: Retention, keptIp: (ip: string) => string | null, clientIp: string | null) {
  const reduceContext = (c: unknown): Json | undefined => {
    if (!isObject(c)) return undefined;
    const out: Json = { ...c };
    if (typeof out.ip === 'string') {
      if (retention.ipMode === 'truncate') out.ip = keptIp(out.ip);
      else if (retention.ipMode !== 'full') delete out.ip;
    }
    const loc = out.location;
    if (retention.geoPrecision !== undefined && isObject(loc)) {
      const l: Json = { ...loc };
      for (const k of ['latitude', 'longitude']) if (typeof l[k] === 'number') l[k] = reduceCoordinate(l[k] as number, retention.geoPrecision);
      out.location = l;
    }
    return out;
  };
  const ownIp = (c: unknown) => (isObject(c) && typeof c.ip === 'string' ? c.ip : undefined);
  const address = ownIp(raw.context) ?? ownIp(batchContext) ?? clientIp;
  const message: Json = { ...raw };
  if (raw.context !== undefined) message.context = reduceContext(raw.context) ?? raw.context;
  return {
    ip: address === null ? null : keptIp(address),
    context: batchContext === undefined ? undefined : reduceContext(batchContext),
    message,
  };
}

/**
 * A message as destinations get it (the `m` row; forward/messages.ts reads it), the way Segment's servers
 * pass one on: the batch's context under the message's own, the messageId and type as accepted (a generated
 * id included, so receivers can drop a repeat), receivedAt, sentAt, and the client's address as context.ip,
 * all as reduced as the tracking rows are under the source's retention. The write key stays behind: each
 * destination sends with its own.
 */
function forwardedMessage(raw: Json, msg: { messageId: string; type: string }, envelope: { context?: Json }, times: RequestTimes, clientIp: string | null, retention: Retention, keptIp: ((ip: string) => string | null) | undefined, blocked: boolean): Json {
  const kept = keptIp === undefined ? undefined : keptMessage(raw, envelope.context, retention, keptIp, clientIp);
  const message: Json = { ...(kept?.message ?? raw) };
  delete message.writeKey;
  const batchContext = kept ? kept.context : envelope.context;
  const own = isObject(message.context) ? message.context : {};
  const context: Json = { ...(isObject(batchContext) ? batchContext : {}), ...own };
  const ip = kept ? kept.ip : clientIp;
  if (typeof context.ip !== 'string' && ip !== null) context.ip = ip;
  // A message the tracking plan blocked says so, for destinations that take those too (includeBlocked).
  if (blocked) context.tracklake = { ...(isObject(context.tracklake) ? context.tracklake : {}), blocked: true };
  message.context = context;
  message.messageId = msg.messageId;
  message.type = msg.type;
  message.receivedAt = times.receivedAt;
  if (message.sentAt === undefined && times.sentAt !== undefined) message.sentAt = times.sentAt;
  return message;
}

/** A request's receipt and its batch's sentAt as forwarded messages carry them (ISO 8601). */
interface RequestTimes {
  receivedAt: string;
  sentAt?: string;
}

function requestTimes(req: RawRequest, envelope: { sentAtMs?: number }): RequestTimes {
  const receivedAt = new Date(req.receivedAt).toISOString();
  return envelope.sentAtMs === undefined ? { receivedAt } : { receivedAt, sentAt: new Date(envelope.sentAtMs).toISOString() };
}

/** Strict UTF-8, then JSON; undefined for an empty body (which is refused once the key is known). */
function parseBody(body: Uint8Array): { ok: true; value: { json: unknown; mayHoldNul: boolean } } | Rejection {
  if (body.length === 0) return { ok: true, value: { json: undefined, mayHoldNul: false } };
  if (!isUtf8(body)) return reject('invalid_encoding', 'The body is not valid UTF-8.');
  let text = Buffer.from(body.buffer, body.byteOffset, body.length).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte order mark is allowed before the JSON
  try {
    return { ok: true, value: { json: JSON.parse(text) as unknown, mayHoldNul: text.includes('\\u0000') } };
  } catch (e) {
    // Told apart only once parsing failed: testing every body first copied it (trim) on the worker's hot path.
    if (/^\s*$/.test(text)) return reject('invalid_body', 'The body is empty; send a JSON object.');
    return reject('invalid_json', `The body is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
}

/** The tenant a write key belongs to, or undefined for a key no source has (own keys only: never "__proto__"'s). */
export function tenantOf(sources: Readonly<Record<string, string>>, writeKey: string | undefined): string | undefined {
  return writeKey !== undefined && Object.hasOwn(sources, writeKey) ? sources[writeKey] : undefined;
}

/** The write key a body carries, for clients that send it there instead of in Basic auth. */
function bodyWriteKey(body: unknown): string | undefined {
  if (body && typeof body === 'object' && !Array.isArray(body) && Object.hasOwn(body, 'writeKey')) {
    const k = (body as Record<string, unknown>).writeKey;
    return typeof k === 'string' && k !== '' ? k : undefined;
  }
  return undefined;
}
