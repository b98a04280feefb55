import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { isoTime, splitBody, validateMessage } from '../src/segment/message.js';
import { dayOf } from '../src/lib/dates.js';
import { TRACK_COLUMNS, trackValues } from '../src/tracking/columns.js';
import { formatDecimal, toCsv } from '../src/tracking/csv.js';
import { UaClassifier } from '../src/tracking/enrich.js';
import { buildEventMap } from '../src/tracking/events.js';
import { mapMessage, type MappedRows } from '../src/tracking/map.js';
import { T0 } from './helpers.js';

const eventMap = buildEventMap();
const ctx = { tenant: 'acme', receivedAt: T0, clientIp: '203.0.113.9', eventMap, uaClassifier: new UaClassifier() };
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

function rows(msg: Record<string, unknown>, c = ctx): MappedRows {
  const v = validateMessage({ anonymousId: 'a1', ...msg });
  assert.ok(v.ok, JSON.stringify(v));
  const r = mapMessage(v.value, c);
  assert.ok(r.ok, JSON.stringify(r));
  return r.value;
}
const one = (msg: Record<string, unknown>) => rows(msg).tracks[0]!;

describe('mapping a Segment message to a tracking row', () => {
  it('uses skew-corrected time when timestamp and sentAt are both present', () => {
    // The client clock is 1 hour fast: sentAt - timestamp = 5 s, so the event happened 5 s before receipt.
    const r = one({ type: 'track', event: 'x', timestamp: new Date(T0 + 3_600_000 - 5000).toISOString(), sentAt: new Date(T0 + 3_600_000).toISOString() });
    assert.equal(r.time, T0 - 5000);
  });
  it('uses timestamp alone when there is no sentAt, and receipt time when there is neither', () => {
    assert.equal(one({ type: 'track', event: 'x', timestamp: '2026-03-15T11:00:00.250Z' }).time, Date.parse('2026-03-15T11:00:00.250Z'));
    assert.equal(one({ type: 'track', event: 'x' }).time, T0);
  });
  it('takes the batch sentAt when the message has none', () => {
    const split = splitBody({ batch: [{ type: 'track', event: 'x', anonymousId: 'a', timestamp: new Date(T0 - 2000).toISOString() }], sentAt: new Date(T0 + 1000).toISOString() }, 'batch');
    assert.ok(split.ok);
    const v = validateMessage(split.value.messages[0], split.value.envelope);
    assert.ok(v.ok);
    const r = mapMessage(v.value, ctx);
    assert.ok(r.ok);
    assert.equal(r.value.tracks[0]!.time, T0 - 3000);
  });
  it('fills tenant from the write key, never from the payload', () => {
    assert.equal(one({ type: 'track', event: 'x', properties: { tenantid: 'evil', tenantId: 'evil' }, context: { tenantid: 'evil' } }).tenantid, 'acme');
  });
  it('reads correlation, merchant and product ids in either case style', () => {
    const a = one({ type: 'track', event: 'x', properties: { correlation_id: 'c1', merchant_id: 'm1', product_id: 'p1' } });
    const b = one({ type: 'track', event: 'x', properties: { correlationId: 'c2', merchantId: 'm2', productId: 'p2' } });
    assert.deepEqual([a.correlationid, a.merchantid, a.productid], ['c1', 'm1', 'p1']);
    assert.deepEqual([b.correlationid, b.merchantid, b.productid], ['c2', 'm2', 'p2']);
  });
  it('takes deviceid from context.device.id before anonymousId, and accountid from userId', () => {
    const r = one({ type: 'track', event: 'x', userId: 'u9', context: { device: { id: 'dev-7' } } });
    assert.equal(r.deviceid, 'dev-7');
    assert.equal(r.accountid, 'u9');
    assert.equal(one({ type: 'track', event: 'x' }).deviceid, 'a1');
  });
  it('names the page: page calls by name, track calls by properties.page then context.page.path', () => {
    assert.equal(one({ type: 'page', name: 'Home' }).page, 'Home');
    assert.equal(one({ type: 'screen', name: 'Cart' }).page, 'Cart');
    assert.equal(one({ type: 'track', event: 'x', properties: { page: 'PDP' }, context: { page: { path: '/p/1' } } }).page, 'PDP');
    assert.equal(one({ type: 'track', event: 'x', context: { page: { path: '/p/1' } } }).page, '/p/1');
  });
  it('maps page and screen calls to load and known names case-insensitively', () => {
    assert.equal(one({ type: 'page', name: 'Home' }).event, 'load');
    assert.equal(one({ type: 'screen', name: 'Home' }).event, 'load');
    const cases: Array<[string, string]> = [
      ['Product Viewed', 'view'], ['view', 'view'], ['  VIEW ', 'view'], ['product shared', 'share'], ['Share', 'share'],
      ['Chat Started', 'chat'], ['product chat started', 'chat'], ['chat', 'chat'], ['Product Purchased', 'sales'], ['sales', 'sales'],
      ['Order Completed', 'order'], ['order', 'order'], ['  Video Recorded ', 'video recorded'],
    ];
    for (const [name, canonical] of cases) assert.equal(one({ type: 'track', event: name }).event, canonical, name);
  });
  it('lets the config add or override event names', () => {
    const custom = { ...ctx, eventMap: buildEventMap({ 'Item Inspected': 'view', 'chat': 'conversation' }) };
    const v = (event: string) => {
      const m = validateMessage({ type: 'track', event, anonymousId: 'a' });
      assert.ok(m.ok);
      const r = mapMessage(m.value, custom);
      assert.ok(r.ok);
      return r.value.tracks[0]!.event;
    };
    assert.equal(v('item inspected'), 'view');
    assert.equal(v('Chat'), 'conversation');
  });
  it('takes value from value, revenue, total, then price; numeric strings count', () => {
    assert.equal(one({ type: 'track', event: 'x', properties: { value: 3, revenue: 4 } }).value, 3);
    assert.equal(one({ type: 'track', event: 'x', properties: { revenue: '4.5', total: 5 } }).value, 4.5);
    assert.equal(one({ type: 'track', event: 'x', properties: { total: 5, price: 6 } }).value, 5);
    assert.equal(one({ type: 'track', event: 'x', properties: { price: 6 } }).value, 6);
  });
  it('expands an order into one order row and a sales row per product', () => {
    const r = rows({ type: 'track', event: 'Order Completed', properties: { revenue: 59.97, merchant_id: 'm0', products: [{ product_id: 'p1', price: 19.99, quantity: 3 }, { productId: 'p2', merchant_id: 'm2', price: 5 }] } }).tracks;
    assert.equal(r.length, 3);
    assert.deepEqual([r[0]!.event, r[0]!.value], ['order', 59.97]);
    assert.deepEqual([r[1]!.event, r[1]!.productid, r[1]!.merchantid, formatDecimal(r[1]!.value as number)], ['sales', 'p1', 'm0', '59.97']);
    assert.deepEqual([r[2]!.event, r[2]!.productid, r[2]!.merchantid, r[2]!.value], ['sales', 'p2', 'm2', 5]);
  });
  it('takes ip from context.ip, else the client address', () => {
    assert.equal(one({ type: 'track', event: 'x', context: { ip: '198.51.100.4' } }).ip, '198.51.100.4');
    assert.equal(one({ type: 'track', event: 'x' }).ip, '203.0.113.9');
  });
  it('takes long/lat from context.location', () => {
    const r = one({ type: 'track', event: 'x', context: { location: { longitude: 2.3522, latitude: 48.8566 } } });
    assert.deepEqual([r.long, r.lat], [2.3522, 48.8566]);
  });
  it('takes referer from context.page.referrer and url from properties.url (page) or context.page.url', () => {
    assert.equal(one({ type: 'track', event: 'x', context: { page: { referrer: 'https://r.example/' } } }).referer, 'https://r.example/');
    assert.equal(one({ type: 'page', name: 'P', properties: { url: 'https://a.example/1' }, context: { page: { url: 'https://a.example/2' } } }).url, 'https://a.example/1');
    assert.equal(one({ type: 'track', event: 'x', properties: { url: 'https://a.example/1' }, context: { page: { url: 'https://a.example/2' } } }).url, 'https://a.example/2');
  });
  it('flags bots from the user agent and keeps the user agent', () => {
    assert.equal(one({ type: 'track', event: 'x', context: { userAgent: GOOGLEBOT } }).bot, true);
    const r = one({ type: 'track', event: 'x', context: { userAgent: CHROME } });
    assert.equal(r.bot, false);
    assert.equal(r.ua, CHROME);
  });
  it('joins impressions given as ids or objects with |, and keeps a string as given', () => {
    assert.equal(one({ type: 'track', event: 'x', properties: { impressions: ['p1', 2, 'p3'] } }).impressions, 'p1|2|p3');
    assert.equal(one({ type: 'track', event: 'x', properties: { impressions: [{ product_id: 'p1' }, { product_id: 'p2' }] } }).impressions, 'p1|p2');
    assert.equal(one({ type: 'track', event: 'x', properties: { impressions: 'p1|p2' } }).impressions, 'p1|p2');
  });
  it('classifies devicetype as APP, MOBILE or DESKTOP', () => {
    assert.equal(one({ type: 'track', event: 'x', context: { app: { name: 'Shop' }, userAgent: IPHONE } }).devicetype, 'APP');
    assert.equal(one({ type: 'track', event: 'x', context: { library: { name: 'analytics-android' } } }).devicetype, 'APP');
    assert.equal(one({ type: 'track', event: 'x', context: { userAgent: IPHONE } }).devicetype, 'MOBILE');
    assert.equal(one({ type: 'track', event: 'x', context: { userAgent: CHROME } }).devicetype, 'DESKTOP');
    assert.equal(one({ type: 'track', event: 'x' }).devicetype, 'DESKTOP');
  });
  it('classifies source with the seed spellings, WHATSTAPP included', () => {
    const src = (context: Record<string, unknown>) => one({ type: 'track', event: 'x', context }).source;
    assert.equal(src({ campaign: { medium: 'Email' } }), 'EMAIL');
    assert.equal(src({ page: { referrer: 'https://mail.google.com/mail/u/0' } }), 'EMAIL');
    assert.equal(src({ campaign: { source: 'facebook' } }), 'FACEBOOK');
    assert.equal(src({ page: { referrer: 'https://l.facebook.com/l.php' } }), 'FACEBOOK');
    assert.equal(src({ page: { referrer: 'https://fb.com/x' } }), 'FACEBOOK');
    assert.equal(src({ page: { referrer: 'https://www.instagram.com/' } }), 'INSTAGRAM');
    assert.equal(src({ campaign: { source: 'WhatsApp' } }), 'WHATSTAPP');
    assert.equal(src({ page: { referrer: 'https://wa.me/123' } }), 'WHATSTAPP');
    for (const host of ['www.google.com', 'google.co.uk', 'www.bing.com', 'search.yahoo.com', 'duckduckgo.com', 'www.baidu.com', 'yandex.ru', 'www.ecosia.org']) {
      assert.equal(src({ page: { referrer: `https://${host}/search?q=x` } }), 'SEO', host);
    }
    assert.equal(src({ page: { referrer: 'https://blog.example/' } }), 'DIRECT');
    assert.equal(src({}), 'DIRECT');
  });
  it('turns identify and alias into identity links, and group into nothing', () => {
    assert.deepEqual(rows({ type: 'identify', userId: 'u1', traits: { a: 1 } }).identities, [{ time: T0, tenantid: 'acme', deviceid: 'a1', accountid: 'u1', previousid: null }]);
    assert.deepEqual(rows({ type: 'alias', userId: 'u2', previousId: 'old-1' }).identities, [{ time: T0, tenantid: 'acme', deviceid: 'a1', accountid: 'u2', previousid: 'old-1' }]);
    assert.deepEqual(rows({ type: 'identify', traits: { a: 1 } }), { tracks: [], identities: [] });
    assert.deepEqual(rows({ type: 'group', groupId: 'g1' }), { tracks: [], identities: [] });
  });
  it('refuses wrong types in mapped fields with a reason that names the field', () => {
    const bad = (properties: Record<string, unknown>, context: Record<string, unknown> = {}) => {
      const v = validateMessage({ type: 'track', event: 'x', anonymousId: 'a', properties, context });
      assert.ok(v.ok);
      const r = mapMessage(v.value, ctx);
      assert.equal(r.ok, false);
      return r.ok ? '' : r.message;
    };
    assert.match(bad({ product_id: { a: 1 } }), /properties|product_id/);
    assert.match(bad({ value: 'lots' }), /value/);
    assert.match(bad({}, { location: { latitude: 91 } }), /latitude/);
    assert.match(bad({}, { ip: 'not-an-ip' }), /context.ip/);
    assert.match(bad({ impressions: ['a|b'] }), /impressions/);
    assert.match(bad({ merchant_id: 'm\u0000' }), /NUL/);
  });
});

