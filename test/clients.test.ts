/**
 * What each client SDK sends and fetches, as request shapes: the clients that run in a browser are driven
 * for real in browser.test.ts; these cover the mobile libraries (which cannot run here), the paths and
 * headers of every SDK, and what tracklake serves them.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { basic, flushed, post, readRows, startCollector, T0, track, type TestCollector } from './helpers.js';

const iso = (ms: number) => new Date(ms).toISOString();

/** A GET with headers fetch will not send (Host), over a plain socket. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

describe('the paths and bodies real clients send', () => {
  let c: TestCollector;
  before(async () => {
    c = await startCollector({ sources: { 'web-key': 'shop', 'app-key': 'shop', dev: 'demo' } });
  });
  after(() => c.close());

  it("takes analytics.js's short paths as the long ones", async () => {
    for (const [p, body] of [
      ['t', { event: 'Product Viewed', anonymousId: 'short-1', properties: { product_id: 'sp1' } }],
      ['p', { name: 'Home', anonymousId: 'short-1' }],
      ['s', { name: 'Basket', anonymousId: 'short-1' }],
      ['i', { userId: 'short-user', anonymousId: 'short-1' }],
      ['a', { userId: 'short-user', previousId: 'short-old' }],
      ['g', { userId: 'short-user', groupId: 'g1' }],
    ] as const) {
      const r = await post(`${c.url}/v1/${p}`, { ...body, timestamp: iso(T0 - 1000) }, { authorization: basic('web-key'), 'content-type': 'text/plain' });
      assert.equal(r.status, 200, `/v1/${p}: ${JSON.stringify(r.json)}`);
    }
    const b = await post(`${c.url}/v1/b`, { batch: [{ type: 'track', event: 'Product Shared', anonymousId: 'short-1', properties: { product_id: 'sp1' }, timestamp: iso(T0) }] }, { authorization: basic('web-key') });
    assert.equal(b.status, 200);
    await flushed(c);
    const rows = (await readRows(c.store)).filter((r) => r.deviceid === 'short-1');
    assert.deepEqual(rows.map((r) => `${r.event}:${r.page}`).sort(), ['load:Basket', 'load:Home', 'share:', 'view:']);
    const links = (await readRows(c.store, 'identities/')).filter((l) => l.accountid === 'short-user');
    assert.deepEqual(links.map((l) => l.deviceid || l.previousid).sort(), ['short-1', 'short-old']);
  });

  it("answers analytics.js's own metrics on /v1/m with 200, stores nothing and counts them", async () => {
    const before = (await readRows(c.store)).length;
    const r = await post(`${c.url}/v1/m`, { series: [{ type: 'Counter', metric: 'analytics_js.invoke', value: 1, tags: { library: 'analytics.js' } }] }, { authorization: '', 'content-type': 'text/plain' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { success: true });
    await flushed(c);
    assert.equal((await readRows(c.store)).length, before);
    assert.match(await (await fetch(`${c.url}/metrics`)).text(), /tracklake_client_metrics_requests_total 1\b/);
    const big = await post(`${c.url}/v1/m`, { pad: 'x'.repeat(600 * 1024) }, { authorization: '' });
    assert.equal(big.status, 400, 'the body limit holds on /v1/m too');
  });

  it("takes a mobile library's /v1/b batch: context.app makes APP rows with the device's id", async () => {
    // The shape analytics-kotlin and analytics-swift post: batch-level sentAt and writeKey, per-message context.
    const context = {
      app: { name: 'Shop', version: '4.2.0', build: '420', namespace: 'com.example.shop' },
      device: { id: 'android-device-42', manufacturer: 'Google', model: 'Pixel 8', type: 'android' },
      library: { name: 'analytics-kotlin', version: '1.16.0' },
      os: { name: 'Android', version: '14' },
      locale: 'en-US',
      network: { wifi: true },
      screen: { width: 1080, height: 2400 },
      timezone: 'Europe/Paris',
      userAgent: 'Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP1A)',
    };
    const body = {
      writeKey: 'app-key',
      sentAt: iso(T0),
      batch: [
        { type: 'screen', name: 'Product', anonymousId: 'anon-kotlin', messageId: 'k-1', timestamp: iso(T0 - 5000), context, properties: {}, integrations: {}, userId: '' },
        { type: 'track', event: 'Product Viewed', anonymousId: 'anon-kotlin', messageId: 'k-2', timestamp: iso(T0 - 4000), context, properties: { product_id: 'kp1', merchant_id: 'km1' }, integrations: {} },
        { type: 'identify', userId: 'kotlin-user', anonymousId: 'anon-kotlin', messageId: 'k-3', timestamp: iso(T0 - 3000), context, traits: { name: 'K' } },
      ],
    };
    // gzip, as analytics-swift and analytics-kotlin send it; the write key only in the body.
    const res = await fetch(`${c.url}/v1/b`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8', 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify(body)) });
    assert.equal(res.status, 200, await res.text());
    await flushed(c);
    const rows = (await readRows(c.store)).filter((x) => x.deviceid === 'android-device-42');
    assert.deepEqual(rows.map((x) => [x.event, x.devicetype, x.productid, x.tenantid]).sort(), [['load', 'APP', '', 'shop'], ['view', 'APP', 'kp1', 'shop']]);
    assert.equal(rows.find((x) => x.event === 'load')!.accountid, '', 'an empty userId is no account');
    const links = (await readRows(c.store, 'identities/')).filter((l) => l.accountid === 'kotlin-user');
    assert.deepEqual(links.map((l) => l.deviceid), ['android-device-42']);
  });

  it("takes RudderStack's beacon batch: text/plain, no auth header, the key in the query", async () => {
    const res = await fetch(`${c.url}/beacon/v1/batch?writeKey=web-key`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain;charset=UTF-8', origin: 'https://shop.example' },
      body: JSON.stringify({ batch: [{ type: 'track', event: 'Product Viewed', userId: '', anonymousId: 'beacon-1', channel: 'web', messageId: 'b-1', originalTimestamp: iso(T0 - 2000), properties: { product_id: 'bp1' }, context: { page: { referrer: '$direct', url: 'https://shop.example/p/bp1' } } }], sentAt: iso(T0) }),
    });
    assert.equal(res.status, 200, await res.text());
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    await flushed(c);
    const [row] = (await readRows(c.store)).filter((x) => x.deviceid === 'beacon-1');
    assert.equal(row!.tenantid, 'shop');
    assert.equal(row!.accountid, '');
    assert.equal(row!.referer, '', 'RudderStack\'s "$direct" is no referrer');
    assert.equal(row!.source, 'DIRECT');
    assert.equal(row!.url, 'https://shop.example/p/bp1');
  });

  it('takes the write key from a query parameter on any tracking path, Basic auth first', async () => {
    assert.equal((await post(`${c.url}/v1/track?writeKey=app-key`, track({ anonymousId: 'q-1' }), { authorization: '' })).status, 200);
    assert.equal((await post(`${c.url}/v1/track?writeKey=nope`, track({ anonymousId: 'q-2' }), { authorization: basic('web-key') })).status, 200);
    assert.equal((await post(`${c.url}/v1/track?writeKey=nope`, track({ anonymousId: 'q-3' }), { authorization: '' })).json.code, 'unknown_write_key');
  });

  it('reads any content type whose body is JSON, and refuses one whose body is not with a JSON error', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'application/octet-stream', 'text/html', 'multipart/form-data; boundary=x']) {
      assert.equal((await post(`${c.url}/v1/track`, track({ anonymousId: 'ct-1' }), { 'content-type': type })).status, 200, type);
    }
    const form = await post(`${c.url}/v1/track`, 'event=x&anonymousId=y', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 400);
    assert.equal(form.json.code, 'invalid_json');
  });

  it('reads an empty userId or anonymousId as absent, the other id carrying the message', async () => {
    assert.equal((await post(`${c.url}/v1/track`, track({ anonymousId: 'empty-user-1', userId: '' }))).status, 200);
    assert.equal((await post(`${c.url}/v1/track`, track({ anonymousId: '', userId: 'empty-anon-user' }))).status, 200);
    await flushed(c);
    const rows = await readRows(c.store);
    assert.equal(rows.find((r) => r.deviceid === 'empty-user-1')!.accountid, '');
    assert.equal(rows.find((r) => r.accountid === 'empty-anon-user')!.deviceid, '');
  });

  it('answers preflights with the headers the SDKs add, and exposes Retry-After', async () => {
    for (const p of ['/v1/t', '/v1/batch', '/beacon/v1/batch', '/v1/projects/web-key/settings', '/sourceConfig/']) {
      const res = await fetch(`${c.url}${p}`, {
        method: 'OPTIONS',
        headers: { origin: 'https://shop.example', 'access-control-request-method': p.includes('settings') || p.includes('sourceConfig') ? 'GET' : 'POST', 'access-control-request-headers': 'authorization,content-type,anonymousid,sentat,x-retry-count,rsa-request-id' },
      });
      assert.equal(res.status, 204, p);
      assert.equal(res.headers.get('access-control-allow-origin'), '*', p);
      const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase();
      for (const h of ['authorization', 'anonymousid', 'sentat', 'x-retry-count', 'rsa-request-id']) assert.ok(allowed.includes(h), `${p}: ${h} in ${allowed}`);
    }
    const res = await post(`${c.url}/v1/t`, track({ anonymousId: 'cors' }), { origin: 'https://shop.example' });
    assert.equal(res.headers.get('access-control-expose-headers'), 'Retry-After');
  });
});

describe('what the SDKs fetch before they send', () => {
  let c: TestCollector;
  before(async () => {
    c = await startCollector({ sources: { 'web-key': 'shop' } });
  });
  after(() => c.close());

  it('serves Segment settings that send to this collector and load nothing else', async () => {
    for (const p of ['/v1/projects/web-key/settings', '/projects/web-key/settings']) {
      const res = await fetch(`${c.url}${p}`, { headers: { origin: 'https://shop.example' } });
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get('cache-control') ?? '', /max-age=\d+/);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      const s = (await res.json()) as any;
      assert.deepEqual(Object.keys(s.integrations), ['Segment.io']);
      assert.equal(s.integrations['Segment.io'].apiKey, 'web-key');
      assert.equal(s.integrations['Segment.io'].apiHost, `${new URL(c.url).host}/v1`);
      assert.equal(s.integrations['Segment.io'].protocol, 'http');
      assert.deepEqual(s.remotePlugins, []);
      assert.deepEqual(s.enabledMiddleware, {});
      assert.equal(s.metrics.sampleRate, 0);
      assert.equal(s.legacyVideoPluginsEnabled, false);
    }
  });

  it('names its public host from publicUrl, else from Host, and from X-Forwarded-* only with trustProxy', async () => {
    const host = new URL(c.url).host;
    const viaHost = await rawGet(`${c.url}/v1/projects/web-key/settings`, { host: 'collect.example.com:8443', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' });
    const s1 = JSON.parse(viaHost.body);
    assert.equal(s1.integrations['Segment.io'].apiHost, 'collect.example.com:8443/v1');
    assert.equal(s1.integrations['Segment.io'].protocol, 'http');
    assert.equal(viaHost.headers.vary, 'Host');
    const bad = await rawGet(`${c.url}/v1/projects/web-key/settings`, { host: 'a b"' });
    assert.equal(bad.status, 400);

    const proxied = await startCollector({ sources: { 'web-key': 'shop' }, trustProxy: true });
    try {
      const r = await rawGet(`${proxied.url}/v1/projects/web-key/settings`, { host, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'collect.example.com' });
      const s = JSON.parse(r.body);
      assert.equal(s.integrations['Segment.io'].apiHost, 'collect.example.com/v1');
      assert.equal(s.integrations['Segment.io'].protocol, 'https');
    } finally {
      await proxied.close();
    }
    const pinned = await startCollector({ sources: { 'web-key': 'shop' }, publicUrl: 'https://track.example.com/collect/' });
    try {
      const r = await rawGet(`${pinned.url}/v1/projects/web-key/settings`, { host: 'other.example' });
      const s = JSON.parse(r.body);
      assert.equal(s.integrations['Segment.io'].apiHost, 'track.example.com/collect/v1');
      assert.equal(s.integrations['Segment.io'].protocol, 'https');
      assert.equal(s.metrics.host, 'track.example.com/collect/v1');
      assert.equal(r.headers.vary, undefined);
    } finally {
      await pinned.close();
    }
  });

  it("serves RudderStack's source config for a key in Basic auth or the query, with or without the slash", async () => {
    for (const [p, headers] of [
      ['/sourceConfig/?p=npm&v=3.34.1&build=modern&writeKey=web-key&lockIntegrationsVersion=false', {}],
      ['/sourceConfig?p=cdn', { authorization: basic('web-key') }],
    ] as const) {
      const res = await fetch(`${c.url}${p}`, { headers });
      assert.equal(res.status, 200, p);
      const s = (await res.json()) as any;
      assert.equal(s.source.enabled, true);
      assert.equal(s.source.writeKey, 'web-key');
      assert.ok(s.source.id);
      assert.deepEqual(s.source.destinations, []);
      assert.equal(s.source.config.statsCollection.errors.enabled, false);
    }
  });

  it('serves the analytics.js bundle of the pinned package with the write key in it, and its chunks', async () => {
    const res = await fetch(`${c.url}/analytics.js/v1/web-key/analytics.min.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /javascript/);
    assert.match(res.headers.get('cache-control') ?? '', /max-age=300\b/);
    const js = await res.text();
    assert.ok(js.includes('window.analyticsWriteKey="web-key"'), 'the write key is embedded as Segment\'s CDN does');
    assert.ok(!js.includes('__WRITE_KEY__'));
    const etag = res.headers.get('etag')!;
    assert.equal((await fetch(`${c.url}/analytics.js/v1/web-key/analytics.min.js`, { headers: { 'if-none-match': etag } })).status, 304);

    // The chunk names the bundle itself asks for.
    const names = [...js.matchAll(/(\d+):"([0-9a-f]{20})"/g)].map((m) => m[2]);
    assert.ok(names.length >= 5, `chunk hashes in the bundle: ${names.length}`);
    const chunk = /\{10:"tsub-middleware"[^}]*\}\[t\]\|\|t\)\+"\.bundle\."\+\{10:"([0-9a-f]+)"/.exec(js);
    assert.ok(chunk, 'the bundle names its tsub-middleware chunk');
    const url = `${c.url}/analytics-next/bundles/tsub-middleware.bundle.${chunk[1]}.js`;
    // Raw bytes over a socket: fetch would decode the gzip itself.
    const gz = await new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      http.get(url, { headers: { 'accept-encoding': 'gzip' } }, (r) => {
        const parts: Buffer[] = [];
        r.on('data', (d: Buffer) => parts.push(d));
        r.on('end', () => resolve({ headers: r.headers, body: Buffer.concat(parts) }));
      }).on('error', reject);
    });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.match(gz.headers['cache-control'] ?? '', /immutable/);
    const plain = await (await fetch(url, { headers: { 'accept-encoding': 'identity' } })).text();
    assert.equal(gunzipSync(gz.body).toString('utf8'), plain);
    assert.ok(plain.length > 100);
    assert.equal((await fetch(`${c.url}/analytics-next/bundles/tsub-middleware.bundle.0000.js`)).status, 404);
  });
});
