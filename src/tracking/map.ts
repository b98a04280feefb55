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
  /**
   * What the source keeps of addresses and positions (privacy/reduce.ts, set up by the request preparer):
   * unset keeps everything.
   */
  keep?: { ip(ip: string): string | null; coordinate(v: number): number };
}

export interface MappedRows {
  tracks: TrackRow[];
  identities: IdentityRow[];
}

type Obj = Record<string, unknown>;

/**
 * A field of a parsed JSON value, or undefined when the value is not an object. Read directly rather than
 * through hasOwn: JSON.parse makes plain objects whose prototype is Object.prototype, which has none of the
 * names tracklake reads (a "__proto__" key is an own data property, never the prototype), and an array or
 * a string has none of them either. (Runs a few dozen times per event.)
 */
function get(o: unknown, k: string): unknown {
  return o !== null && typeof o === 'object' ? (o as Obj)[k] : undefined;
}

class FieldError extends Error {}

function fail(field: string, what: string): never {
  throw new FieldError(`"${field}" ${what}.`);
}

const MAX_TEXT = 8192;

/**
 * A field's value as text, or null when it is absent or empty; numbers and booleans are ids too. Objects,
 * arrays, over-long strings and NUL characters are refused with the field's name. Chained with ?? to take
 * the first present of several fields.
 */
function text(v: unknown, name: string, max: number, nul: boolean): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v === 'string' && v.length <= max && (!nul || !v.includes('\u0000'))) return v; // the common case
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return String(v);
  if (typeof v !== 'string') fail(name, 'must be a string');
  if (v.length > max) fail(name, `is over ${max} characters`);
  return fail(name, 'contains a NUL character');
}

const NUMERIC = /^\s*-?(\d+\.?\d*|\.\d+)\s*$/;

/** A field's value as a number within [min, max], or null when it is absent or empty. */
function num(v: unknown, name: string, min = -1e15, max = 1e15): number | null {
  if (v === undefined || v === null || v === '') return null;
  const n = typeof v === 'number' ? v : typeof v === 'string' && NUMERIC.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n)) fail(name, 'must be a number');
  if (n < min || n > max) fail(name, `must be between ${min} and ${max}`);
  return n;
}

function impressions(props: Obj, nul: boolean): string | null {
  const v = props.impressions;
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return text(v, 'impressions', MAX_TEXT, nul);
  if (!Array.isArray(v)) fail('properties.impressions', 'must be an array of ids or a string');
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const item: unknown = v[i];
    const id = item !== null && typeof item === 'object'
      ? (text(get(item, 'product_id'), 'product_id', LIMITS.idChars, nul) ?? text(get(item, 'productId'), 'productId', LIMITS.idChars, nul) ?? text(get(item, 'id'), 'id', LIMITS.idChars, nul))
      : text(item, 'id', LIMITS.idChars, nul);
    // The field's name is made only for a refusal: this loop runs for every impression of every event.
    if (id === null) fail(`properties.impressions[${i}]`, 'must be an id or an object with product_id');
    if (id.includes('|')) fail(`properties.impressions[${i}]`, 'must not contain "|", the list separator');
    out = i === 0 ? id : `${out}|${id}`;
  }
  return v.length > 0 ? out : null;
}