describe('the user-agent cache', () => {
  it('stays bounded and classifies the same after an entry ages out', () => {
    const classifier = new UaClassifier(2);
    const agents = [CHROME, IPHONE, GOOGLEBOT, `${CHROME} Extra/1`, `${IPHONE} Extra/1`];
    const first = agents.map((ua) => classifier.facts(ua));
    for (let round = 0; round < 3; round++) {
      agents.forEach((ua, i) => assert.deepEqual(classifier.facts(ua), first[i], ua));
      const { young, old } = classifier as unknown as { young: Map<string, unknown>; old: Map<string, unknown> };
      assert.ok(young.size < 2 && old.size <= 2, 'at most two generations of two entries');
    }
    assert.deepEqual(first.map((f) => [f.bot, f.handheld]), [[false, false], [false, true], [true, false], [false, false], [false, true]]);
  });
});

describe('the tracking CSV', () => {
  it('has the 20 seed columns in order', () => {
    assert.equal(TRACK_COLUMNS.join(','), 'time,tenantid,correlationid,deviceid,accountid,merchantid,productid,page,event,value,ip,long,lat,referer,bot,ua,url,impressions,devicetype,source');
  });
  it('quotes commas, quotes and newlines, keeps non-ASCII, and round-trips', () => {
    const r = one({ type: 'track', event: 'x', properties: { product_id: 'a,b', merchant_id: 'say "hi"', page: 'line1\nline2' }, context: { userAgent: 'Émile ☕ 日本' } });
    const csv = toCsv(TRACK_COLUMNS, [trackValues(r)]);
    assert.ok(csv.endsWith('\n') && !csv.includes('\r'));
    const [parsed] = parse(csv, { columns: true }) as Array<Record<string, string>>;
    assert.equal(parsed!.productid, 'a,b');
    assert.equal(parsed!.merchantid, 'say "hi"');
    assert.equal(parsed!.page, 'line1\nline2');
    assert.equal(parsed!.ua, 'Émile ☕ 日本');
    assert.equal(parsed!.bot, 'false');
    assert.equal(parsed!.correlationid, '');
  });
  it('writes numbers as plain decimals', () => {
    assert.equal(formatDecimal(0.0000001), '0.0000001');
    assert.equal(formatDecimal(19.99 * 3), '59.97');
    assert.equal(formatDecimal(1795369073825), '1795369073825');
    assert.equal(formatDecimal(-0.5), '-0.5');
  });
});

