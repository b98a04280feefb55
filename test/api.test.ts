import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { basic, flushed, post, readRows, startCollector, T0, track, type TestCollector } from './helpers.js';
import type { ManualClock } from '../src/lib/clock.js';

// Requests are prepared on worker threads or, with 0 workers, on the request thread: both answer alike.
for (const ingestWorkers of [2, 0]) describe(`the Segment HTTP Tracking API (${ingestWorkers} request workers)`, () => {
  let c: TestCollector;
  before(async () => {
    c = await startCollector({ sources: { 'key-a': 'tenantA', 'key-b': 'tenantB', dev: 'demo' }, ingestWorkers });
  });
  after(() => c.close());

  it('accepts each call type on its own endpoint', async () => {
    for (const [path, body] of [
      ['track', { event: 'Product Viewed', anonymousId: 'x1' }],
      ['page', { name: 'Home', anonymousId: 'x1' }],
      ['screen', { name: 'Home', anonymousId: 'x1' }],
      ['identify', { userId: 'u1', anonymousId: 'x1', traits: { a: 1 } }],
      ['alias', { userId: 'u1', previousId: 'x1' }],
      ['group', { userId: 'u1', groupId: 'g1' }],
    ] as const) {
      const r = await post(`${c.url}/v1/${path}`, body);
      assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.json)}`);
      assert.deepEqual(r.json, { success: true });
    }
  });

  it('takes the write key from Basic auth or from the body, and refuses a missing or unknown one with 401', async () => {
    assert.equal((await post(`${c.url}/v1/track`, { ...track(), writeKey: 'key-a' }, { authorization: '' })).status, 200);
    const missing = await post(`${c.url}/v1/track`, track(), { authorization: '' });
    assert.equal(missing.status, 401);
    assert.equal(missing.json.code, 'missing_write_key');
    const unknown = await post(`${c.url}/v1/track`, track(), { authorization: basic('nope') });
    assert.equal(unknown.status, 401);
    assert.equal(unknown.json.code, 'unknown_write_key');
  });

  it('accepts text/plain (browsers) and gzip bodies', async () => {
    assert.equal((await post(`${c.url}/v1/track`, JSON.stringify(track()), { 'content-type': 'text/plain;charset=UTF-8' })).status, 200);
    const res = await fetch(`${c.url}/v1/batch`, { method: 'POST', headers: { authorization: basic('dev'), 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify({ batch: [track()] })) });
    assert.equal(res.status, 200);
  });

  it('answers a CORS preflight and allows any origin', async () => {
    const res = await fetch(`${c.url}/v1/track`, { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    assert.ok(res.status === 204 || res.status === 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
  });

  it('keeps valid messages of a batch and lists the rejected ones', async () => {
    const r = await post(`${c.url}/v1/batch`, { batch: [track({ messageId: 'ok-1' }), { type: 'track', anonymousId: 'a', messageId: 'bad-1' }, track({ type: 'nope', messageId: 'bad-2' })] });
    assert.equal(r.status, 200);
    assert.equal(r.json.accepted, 1);
    assert.deepEqual(r.json.rejected.map((x: { index: number; messageId: string; code: string }) => [x.index, x.messageId, x.code]), [[1, 'bad-1', 'missing_event'], [2, 'bad-2', 'unknown_type']]);
    const none = await post(`${c.url}/v1/batch`, { batch: [{ type: 'track', anonymousId: 'a' }] });
    assert.equal(none.status, 400);
    assert.equal(none.json.code, 'all_rejected');
  });

  it('merges batch context into each message, the message winning', async () => {
    await post(`${c.url}/v1/batch`, { context: { ip: '198.51.100.1', userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148' }, batch: [track({ messageId: 'ctx-1', context: { ip: '198.51.100.2' } })] });
    await flushed(c);
    const row = (await readRows(c.store)).find((r) => r.deviceid === 'dev-1' && r.ip === '198.51.100.2');
    assert.ok(row);
    assert.equal(row.devicetype, 'MOBILE');
  });

  it('names the limit when a request is over 500 KB, a batch over 2500 messages or a message over 32 KB', async () => {
    const big = await post(`${c.url}/v1/track`, track({ properties: { pad: 'x'.repeat(600 * 1024) } }));
    assert.equal(big.status, 400);
    assert.equal(big.json.code, 'request_too_large');
    assert.match(big.json.message, /500 KB/);
    const many = await post(`${c.url}/v1/batch`, { batch: Array.from({ length: 2501 }, () => ({ type: 'track' })) });
    assert.equal(many.status, 400);
    assert.equal(many.json.code, 'batch_too_large');
    const msg = await post(`${c.url}/v1/track`, track({ properties: { pad: 'x'.repeat(40 * 1024) } }));
    assert.equal(msg.status, 400);
    assert.equal(msg.json.code, 'message_too_large');
    assert.match(msg.json.message, /32 KB/);
  });

  it('stops a gzip bomb at the decompressed limit', async () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20));
    const res = await fetch(`${c.url}/v1/batch`, { method: 'POST', headers: { authorization: basic('dev'), 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: bomb });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { code: string }).code, 'request_too_large');
  });

  it('acknowledges a duplicate messageId but writes it once, per tenant, for 24 hours', async () => {
    const m = track({ messageId: 'dup-1', anonymousId: 'dup-device' });
    assert.equal((await post(`${c.url}/v1/track`, m)).status, 200);
    assert.equal((await post(`${c.url}/v1/track`, m)).status, 200);
    assert.equal((await post(`${c.url}/v1/batch`, { batch: [m, m] })).status, 200);
    assert.equal((await post(`${c.url}/v1/track`, m, { authorization: basic('key-a') })).status, 200); // another tenant: not a duplicate
    (c.clock as ManualClock).advance(24 * 3600_000 + 1);
    assert.equal((await post(`${c.url}/v1/track`, m)).status, 200); // after the window: accepted again
    (c.clock as ManualClock).set(T0);
    await flushed(c);
    const rows = (await readRows(c.store)).filter((r) => r.deviceid === 'dup-device');
    assert.deepEqual(rows.map((r) => r.tenantid).sort(), ['demo', 'demo', 'tenantA']);
  });

  it('writes the new messages of a batch that repeats some, each once and whole', async () => {
    const seen = track({ messageId: 'mix-0', anonymousId: 'mix', properties: { product_id: 'p0', page: 'a,"b"' } });
    assert.equal((await post(`${c.url}/v1/track`, seen)).status, 200);
    const fresh = [1, 2].map((i) => track({ messageId: `mix-${i}`, anonymousId: 'mix', properties: { product_id: `p${i}`, page: `é "${i}"` } }));
    const res = await post(`${c.url}/v1/batch`, { batch: [fresh[0], seen, fresh[1], fresh[0]] });
    assert.equal(res.status, 200);
    await flushed(c);
    const rows = (await readRows(c.store)).filter((r) => r.deviceid === 'mix');
    assert.deepEqual(rows.map((r) => [r.productid, r.page]).sort(), [['p0', 'a,"b"'], ['p1', 'é "1"'], ['p2', 'é "2"']]);
  });

  it('keeps each tenant in its own rows whatever the payload claims', async () => {
    await post(`${c.url}/v1/track`, track({ anonymousId: 'iso-a', properties: { tenantid: 'tenantB', product_id: 'p' }, context: { tenantid: 'tenantB' } }), { authorization: basic('key-a') });
    await post(`${c.url}/v1/track`, { ...track({ anonymousId: 'iso-b' }), writeKey: 'key-a' }, { authorization: basic('key-b') });
    await flushed(c);
    const rows = await readRows(c.store);
    assert.deepEqual(rows.filter((r) => r.deviceid === 'iso-a').map((r) => r.tenantid), ['tenantA']);
    // Basic auth wins over a body writeKey.
    assert.deepEqual(rows.filter((r) => r.deviceid === 'iso-b').map((r) => r.tenantid), ['tenantB']);
  });

  it('serves /health, /ready and Prometheus /metrics', async () => {
    assert.equal((await fetch(`${c.url}/health`)).status, 200);
    assert.equal((await fetch(`${c.url}/ready`)).status, 200);
    const text = await (await fetch(`${c.url}/metrics`)).text();
    assert.match(text, /tracklake_events_accepted_total\{tenant="demo"\} \d+/);
    assert.match(text, /tracklake_events_rejected_total\{reason="missing_event"\} \d+/);
    assert.match(text, /tracklake_events_duplicate_total \d+/);
  });

  it('answers wrong methods and paths with JSON errors', async () => {
    const get = await fetch(`${c.url}/v1/track`);
    assert.equal(get.status, 405);
    assert.equal(((await get.json()) as { code: string }).code, 'method_not_allowed');
    const nope = await post(`${c.url}/v2/track`, track());
    assert.equal(nope.status, 404);
    assert.equal(nope.json.code, 'not_found');
  });

  it('writes identify and alias calls as identity links', async () => {
    await post(`${c.url}/v1/identify`, { userId: 'link-user', anonymousId: 'link-device', timestamp: new Date(T0).toISOString() });
    await flushed(c);
    const links = await readRows(c.store, 'identities/');
    assert.ok(links.some((l) => l.deviceid === 'link-device' && l.accountid === 'link-user' && l.tenantid === 'demo' && l.time === String(T0)));
    const keys = (await c.store.list('identities/')).map((o) => o.key);
    assert.ok(keys.every((k) => /^identities\/\d{4}\/\d{2}\/\d{2}\/[A-Za-z0-9_-]+-\d{12}\.csv$/.test(k)), keys.join());
  });
});

describe('the client address', () => {
  it('comes from X-Forwarded-For only behind a trusted proxy', async () => {
    for (const trustProxy of [false, true]) {
      const c = await startCollector({ trustProxy });
      try {
        await post(`${c.url}/v1/track`, track({ anonymousId: `xff-${trustProxy}` }), { 'x-forwarded-for': '203.0.113.77' });
        await flushed(c);
        const [row] = (await readRows(c.store)).filter((r) => r.deviceid === `xff-${trustProxy}`);
        assert.equal(row!.ip, trustProxy ? '203.0.113.77' : '127.0.0.1');
      } finally {
        await c.close();
      }
    }
  });
});

describe('a long-lived connection', () => {
  it('is served past 10 000 requests: no request limit per socket, no 503 to a client that keeps sending', async () => {
    const c = await startCollector();
    try {
      const { port } = new URL(c.url);
      const n = 10_050;
      const statuses = await new Promise<string[]>((resolve, reject) => {
        const socket = net.connect(Number(port), '127.0.0.1');
        let text = '';
        socket.setEncoding('latin1');
        socket.on('data', (d: string) => {
          text += d;
          const seen = text.match(/HTTP\/1\.1 \d{3}/g) ?? [];
          if (seen.length >= n) {
            socket.destroy();
            resolve(seen);
          }
        });
        socket.on('error', reject);
        socket.on('close', () => resolve(text.match(/HTTP\/1\.1 \d{3}/g) ?? []));
        // Pipelined, as a busy SDK's keep-alive connection can be: the whole run written at once.
        socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n));
      });
      assert.equal(statuses.length, n);
      assert.deepEqual([...new Set(statuses)], ['HTTP/1.1 200']);
    } finally {
      await c.close();
    }
  });
});