/** RudderStack's SDKs write "$direct" as the referrer of a visit that has none: no referrer, not a URL. */
const pageReferrer = (r: string | null) => (r === '$direct' ? null : r);

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
  const ID = LIMITS.idChars;
  const c = m.context;
  const p = m.properties;
  const deviceid = text(get(c.device, 'id'), 'device.id', ID, nul) ?? m.anonymousId ?? null;
  const accountid = m.userId ?? null;

  if (m.type === 'identify' || m.type === 'alias') {
    const previousid = m.type === 'alias' ? (m.previousId ?? null) : null;
    // A link needs two ids: identify ties the device to the user, alias ties the previous id to the user.
    const links = accountid !== null && (m.type === 'alias' ? previousid !== null : deviceid !== null);
    return ok({ tracks: [], identities: links ? [{ time, tenantid: ctx.tenant, deviceid, accountid: accountid!, previousid }] : [] });
  }
  if (m.type === 'group') return ok({ tracks: [], identities: [] });

  const isView = m.type === 'page' || m.type === 'screen';
  const ua = text(c.userAgent, 'userAgent', MAX_TEXT, nul) ?? undefined;
  const uaFacts = ctx.uaClassifier.facts(ua);
  const contextIp = text(c.ip, 'ip', 64, nul);
  if (contextIp !== null && isIP(contextIp) === 0) return reject('invalid_field', '"context.ip" must be an IPv4 or IPv6 address.');
  const page = c.page;
  const referer = pageReferrer(text(get(page, 'referrer'), 'page.referrer', MAX_TEXT, nul)) ?? text(get(c.referrer, 'url'), 'referrer.url', MAX_TEXT, nul);
  const pagePath = () => text(get(page, 'path'), 'page.path', MAX_TEXT, nul);
  const pageUrl = () => text(get(page, 'url'), 'page.url', MAX_TEXT, nul);
  const event = isView ? 'load' : canonicalEvent(m.event!, ctx.eventMap);
  if (nul && event.includes('\u0000')) return reject('invalid_field', '"event" contains a NUL character.');
  const campaign = c.campaign;
  const location = c.location;

  const row: TrackRow = {
    time,
    tenantid: ctx.tenant,
    correlationid: text(p.correlation_id, 'correlation_id', ID, nul) ?? text(p.correlationId, 'correlationId', ID, nul),
    deviceid,
    accountid,
    merchantid: text(p.merchant_id, 'merchant_id', ID, nul) ?? text(p.merchantId, 'merchantId', ID, nul),
    productid: text(p.product_id, 'product_id', ID, nul) ?? text(p.productId, 'productId', ID, nul),
    page: isView ? (m.name ?? text(p.name, 'name', MAX_TEXT, nul) ?? pagePath()) : (text(p.page, 'page', MAX_TEXT, nul) ?? pagePath()),
    event,
    value: event === 'order'
      ? (num(p.revenue, 'revenue') ?? num(p.total, 'total') ?? num(p.value, 'value') ?? num(p.price, 'price'))
      : (num(p.value, 'value') ?? num(p.revenue, 'revenue') ?? num(p.total, 'total') ?? num(p.price, 'price')),
    ip: keptIp(contextIp ?? ctx.clientIp, ctx),
    long: keptCoordinate(num(get(location, 'longitude'), 'location.longitude', -180, 180), ctx),
    lat: keptCoordinate(num(get(location, 'latitude'), 'location.latitude', -90, 90), ctx),
    referer,
    bot: uaFacts.bot,
    ua: ua ?? null,
    url: isView ? (text(p.url, 'url', MAX_TEXT, nul) ?? pageUrl()) : pageUrl(),
    impressions: impressions(p, nul),
    devicetype: deviceType({
      hasApp: (c.app ?? null) !== null,
      libraryName: text(get(c.library, 'name'), 'library.name', MAX_TEXT, nul) ?? undefined,
      ua: uaFacts,
      // User-Agent Client Hints (analytics.js sends navigator.userAgentData): a phone says so even where its
      // reduced user-agent string does not.
      mobileHint: get(c.userAgentData, 'mobile') === true,
    }),
    source: trafficSource({
      campaignSource: text(get(campaign, 'source'), 'campaign.source', MAX_TEXT, nul) ?? undefined,
      campaignMedium: text(get(campaign, 'medium'), 'campaign.medium', MAX_TEXT, nul) ?? undefined,
      referrer: referer ?? undefined,
    }),
  };
  if (event !== 'order') return ok({ tracks: [row], identities: [] });
  return ok({ tracks: [row, ...salesRows(row, p, nul)], identities: [] });
}

/** The address as the source's ipMode keeps it. */
function keptIp(ip: string | null, ctx: MapContext): string | null {
  return ip === null || ctx.keep === undefined ? ip : ctx.keep.ip(ip);
}

function keptCoordinate(v: number | null, ctx: MapContext): number | null {
  return v === null || ctx.keep === undefined ? v : ctx.keep.coordinate(v);
}

/** An order also yields one `sales` row per product: value = price × quantity (quantity defaults to 1). */
function salesRows(order: TrackRow, p: Obj, nul: boolean): TrackRow[] {
  const products = p.products;
  if (products === undefined || products === null) return [];
  if (!Array.isArray(products)) fail('properties.products', 'must be an array');
  const ID = LIMITS.idChars;
  return products.map((item: unknown, i) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) fail(`properties.products[${i}]`, 'must be an object');
    const line = item as Obj;
    const price = num(line.price, 'price');
    const quantity = num(line.quantity, 'quantity', 0, 1e9) ?? 1;
    return {
      ...order,
      event: 'sales',
      productid: text(line.product_id, 'product_id', ID, nul) ?? text(line.productId, 'productId', ID, nul) ?? text(line.id, 'id', ID, nul) ?? text(line.sku, 'sku', ID, nul),
      merchantid: text(line.merchant_id, 'merchant_id', ID, nul) ?? text(line.merchantId, 'merchantId', ID, nul) ?? order.merchantid,
      value: price === null ? null : price * quantity,
    };
  });
}
