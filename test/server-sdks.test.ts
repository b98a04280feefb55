import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Analytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import { flushed, readRows, startCollector } from './helpers.js';

describe("Segment's official analytics-node client", () => {
  it('delivers events to the collector through its host option, and they all land in tracking files', async () => {
    const c = await startCollector({ sources: { 'node-key': 'shop' } });
    try {
      const analytics = new Analytics({ writeKey: 'node-key', host: c.url, flushAt: 7, flushInterval: 50, maxRetries: 2 });
      const errors: unknown[] = [];
      analytics.on('error', (e) => errors.push(e));
      for (let i = 0; i < 25; i++) {
        analytics.track({ anonymousId: `sdk-device-${i % 3}`, event: 'Product Viewed', properties: { product_id: `p${i}`, merchant_id: 'm1', correlation_id: `sdk-${i}` } });
      }
      analytics.identify({ userId: 'sdk-user', anonymousId: 'sdk-device-0', traits: { plan: 'pro' } });
      analytics.page({ anonymousId: 'sdk-device-1', name: 'Home', properties: { url: 'https://shop.example/' } });
      await analytics.closeAndFlush({ timeout: 10_000 });
      assert.deepEqual(errors, []);
      await flushed(c);
      const rows = await readRows(c.store);
      const views = rows.filter((r) => r.event === 'view');
      assert.equal(views.length, 25);
      assert.ok(views.every((r) => r.tenantid === 'shop' && r.merchantid === 'm1'));
      assert.deepEqual(new Set(views.map((r) => r.correlationid)).size, 25);
      assert.ok(rows.some((r) => r.event === 'load' && r.page === 'Home' && r.url === 'https://shop.example/'));
      const links = await readRows(c.store, 'identities/');
      assert.ok(links.some((l) => l.accountid === 'sdk-user' && l.deviceid === 'sdk-device-0'));
    } finally {
      await c.close();
    }
  });
});

describe("RudderStack's official rudder-sdk-node client", () => {
  it('delivers every event with its defaults: gzip JSON that axios labels application/x-www-form-urlencoded', async () => {
    const c = await startCollector({ sources: { 'rudder-node-key': 'shop' } });
    try {
      const errors: unknown[] = [];
      const client = new RudderAnalytics('rudder-node-key', { dataPlaneUrl: c.url, flushAt: 7, flushInterval: 50, logLevel: 'error', errorHandler: (e: unknown) => void errors.push(e) });
      // Each call's callback runs once its batch is answered.
      const sent: Array<Promise<void>> = [];
      const done = () => {
        let cb!: (err?: unknown) => void;
        sent.push(new Promise<void>((resolve, reject) => (cb = (err?: unknown) => (err ? reject(err) : resolve()))));
        return cb;
      };
      for (let i = 0; i < 20; i++) {
        client.track({ anonymousId: `rs-device-${i % 2}`, event: 'Product Viewed', properties: { product_id: `rp${i}`, merchant_id: 'rm1', correlation_id: `rs-${i}` } }, done());
      }
      client.identify({ userId: 'rs-user', anonymousId: 'rs-device-0', traits: { plan: 'pro' } }, done());
      client.page({ anonymousId: 'rs-device-1', name: 'Home', properties: { url: 'https://shop.example/' } }, done());
      await Promise.all(sent);
      assert.deepEqual(errors, []);
      await flushed(c);
      const rows = await readRows(c.store);
      const views = rows.filter((r) => r.event === 'view');
      assert.equal(views.length, 20);
      assert.ok(views.every((r) => r.tenantid === 'shop' && r.merchantid === 'rm1' && r.accountid === ''));
      assert.ok(rows.some((r) => r.event === 'load' && r.page === 'Home' && r.url === 'https://shop.example/'));
      const links = await readRows(c.store, 'identities/');
      assert.ok(links.some((l) => l.accountid === 'rs-user' && l.deviceid === 'rs-device-0'));
      // Every request was answered 200 (the SDK drops a batch on a 4xx).
      const text = await (await fetch(`${c.url}/metrics`)).text();
      assert.match(text, /tracklake_http_requests_total\{route="\/v1\/batch",status="200"\} [1-9]/);
      assert.doesNotMatch(text, /tracklake_http_requests_total\{route="\/v1\/batch",status="4\d\d"\}/);
    } finally {
      await c.close();
    }
  });
});
