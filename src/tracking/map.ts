/**
 * From a validated Segment message to seed-003 rows: the column table of the collector issue, one place.
 * Type problems in the fields we map are rejections (a data contract is not filled with guesses);
 * fields we do not map are never inspected.
 */
import { isIP } from 'node:net';
import type { SegmentMessage } from '../segment/message.js';
import { LIMITS } from '../segment/message.js';
import { ok, reject, type Result } from '../lib/result.js';
import type { IdentityRow, TrackRow } from './columns.js';
import { deviceType, trafficSource, type UaClassifier } from './enrich.js';
import { canonicalEvent, type EventMap } from './events.js';

export interface MapContext {
  tenant: string;
  receivedAt: number;
  /** The TCP peer (or X-Forwarded-For's client when the proxy is trusted). */
  clientIp: string | null;
  eventMap: EventMap;
  uaClassifier: UaClassifier;
  /**
   * False when the request body holds no NUL escape (\u0000), so no string of it can contain one and the
   * per-field NUL checks are skipped. Raw NUL bytes cannot reach a string: JSON refuses them.
   */
  mayHoldNul?: boolean;
}

export interface MappedRows {
  tracks: TrackRow[];
  identities: IdentityRow[];
}

type Obj = Record<string, unknown>;

/**
 * The value at a field path, or undefined. Own properties only: a payload's "__proto__" or "constructor"
 * key is data, never the prototype. (Runs several times per event: no rest arguments, no allocation.)
 */
function at(o: unknown, path: readonly string[]): unknown {
  let cur = o;
  for (let i = 0; i < path.length; i++) {
    const k = path[i]!;
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, k)) return undefined;
    cur = (cur as Obj)[k];
  }
  return cur;
}


class FieldError extends Error {}

function fail(field: string, what: string): never {
  throw new FieldError(`"${field}" ${what}.`);
}

const MAX_TEXT = 8192;

// Field paths, allocated once (these functions run for every event).
const IMPRESSIONS: readonly string[][] = [['impressions']];
const IMPRESSION_ID: readonly string[][] = [['product_id'], ['productId'], ['id']];
const BARE_ID: readonly string[][] = [['id']];
const DEVICE_ID: readonly string[][] = [['device', 'id']];
const USER_AGENT: readonly string[][] = [['userAgent']];
const IP: readonly string[][] = [['ip']];
const REFERRER: readonly string[][] = [['page', 'referrer'], ['referrer', 'url']];
const CORRELATION_ID: readonly string[][] = [['correlation_id'], ['correlationId']];
const MERCHANT_ID: readonly string[][] = [['merchant_id'], ['merchantId']];
const PRODUCT_ID: readonly string[][] = [['product_id'], ['productId']];
const NAME: readonly string[][] = [['name']];
const PAGE_PATH: readonly string[][] = [['page', 'path']];
const PAGE: readonly string[][] = [['page']];
const ORDER_VALUE: readonly string[][] = [['revenue'], ['total'], ['value'], ['price']];
const VALUE: readonly string[][] = [['value'], ['revenue'], ['total'], ['price']];
const LONGITUDE: readonly string[][] = [['location', 'longitude']];
const LATITUDE: readonly string[][] = [['location', 'latitude']];
const URL: readonly string[][] = [['url']];
const PAGE_URL: readonly string[][] = [['page', 'url']];
const LIBRARY_NAME: readonly string[][] = [['library', 'name']];
const CAMPAIGN_SOURCE: readonly string[][] = [['campaign', 'source']];
const CAMPAIGN_MEDIUM: readonly string[][] = [['campaign', 'medium']];
const PRICE: readonly string[][] = [['price']];
const QUANTITY: readonly string[][] = [['quantity']];
const LINE_PRODUCT_ID: readonly string[][] = [['product_id'], ['productId'], ['id'], ['sku']];
const APP: readonly string[] = ['app'];
const PRODUCTS: readonly string[] = ['products'];

/** First present of the fields as a string id; numbers are ids too. Objects, arrays and NUL bytes are refused. */
function text(o: unknown, fields: readonly string[][], max = MAX_TEXT, nul = true): string | null {
  for (const path of fields) {
    const v = at(o, path);
    if (v === undefined || v === null || v === '') continue;
    if (typeof v === 'string' && v.length <= max && (!nul || !v.includes('\u0000'))) return v; // the common case
    const name = path.join('.');
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    if (typeof v === 'boolean') return String(v);
    if (typeof v !== 'string') fail(name, 'must be a string');
    if (v.length > max) fail(name, `is over ${max} characters`);
    if (v.includes('\u0000')) fail(name, 'contains a NUL character');
    return v;
  }
  return null;
}

const NUMERIC = /^\s*-?(\d+\.?\d*|\.\d+)\s*$/;

const ANY_NUMBER: readonly [number, number] = [-1e15, 1e15];

function num(o: unknown, fields: readonly string[][], range: readonly [number, number] = ANY_NUMBER): number | null {
  for (const path of fields) {
    const v = at(o, path);
    if (v === undefined || v === null || v === '') continue;
    const n = typeof v === 'number' ? v : typeof v === 'string' && NUMERIC.test(v) ? Number(v) : NaN;
    if (!Number.isFinite(n)) fail(path.join('.'), 'must be a number');
    if (n < range[0] || n > range[1]) fail(path.join('.'), `must be between ${range[0]} and ${range[1]}`);
    return n;
  }
  return null;
}