describe('message ids', () => {
  it('generates one when missing or empty, so such messages are never taken for duplicates', () => {
    const a = validateMessage({ type: 'track', event: 'x', anonymousId: 'a', messageId: '' });
    const b = validateMessage({ type: 'track', event: 'x', anonymousId: 'a' });
    assert.ok(a.ok && b.ok);
    assert.match(a.value.messageId, /^tl-/);
    assert.notEqual(a.value.messageId, b.value.messageId);
  });
});

describe('timestamps', () => {
  it('names the UTC day of an instant as Date does', () => {
    for (let t = Date.parse('1970-01-01T00:00:00Z'); t < Date.parse('2200-01-01T00:00:00Z'); t += 86_399_999 * 7 + 12_345) {
      for (const at of [t, t - (t % 86_400_000), t - (t % 86_400_000) - 1]) assert.equal(dayOf(at), new Date(at).toISOString().slice(0, 10), String(at));
    }
    assert.throws(() => dayOf(NaN), RangeError);
  });

  it('reads every form Date.parse reads the same way, and refuses days that do not exist', () => {
    for (let t = Date.parse('2000-01-01T00:00:00Z'); t < Date.parse('2100-01-01T00:00:00Z'); t += 7_919_999_937) {
      const iso = new Date(t).toISOString();
      assert.equal(isoTime(iso), t, iso);
      assert.equal(isoTime(iso.replace('Z', '+00:00')), t);
      assert.equal(isoTime(iso.slice(0, 19) + 'Z'), Date.parse(iso.slice(0, 19) + 'Z'));
    }
    for (const bad of ['2026-02-29T00:00:00.000Z', '2026-13-01T00:00:00.000Z', '2026-04-31T10:00:00.000Z', '2026-03-15T25:00:00.000Z', '1999-12-31T23:59:59.999Z', '2026-03-15', 'yesterday', '']) {
      assert.ok(Number.isNaN(isoTime(bad)), bad);
    }
    assert.equal(isoTime('2024-02-29T23:59:59.999Z'), Date.parse('2024-02-29T23:59:59.999Z'));
  });
});