function impressions(props: Obj, nul: boolean): string | null {
  const v = at(props, IMPRESSIONS[0]!);
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return text(props, IMPRESSIONS, MAX_TEXT, nul);
  if (!Array.isArray(v)) fail('properties.impressions', 'must be an array of ids or a string');
  const ids = v.map((item, i) => {
    const id = typeof item === 'object' && item !== null ? text(item, IMPRESSION_ID, LIMITS.idChars, nul) : text({ id: item }, BARE_ID, LIMITS.idChars, nul);
    if (id === null) fail(`properties.impressions[${i}]`, 'must be an id or an object with product_id');
    if (id.includes('|')) fail(`properties.impressions[${i}]`, 'must not contain "|", the list separator');
    return id;
  });
  return ids.length > 0 ? ids.join('|') : null;
}

/**
 * Segment's skew correction: the client's clock may be wrong, but the gap between its `timestamp` and its
 * `sentAt` is right, so the event happened that long before we received the request.
 */
export function eventTime(m: SegmentMessage, receivedAt: number): number {
  const ts = m.timestampMs;
  const sent = m.sentAtMs;
  if (Number.isFinite(ts) && Number.isFinite(sent)) return receivedAt - (sent - ts);
  if (Number.isFinite(ts)) return ts;
  return receivedAt;
}

export function mapMessage(m: SegmentMessage, ctx: MapContext): Result<MappedRows> {
  try {
    return mapUnchecked(m, ctx);
  } catch (e) {
    if (e instanceof FieldError) return reject('invalid_field', e.message);
    throw e;
  }
}

function mapUnchecked(m: SegmentMessage, ctx: MapContext): Result<MappedRows> {
  const time = Math.round(eventTime(m, ctx.receivedAt));
  if (time < LIMITS.minTime || time > ctx.receivedAt + LIMITS.maxFutureMs) {
    return reject('invalid_timestamp', 'The event time lies before 2000 or more than 24 hours in the future.');
  }
  // The NUL checks are skipped when the body had no NUL escape (see MapContext.mayHoldNul).
  const nul = ctx.mayHoldNul ?? true;
  const t = (o: unknown, fields: readonly string[][], max = MAX_TEXT) => text(o, fields, max, nul);
  const c = m.context;
  const p = m.properties;
  const deviceid = t(c, DEVICE_ID, LIMITS.idChars) ?? m.anonymousId ?? null;
  const accountid = m.userId ?? null;

  if (m.type === 'identify' || m.type === 'alias') {
    const previousid = m.type === 'alias' ? (m.previousId ?? null) : null;
    // A link needs two ids: identify ties the device to the user, alias ties the previous id to the user.
    const links = accountid !== null && (m.type === 'alias' ? previousid !== null : deviceid !== null);
    return ok({ tracks: [], identities: links ? [{ time, tenantid: ctx.tenant, deviceid, accountid: accountid!, previousid }] : [] });
  }
  if (m.type === 'group') return ok({ tracks: [], identities: [] });

  const isView = m.type === 'page' || m.type === 'screen';
  const ua = t(c, USER_AGENT) ?? undefined;
  const uaFacts = ctx.uaClassifier.facts(ua);
  const contextIp = t(c, IP, 64);
  if (contextIp !== null && isIP(contextIp) === 0) return reject('invalid_field', '"context.ip" must be an IPv4 or IPv6 address.');
  const referer = t(c, REFERRER);
  const event = isView ? 'load' : canonicalEvent(m.event!, ctx.eventMap);
  if (nul && event.includes('\u0000')) return reject('invalid_field', '"event" contains a NUL character.');

  const row: TrackRow = {
    time,
    tenantid: ctx.tenant,
    correlationid: t(p, CORRELATION_ID, LIMITS.idChars),
    deviceid,
    accountid,
    merchantid: t(p, MERCHANT_ID, LIMITS.idChars),
    productid: t(p, PRODUCT_ID, LIMITS.idChars),
    page: isView ? (m.name ?? t(p, NAME) ?? t(c, PAGE_PATH)) : t(p, PAGE) ?? t(c, PAGE_PATH),
    event,
    value: event === 'order' ? num(p, ORDER_VALUE) : num(p, VALUE),
    ip: contextIp ?? ctx.clientIp,
    long: num(c, LONGITUDE, [-180, 180]),
    lat: num(c, LATITUDE, [-90, 90]),
    referer,
    bot: uaFacts.bot,
    ua: ua ?? null,
    url: isView ? (t(p, URL) ?? t(c, PAGE_URL)) : t(c, PAGE_URL),
    impressions: impressions(p, nul),
    devicetype: deviceType({ hasApp: (at(c, APP) ?? null) !== null, libraryName: t(c, LIBRARY_NAME) ?? undefined, ua: uaFacts }),
    source: trafficSource({
      campaignSource: t(c, CAMPAIGN_SOURCE) ?? undefined,
      campaignMedium: t(c, CAMPAIGN_MEDIUM) ?? undefined,
      referrer: referer ?? undefined,
    }),
  };
  const tracks = [row];
  if (event === 'order') tracks.push(...salesRows(row, p, nul));
  return ok({ tracks, identities: [] });
}

/** An order also yields one `sales` row per product: value = price × quantity (quantity defaults to 1). */
function salesRows(order: TrackRow, p: Obj, nul: boolean): TrackRow[] {
  const products = at(p, PRODUCTS);
  if (products === undefined || products === null) return [];
  if (!Array.isArray(products)) fail('properties.products', 'must be an array');
  return products.map((item, i) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) fail(`properties.products[${i}]`, 'must be an object');
    const price = num(item, PRICE);
    const quantity = num(item, QUANTITY, [0, 1e9]) ?? 1;
    return {
      ...order,
      event: 'sales',
      productid: text(item, LINE_PRODUCT_ID, LIMITS.idChars, nul),
      merchantid: text(item, MERCHANT_ID, LIMITS.idChars, nul) ?? order.merchantid,
      value: price === null ? null : price * quantity,
    };
  });
}
