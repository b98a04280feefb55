/**
 * Destinations: every message a collector acknowledged reaches each destination at least once, in log order,
 * with its messageId untouched, through receivers that fail in every way a network can; what is refused
 * goes to the dead letters; a destination that falls behind hands its backlog to the bucket; none of it
 * holds ingest back. Real HTTP receivers on loopback, real child processes for kill -9.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.js';
import { ConfigError } from '../src/lib/errors.js';
import { LocalStore } from '../src/storage/local.js';
import type { ObjectStore } from '../src/storage/store.js';
import { post, readRows, silent, T0, sendTagged, spawnCollector, startCollector, tempDir, type TestCollector } from './helpers.js';
import { ManualClock } from '../src/lib/clock.js';
import { Regulations } from '../src/privacy/regulations.js';
import { regulationsRun } from '../src/cli/regulations.js';
import pg from 'pg';
import { destinationsReplay, destinationsStatus } from '../src/cli/destinations.js';
import { deadLetterLines, replayDeadLetters } from '../src/forward/deadletter.js';
import { addDays, dayPath } from '../src/lib/dates.js';
import { RequestPreparer } from '../src/ingest/prepare.js';
import { decodeRecords, formatForwardRow, parseForwardRow } from '../src/ingest/records.js';
import { framePayload } from '../src/ingest/wal.js';
import { copyFieldsOfCsv, cutTableName, encodeMessages, MIGRATIONS, postgresSender, rowMapper, tableName } from '../src/forward/postgres.js';
import { forwardedCopies } from '../src/forward/erase.js';
import { backlogEntries, backlogOf, forwardedOf } from '../src/forward/messages.js';
import { shortOfBatch } from '../src/forward/deliver.js';
import { csvLine } from '../src/tracking/csv.js';
import { senderFor, ThreadedSender } from '../src/forward/thread.js';
import { safeUrl } from '../src/forward/sender.js';
import type { Worker } from 'node:worker_threads';
import { startPostgres, type TestPostgres } from './postgres.js';
import { type Answer, type Receiver, startReceiver, until } from './receiver.js';

const SECRET = 'webhook-secret-0123456789';
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function receiver(answer?: (r: Parameters<Receiver['answer']>[0], n: number) => Answer): Promise<Receiver> {
  const r = await startReceiver(answer);
  closers.push(() => r.close());
  return r;
}

async function collector(destinations: object[], settings: Record<string, unknown> = {}): Promise<TestCollector> {
  const c = await startCollector({ destinations, flushIntervalMs: 200, ...settings });
  closers.push(() => c.close());
  return c;
}

let postgres: TestPostgres | undefined;
/** One Postgres for the file (it starts in about two seconds), a database per test. */
async function database(name: string): Promise<string> {
  if (!postgres) {
    postgres = await startPostgres();
    const p = postgres;
    closers.unshift(() => p.remove());
  }
  const admin = new pg.Client(postgres.url);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return postgres.url.replace(/\/lake$/, `/${name}`);
}

async function pgRows(url: string, sql: string): Promise<Array<Record<string, any>>> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } catch (e) {
    if ((e as { code?: string }).code === '42P01') return []; // not made yet
    throw e;
  } finally {
    await c.end();
  }
}

const hook = (url: string, extra: object = {}) => ({ name: 'crm', type: 'webhook', url, secret: SECRET, retryBaseMs: 20, retryMaxMs: 200, timeoutMs: 1000, ...extra });
const ids = (ms: Array<Record<string, any>>) => ms.map((m) => m.messageId as string);
/** The ids in first-arrival order (a repeat after a retry is allowed: delivery is at least once). */
const firstSeen = (xs: string[]) => [...new Set(xs)];
const jsonBytes = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('destinations', () => {
  it('forward every accepted message to a webhook, signed, in log order, messageId untouched', async () => {
    const r = await receiver();
    // A request answered after the timeout is sent again (at least once): on a loaded machine that would be a
    // repeat here, where this test asks for each message exactly once.
    const c = await collector([hook(r.url, { batchCount: 7, timeoutMs: 15_000 })]);
    const sent = await sendTagged(c.url, { tag: 'hook', batches: 5 });
    // Calls that make no tracking row are forwarded too.
    const more = await post(`${c.url}/v1/batch`, { batch: [{ type: 'identify', userId: 'u1', traits: { plan: 'pro' }, messageId: 'id-1' }, { type: 'group', userId: 'u1', groupId: 'g1', messageId: 'grp-1' }] });
    assert.equal(more.status, 200);
    const all = [...sent.acked, 'id-1', 'grp-1'];
    await until(() => r.delivered.length >= all.length, 'every message delivered', 20_000, async () => ({ requests: r.requests.length, delivered: r.delivered.length, status: await destinationsStatus(c.config) }));
    assert.deepEqual(ids(r.delivered), all);
    for (const req of r.requests) {
      assert.ok(req.body.batch.length <= 7, 'batchCount holds');
      const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers['x-tracklake-signature']))!;
      assert.equal(v1, createHmac('sha256', SECRET).update(`${t}.${req.raw}`).digest('hex'), 'the signature is the HMAC of "<t>.<body>"');
    }
    const identify = r.delivered.find((m) => m.messageId === 'id-1')!;
    assert.equal(identify.type, 'identify');
    assert.deepEqual(identify.traits, { plan: 'pro' });
    assert.ok(identify.receivedAt && identify.context.ip === '127.0.0.1', 'receivedAt and context.ip, as Segment adds them');
    assert.equal(identify.writeKey, undefined);
    // The receiver has the last batch before the sender's thread reads its answer and tells the forwarder.
    const delivered = new RegExp(`tracklake_forward_delivered_total\\{destination="crm"\\} ${all.length}\\n`);
    await until(async () => delivered.test(await (await fetch(`${c.url}/metrics`)).text()), 'every delivery counted in /metrics');
  });

  it('wait up to lingerMs to fill a batch, and send a full one at once', async () => {
    const r = await receiver();
    // A segment is sealed at each flush, and a sealed one's last messages go at once: nothing more comes to it.
    const c = await collector([hook(r.url, { batchCount: 10, lingerMs: 1500 })], { flushIntervalMs: 30_000 });
    const t0 = Date.now();
    for (const id of ['a', 'b', 'c']) assert.equal((await post(`${c.url}/v1/track`, { type: 'track', event: 'Step', anonymousId: 'x', messageId: `linger-${id}` })).status, 200);
    await until(() => r.delivered.length === 3, 'three trickled messages delivered');
    assert.equal(r.requests.length, 1, 'one request for the three');
    assert.ok(r.times[0]! - t0 >= 1000, 'sent once the batch had waited its linger time');
    const t1 = Date.now();
    const sent = await sendTagged(c.url, { tag: 'full', batches: 1 }); // ten at once: a full batch
    await until(() => r.delivered.length === 3 + sent.acked.length, 'the full batch delivered');
    assert.equal(r.requests.length, 2);
    assert.ok(r.times[1]! - t1 < 1000, 'a full batch does not wait');
  });

  it('retry 500, 429 with Retry-After, timeouts, slow answers and closed connections: nothing lost, ingest never held', async () => {
    const faults: Answer[] = [{ status: 500 }, { status: 429, retryAfter: '1' }, 'hang', 'close', { status: 503 }, { status: 408 }, { status: 200, delayMs: 300 }];
    const r = await receiver((_req, n) => faults[n - 1] ?? { status: 200 });
    const c = await collector([hook(r.url, { timeoutMs: 300, maxAttempts: 20 })]);
    const t0 = Date.now();
    const sent = await sendTagged(c.url, { tag: 'faults', batches: 20 });
    assert.ok(sent.statuses.every((s) => s === 200), 'every request acknowledged while the destination fails');
    assert.ok(Date.now() - t0 < 5000, 'ingest did not wait for the destination');
    await until(() => new Set(ids(r.delivered)).size >= sent.acked.length, 'every message delivered');
    assert.deepEqual(firstSeen(ids(r.delivered)), sent.acked, 'in log order');
    // The request after the 429 waited for its Retry-After (1 s), not the 20-200 ms backoff.
    assert.ok(r.times[2]! - r.times[1]! >= 950, `Retry-After honoured (${r.times[2]! - r.times[1]!} ms)`);
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    assert.match(metrics, /tracklake_forward_retries_total\{destination="crm"\} [6-9]/);
    assert.match(metrics, /tracklake_forward_dead_lettered_total\{destination="crm"\} 0/);
  });

  it('send a message refused with 400 to the dead letters alone, and deliver its neighbours', async () => {
    const r = await receiver((req) => (req.body.batch.some((m) => m.properties?.bad === true) ? { status: 400, body: '{"error":"bad property"}' } : { status: 200 }));
    // A receiver whose URL is its credential, as Slack's and Zapier's hooks are.
    const c = await collector([hook(`${r.url}/hooks/T0SECRET/B0SECRET`, { batchCount: 10 })]);
    const batch = Array.from({ length: 10 }, (_, i) => ({ type: 'track', event: 'view', anonymousId: 'a', messageId: `m-${i}`, properties: { bad: i === 6, product_id: 'p' } }));
    assert.equal((await post(`${c.url}/v1/batch`, { batch })).status, 200);
    await until(async () => (await c.store.list('deadletter/crm/')).length > 0 && r.delivered.length >= 9, 'the refused message dead-lettered, the rest delivered');
    assert.deepEqual(ids(r.delivered), batch.filter((_, i) => i !== 6).map((m) => m.messageId));
    const [file] = await c.store.list('deadletter/crm/');
    assert.match(file!.key, /^deadletter\/crm\/\d{4}\/\d{2}\/\d{2}\/.+\.jsonl$/);
    const lines = (await c.store.get(file!.key))!.toString().trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 1);
    assert.equal(lines[0].message.messageId, 'm-6');
    assert.match(lines[0].error, /answered 400: \{"error":"bad property"\}/);
    assert.equal(lines[0].error.startsWith(`${r.url}/… answered 400`), true, lines[0].error);
    assert.doesNotMatch(JSON.stringify(await destinationsStatus(c.config)), /SECRET/, 'the URL\'s path is in no error');
  });

  it('name a receiver in errors by its origin: never a path, a query or a password that may be its credential', () => {
    assert.equal(safeUrl('https://hooks.slack.com/services/T0/B0/XXXX'), 'https://hooks.slack.com/…');
    assert.equal(safeUrl('https://user:pa55@crm.example.com:8443/in?token=abc'), 'https://crm.example.com:8443/…');
    assert.equal(safeUrl('https://crm.example.com'), 'https://crm.example.com');
    assert.equal(safeUrl('https://api.segment.io/v1/batch'), 'https://api.segment.io/v1/batch');
  });

  it('give up after maxAttempts: the batch goes to the dead letters with its last error, and delivery goes on', async () => {
    let down = true;
    const r = await receiver(() => (down ? { status: 502 } : { status: 200 }));
    const c = await collector([hook(r.url, { maxAttempts: 3 })]);
    const first = await sendTagged(c.url, { tag: 'lost', batches: 1 });
    await until(async () => (await c.store.list('deadletter/crm/')).length > 0, 'dead letters after three attempts');
    assert.equal(r.requests.length, 3);
    down = false;
    const second = await sendTagged(c.url, { tag: 'later', batches: 1 });
    await until(() => r.delivered.length >= 10, 'the next messages delivered');
    assert.deepEqual(ids(r.delivered), second.acked);
    const dead = (await c.store.get((await c.store.list('deadletter/crm/'))[0]!.key))!.toString().trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(dead.map((d) => d.message.messageId), first.acked);
    assert.ok(dead.every((d) => d.attempts === 3 && /answered 502/.test(d.error)));
  });

  it('relay to another Segment-compatible API (gzip, its write key): a second collector stores each message once', async () => {
    const downstream = await startCollector({ sources: { downkey: 'down' } });
    closers.push(() => downstream.close());
    const c = await collector([{ name: 'relay', type: 'segment', url: downstream.url, writeKey: 'downkey', retryBaseMs: 20, retryMaxMs: 200 }]);
    const sent = await sendTagged(c.url, { tag: 'relay', batches: 3 });
    const accepted = async () => Number(/tracklake_events_accepted_total\{tenant="down"\} (\d+)/.exec(await (await fetch(`${downstream.url}/metrics`)).text())?.[1] ?? 0);
    await until(async () => (await accepted()) >= sent.acked.length, 'the downstream collector accepted every message');
    await downstream.node.shipper.flush();
    const rows = await readRows(downstream.store);
    assert.deepEqual(rows.map((row) => row.correlationid).sort(), [...sent.acked].sort(), 'each message stored once downstream');
    assert.deepEqual(new Set(rows.map((row) => row.tenantid)), new Set(['down']));
  });

  it('keep a Segment relay\'s batches under Segment\'s 500 KB limit, as analytics-node does', async () => {
    // Segment refuses a batch over 500 KB; a refused batch would be split, but none should be refused.
    const r = await receiver((req) => (Buffer.byteLength(req.raw) > 500_000 ? { status: 400, body: 'batch too large' } : { status: 200 }));
    const c = await collector([{ name: 'relay', type: 'segment', url: r.url, writeKey: 'k', retryBaseMs: 20, retryMaxMs: 200 }]);
    const filler = 'x'.repeat(15_000);
    const acked: string[] = [];
    for (let b = 0; b < 4; b++) {
      const batch = Array.from({ length: 25 }, (_, i) => ({ type: 'track', event: 'Big', userId: 'u1', messageId: `big-${b}-${i}`, properties: { filler } }));
      assert.equal((await post(`${c.url}/v1/batch`, { batch })).status, 200);
      acked.push(...batch.map((m) => m.messageId));
    }
    await until(() => r.delivered.length >= acked.length, 'every message relayed');
    assert.deepEqual(ids(r.delivered), acked);
    assert.ok(r.requests.every((q) => Buffer.byteLength(q.raw) <= 480 * 1024), `request sizes: ${r.requests.map((q) => q.raw.length).join(', ')}`);
    assert.ok(r.requests.length >= 4, 'the messages took several batches');
  });

  it('hand a dead destination\'s backlog to the bucket past maxLagBytes, release the log, and deliver it in order later', async () => {
    let down = true;
    const r = await receiver(() => (down ? { status: 503 } : { status: 200 }));
    // The forwarder's own listings of its backlog (`…/backlog/<node>-`), not this test's (`…/backlog/`).
    const dir = tempDir();
    const bucket = new LocalStore(path.join(dir, 'data'));
    let listings = 0;
    const store: ObjectStore = { location: bucket.location, put: (k, b) => bucket.put(k, b), putFile: (k, f) => bucket.putFile(k, f), get: (k) => bucket.get(k), delete: (k) => bucket.delete(k), list: (prefix) => ((listings += prefix.startsWith('destinations/crm/backlog/') && prefix !== 'destinations/crm/backlog/' ? 1 : 0), bucket.list(prefix)) };
    const c = await startCollector({ destinations: [hook(r.url, { maxLagBytes: 64 * 1024, retryMaxMs: 100, maxAttempts: 100 })], maxSegmentBytes: 16 * 1024, flushIntervalMs: 200 }, { dir, store });
    closers.push(() => c.close());
    const sent = await sendTagged(c.url, { tag: 'backlog', batches: 120 });
    await c.node.shipper.flush();
    await until(async () => (await c.store.list('destinations/crm/backlog/')).length > 4, 'segments handed over to the bucket');
    // 64 KiB of 16 KiB segments: the one being delivered and about four more stay in the log.
    const held = () => readdirSync(c.config.walDir).filter((f) => f.startsWith('shipped-')).length;
    await until(() => held() <= 6, 'the log released what was handed over');
    const ready = await fetch(`${c.url}/ready`);
    assert.equal(ready.status, 200, 'ingest stays ready while a destination fails');
    assert.match(await ready.text(), /failing: crm/);
    // Status says how far behind, as the metrics do: the age of the message it is stuck at, and the log unread.
    (c.clock as ManualClock).advance(90_000);
    await until(async () => (await destinationsStatus(c.config, c.clock))[0]!.lagSeconds >= 90, 'status showing the lag in seconds');
    const behind = (await destinationsStatus(c.config, c.clock))[0]!;
    assert.ok(behind.lagBytes > 0 && behind.backlogObjects > 0 && behind.failing !== null, JSON.stringify(behind));
    assert.match(await (await fetch(`${c.url}/metrics`)).text(), /tracklake_forward_lag_seconds\{destination="crm"\} (9\d|1\d\d)(\.\d+)?\n/);
    down = false;
    await until(() => new Set(ids(r.delivered)).size >= sent.acked.length, 'every message delivered after the destination recovered', 60_000);
    assert.deepEqual(firstSeen(ids(r.delivered)), sent.acked, 'backlog and log in one order');
    await until(async () => (await c.store.list('destinations/crm/backlog/')).length === 0, 'the backlog emptied');
    await until(async () => (await destinationsStatus(c.config, c.clock))[0]!.lagSeconds === 0, 'status caught up');
    assert.equal((await c.store.list('deadletter/')).length, 0);
    // Listed once, then kept: a listing per object handed over or delivered made a long backlog quadratic.
    assert.equal(listings, 1, 'the forwarder listed its backlog once');
  });

  it('leave another node\'s backlog alone, even one whose node id starts with its own', async () => {
    // Node "edge-2" falls behind a dead receiver and hands its backlog to the shared bucket; node "edge",
    // with the same destination up, must deliver only what it received itself.
    const shared = new LocalStore(path.join(tempDir(), 'bucket'));
    const dead = await receiver(() => ({ status: 503 }));
    const behind = await startCollector({ nodeId: 'edge-2', destinations: [hook(dead.url, { maxLagBytes: 64 * 1024, retryMaxMs: 100, maxAttempts: 100 })], maxSegmentBytes: 16 * 1024, flushIntervalMs: 200 }, { store: shared });
    closers.push(() => behind.close());
    await sendTagged(behind.url, { tag: 'other', batches: 120 });
    await behind.node.shipper.flush();
    await until(async () => (await shared.list('destinations/crm/backlog/edge-2-')).length > 2, 'edge-2 handed segments over to the bucket');
    const handedOver = (await shared.list('destinations/crm/backlog/')).map((o) => o.key);

    const up = await receiver();
    const edge = await startCollector({ nodeId: 'edge', destinations: [hook(up.url)], flushIntervalMs: 200 }, { store: shared });
    closers.push(() => edge.close());
    const own = await sendTagged(edge.url, { tag: 'own', batches: 3 });
    await until(() => new Set(ids(up.delivered)).size >= own.acked.length, 'edge delivered its own messages');
    await new Promise((r) => setTimeout(r, 300)); // a step or two more of edge's forwarder
    assert.deepEqual(firstSeen(ids(up.delivered)), own.acked, 'only its own messages, none of edge-2\'s backlog');
    const still = (await shared.list('destinations/crm/backlog/')).map((o) => o.key);
    for (const key of handedOver) assert.ok(still.includes(key), `edge-2's ${key} is still in the bucket`);
  });

  it('deliver the backlog a node handed over before it was renamed, in order, before what came after', async () => {
    // What node "old" left when it stopped: segments 3 and 4 handed over to the bucket while its receiver
    // was down, its cursor at 3, the log empty (nothing came after 4). It starts again as "new".
    const dir = tempDir();
    const store = new LocalStore(path.join(dir, 'data'));
    const line = (id: string) => formatForwardRow({ tenant: 'demo', blocked: false, receivedAt: T0, name: 'view', json: jsonBytes({ type: 'track', event: 'view', anonymousId: 'a', messageId: id }) }).toString();
    await store.put('destinations/crm/backlog/old-000000000003.jsonl', Buffer.from(`${line('b-1')}\n${line('b-2')}\n`));
    await store.put('destinations/crm/backlog/old-000000000004.jsonl', Buffer.from(`${line('b-3')}\n`));
    mkdirSync(path.join(dir, 'state', 'forward'), { recursive: true });
    mkdirSync(path.join(dir, 'wal'), { recursive: true });
    writeFileSync(path.join(dir, 'wal', 'meta.json'), JSON.stringify({ nodeId: 'old', nextSeq: 6 }));
    const cursor = { cursor: { seq: 3, offset: 0, index: 0, skipThrough: 4 }, delivered: 0, retried: 0, deadLettered: 0, handedOver: 3, lastDeliveredAt: null, failing: null, node: 'old' };
    writeFileSync(path.join(dir, 'state', 'forward', 'crm.json'), JSON.stringify(cursor));

    const r = await receiver();
    const c = await startCollector({ nodeId: 'new', destinations: [hook(r.url)], flushIntervalMs: 200 }, { dir, store });
    closers.push(() => c.close());
    const after = await sendTagged(c.url, { tag: 'after', batches: 2 });
    const expected = ['b-1', 'b-2', 'b-3', ...after.acked];
    await until(() => new Set(ids(r.delivered)).size >= expected.length, 'the former backlog and the new messages delivered', 20_000, () => ids(r.delivered));
    assert.deepEqual(firstSeen(ids(r.delivered)), expected);
    await until(async () => (await store.list('destinations/crm/backlog/')).length === 0, 'the former backlog emptied');
    await c.close();
    const state = JSON.parse(readFileSync(path.join(dir, 'state', 'forward', 'crm.json'), 'utf8'));
    assert.equal(state.node, 'new');
    assert.equal(state.formerNodes, undefined, 'the former id forgotten once its backlog is delivered');
  });

  it('finish the segment it was reading before its backlog, when that takes more than one job', async () => {
    // Down at first; then up, refusing one message of the first segment: its dead letter ends the job there,
    // with most of the segment still to read while the backlog waits in the bucket.
    let down = true;
    let refused = '';
    const r = await receiver((got) => (down ? { status: 503 } : got.body.batch.some((m) => m.messageId === refused) ? { status: 400 } : { status: 200 }));
    const c = await collector([hook(r.url, { batchCount: 2, maxLagBytes: 64 * 1024, retryMaxMs: 100, maxAttempts: 100 })], { maxSegmentBytes: 16 * 1024 });
    const sent = await sendTagged(c.url, { tag: 'split', batches: 120 });
    refused = sent.acked[3]!;
    await c.node.shipper.flush();
    await until(async () => (await c.store.list('destinations/crm/backlog/')).length > 2, 'segments handed over to the bucket');
    down = false;
    const expected = sent.acked.filter((id) => id !== refused);
    await until(() => new Set(ids(r.delivered)).size >= expected.length, 'every other message delivered', 60_000, () => ({ delivered: new Set(ids(r.delivered)).size, of: expected.length, missing: expected.filter((id) => !ids(r.delivered).includes(id)).slice(0, 5) }));
    assert.deepEqual(firstSeen(ids(r.delivered)), expected, 'the rest of the first segment, then the backlog, then the log: one order');
    const letters = await c.store.list('deadletter/crm/');
    assert.equal(letters.length, 1);
  });

  it('start a destination\'s sender thread again after it died; the batch it held fails, to be retried', async () => {
    const r = await receiver(() => ({ status: 200, delayMs: 300 }));
    const d = loadConfig({ flags: { sources: { dev: 'demo' }, destinations: [hook(r.url)] } }).destinations[0]!;
    const sender = new ThreadedSender(d, {});
    closers.push(() => sender.close());
    const batch = [{ tenant: 'demo', json: Buffer.from('{"type":"track","event":"A","messageId":"thread-1"}') }];
    const inFlight = sender.send(batch);
    await until(() => r.requests.length === 1, 'the batch reached the receiver');
    await (sender as unknown as { worker: Worker }).worker.terminate(); // a thread that died
    const lost = await inFlight;
    assert.equal(lost.ok, false);
    assert.ok(!lost.ok && lost.retry && /sender thread of crm exited/.test(lost.error), JSON.stringify(lost));
    assert.deepEqual(await sender.send(batch), { ok: true }, 'a new thread sends the next attempt');
    assert.equal(r.requests.length, 2);
  });

  it('read the log again on a new thread when the destination\'s thread dies mid-delivery: nothing lost', async () => {
    const r = await receiver(() => ({ status: 200, delayMs: 150 }));
    const c = await collector([hook(r.url, { batchCount: 5 })]);
    const sent = await sendTagged(c.url, { tag: 'died', batches: 4 });
    await until(() => r.requests.length >= 1, 'delivery under way');
    const forwarder = (c.node.readers as unknown as { forwarders: Array<{ o: { sender: { worker?: Worker } } }> }).forwarders[0]!;
    await forwarder.o.sender.worker!.terminate(); // a thread that died with a log slice in hand
    await until(() => new Set(ids(r.delivered)).size === sent.acked.length, 'every message delivered after it', 20_000);
    assert.deepEqual(firstSeen(ids(r.delivered)), sent.acked, 'in log order');
  });

  it('deliver a slice of the log on the sender\'s thread, stopping where the forwarder decides', async () => {
    // A segment of three frames of four messages each, as the collector logs them for a destination.
    const d = loadConfig({ flags: { sources: { dev: 'demo' }, destinations: [hook('http://127.0.0.1:1', { batchCount: 3, maxAttempts: 2 })] } }).destinations[0]!;
    const preparer = new RequestPreparer({ sources: { dev: 'demo' }, events: {}, forward: [d] });
    const dir = tempDir();
    const file = path.join(dir, 'seg-000000000007.log');
    const frames: Buffer[] = [];
    for (let f = 0; f < 3; f++) {
      const batch = [0, 1, 2, 3].map((k) => ({ type: 'track', event: 'Viewed', anonymousId: `a${f}`, messageId: `m-${f}-${k}` }));
      const r = preparer.prepare({ body: jsonBytes({ batch }), basicKey: 'dev', pathType: 'batch', clientIp: '127.0.0.1', receivedAt: T0 + f });
      assert.ok(r.ok);
      frames.push(Buffer.from(r.value.frame));
    }
    writeFileSync(file, Buffer.concat(frames));
    const ends = frames.map((_, i) => frames.slice(0, i + 1).reduce((n, b) => n + b.length, 0));
    const r = await receiver((got) => (got.body.batch.some((m) => m.messageId === 'm-1-1') ? { status: 400 } : { status: 200 }));
    const sender = new ThreadedSender({ ...d, url: r.url } as typeof d, {});
    closers.push(() => sender.close());
    const job = { seq: 7, paths: [path.join(dir, 'shipped-000000000007.log'), file], from: 0, index: 0, end: ends[2]!, sealed: false, maxBytes: 1 << 20, linger: false, node: 'n1' };
    const events: string[] = [];
    const run = (over: Partial<typeof job>, horizon?: { before: number; tenants: string[] }) => sender.deliverLog({ ...job, ...over }, { event: (e) => events.push(e.type === 'progress' ? `${e.offset}/${e.index}` : e.type), horizon: () => horizon });

    // A short batch of the active segment is held back while the forwarder lets it linger.
    assert.deepEqual(await run({ from: ends[1]!, index: 2, linger: true }), { offset: ends[1]!, index: 2, done: false, held: 'lingering' });
    assert.equal(r.requests.length, 0);
    // A message the privacy filter must judge (received before its lists changed) is handed back unsent.
    assert.deepEqual(await run({}, { before: T0 + 1, tenants: ['demo'] }), { offset: 0, index: 0, done: false, held: 'privacy' });
    assert.deepEqual(await run({ end: ends[0]! }, { before: T0 + 1, tenants: ['other'] }), { offset: ends[0]!, index: 0, done: false }, 'another tenant\'s regulations: sent');
    // Batches of 3 across frames; the one holding a refused message is split until it stands alone, and the
    // job ends after it: the dead letters are stored before the cursor passes them.
    events.length = 0;
    const done = await run({ from: ends[0]!, index: 0, sealed: true });
    assert.deepEqual(done.deadLetters?.map((l) => [l.id, l.messages.map((m) => JSON.parse(m.json.toString()).messageId), l.attempts]), [[`n1-000000000007-${ends[0]}-0`, ['m-1-1'], 1]]);
    assert.deepEqual([done.offset, done.index, done.done], [ends[0]!, 3, false], 'the cursor goes past the dead-lettered batch');
    assert.ok(!events.includes(`${ends[0]}/3`), 'progress is not told before the dead letters are stored');
    const rest = await run({ from: ends[0]!, index: 3, sealed: true });
    assert.deepEqual(rest, { offset: ends[2]!, index: 0, done: true });
    assert.deepEqual(events.filter((e) => e.includes('/')), [`${ends[1]}/2`, `${ends[2]}/0`], 'after each batch, where the cursor stands');
    assert.deepEqual(ids(r.delivered), ['m-0-0', 'm-0-1', 'm-0-2', 'm-0-3', 'm-1-0', 'm-1-2', 'm-1-3', 'm-2-0', 'm-2-1', 'm-2-2', 'm-2-3']);
    // A short batch at the end of a slice cut short of the log's end does not linger: there is more to read.
    assert.deepEqual(await run({ from: ends[0]!, index: 2, maxBytes: 100, linger: true }), { offset: ends[1]!, index: 0, done: false });
    assert.deepEqual(ids(r.delivered).slice(-2), ['m-1-2', 'm-1-3']);
  });

  it('deliver a backlog object on the sender\'s thread from its cursor line, stopping where the forwarder decides', async () => {
    const d = loadConfig({ flags: { sources: { dev: 'demo' }, destinations: [hook('http://127.0.0.1:1', { batchCount: 2, maxAttempts: 2 })] } }).destinations[0]!;
    // Seven lines as a hand-over writes them; the fourth emptied by an erasure.
    const line = (id: string) => `demo\t0\t${T0}\t"Viewed"\t${JSON.stringify({ type: 'track', event: 'Viewed', anonymousId: 'a', messageId: id })}`;
    const body = () => Buffer.from(`${['b-0', 'b-1', 'b-2', '', 'b-4', 'b-5', 'b-6'].map((id) => (id ? line(id) : '')).join('\n')}\n`);
    const r = await receiver((got) => (got.body.batch.some((m) => m.messageId === 'b-4') ? { status: 400 } : { status: 200 }));
    const sender = new ThreadedSender({ ...d, url: r.url } as typeof d, {});
    closers.push(() => sender.close());
    const lines: number[] = [];
    const run = (from: number, horizon?: { before: number; tenants: string[] }, bytes = body()) => sender.deliverBacklog({ lines: bytes, from, name: 'n1-000000000003' }, { event: (e) => void (e.type === 'line' && lines.push(e.n)), horizon: () => horizon });

    // A message the privacy filter must judge is handed back unsent, at the line its batch starts.
    assert.deepEqual(await run(1, { before: T0 + 1, tenants: ['demo'] }), { next: 1, held: 'privacy' });
    assert.equal(r.requests.length, 0);
    // From line 1: b-1 b-2, then b-4 b-5 (the hole passed over), refused and split until b-4 stands alone:
    // its dead letter ends the job.
    const first = await run(1);
    assert.deepEqual(first.deadLetters?.map((l) => [l.id, l.messages.map((m) => JSON.parse(m.json.toString()).messageId)]), [['backlog-n1-000000000003-3', ['b-4']]]);
    assert.equal(first.next, 6, 'the cursor passes the dead-lettered batch');
    assert.deepEqual(lines, [3], 'progress is told after each delivered batch, not before the dead letters are stored');
    assert.deepEqual(first.lines, body(), 'the object\'s bytes come back with the dead letters, for the next job');
    assert.deepEqual(await run(first.next, undefined, first.lines), { next: 7 });
    assert.deepEqual(ids(r.delivered), ['b-1', 'b-2', 'b-5', 'b-6']);
  });

  it('send a batch full by its bytes at once, as one full by its count: only a short one lingers', () => {
    const d = { batchCount: 10, batchBytes: 1000 };
    const big = { json: Buffer.alloc(600) };
    assert.equal(shortOfBatch([big, big], d, () => true), false, 'two of 600 bytes fill 1000');
    assert.equal(shortOfBatch([big], d, () => true), true);
    assert.equal(shortOfBatch(Array.from({ length: 10 }, () => ({ json: Buffer.alloc(10) })), d, () => true), false, 'ten fill the count');
    assert.equal(shortOfBatch([big, big], d, () => false), false, 'nothing wanted: nothing to hold back');
  });

  it('read a forwarded line back as it was written, whatever its name holds', () => {
    for (const name of ['Order Completed', 'Say "hi"', 'back\\slash', 'Größe ✓', '', 'tab\tin name']) {
      const json = jsonBytes({ type: 'track', event: name, messageId: 'm1' });
      const line = formatForwardRow({ tenant: 'shop-a', blocked: true, receivedAt: 1_773_576_000_123, name, json });
      const back = parseForwardRow(line);
      assert.deepEqual({ ...back, json: back.json.toString() }, { tenant: 'shop-a', blocked: true, receivedAt: 1_773_576_000_123, name, json: json.toString(), tracks: undefined }, name);
    }
    assert.throws(() => parseForwardRow(Buffer.from('shop-a\t0\t17')), /bad forwarded message line/);
  });

  it('hand over the log\'s forwarded lines as they were written, only those kept, and read them back by line', async () => {
    const d = loadConfig({ flags: { sources: { dev: 'demo' }, destinations: [hook('http://127.0.0.1:1')] } }).destinations[0]!;
    const preparer = new RequestPreparer({ sources: { dev: 'demo' }, events: {}, forward: [d] });
    const payloads = [0, 1].map((f) => {
      const batch = [0, 1, 2].map((k) => ({ type: 'track', event: k === 1 ? 'Say "hi"' : 'Viewed', anonymousId: `a${f}`, properties: { n: k, text: 'tab\there' }, messageId: `h-${f}-${k}` }));
      const r = preparer.prepare({ body: jsonBytes({ batch }), basicKey: 'dev', pathType: 'batch', clientIp: '127.0.0.1', receivedAt: T0 + f });
      assert.ok(r.ok);
      return framePayload(Buffer.from(r.value.frame));
    });
    const all = await forwardedOf(payloads);
    const { body, messages } = await backlogOf(payloads, (m) => !m.json.includes('"h-0-2"'));
    const kept = all.filter((m) => !m.json.includes('"h-0-2"'));
    assert.equal(messages, 5);
    assert.equal(body.toString(), kept.map((m) => `${formatForwardRow(m).toString()}\n`).join(''), 'the backlog\'s layout, byte for byte');
    const back = await backlogEntries(Buffer.concat([body, Buffer.from('\n')]));
    assert.deepEqual(back.map((m) => m && JSON.parse(m.json.toString()).messageId), ['h-0-0', 'h-0-1', 'h-1-0', 'h-1-1', 'h-1-2', undefined], 'an emptied line is a hole');
    assert.deepEqual(back.map((m) => m?.name), ['Viewed', 'Say "hi"', 'Viewed', 'Say "hi"', 'Viewed', undefined]);
  });

  it('log a message whole only when some destination wants it', () => {
    const logged = (forward: object[]) => {
      const preparer = new RequestPreparer({ sources: { 'key-a': 'shop-a', 'key-b': 'shop-b' }, events: {}, forward: loadConfig({ flags: { sources: { 'key-a': 'shop-a', 'key-b': 'shop-b' }, destinations: forward.map((d, i) => ({ name: `d${i}`, type: 'webhook', url: 'http://127.0.0.1:1', secret: SECRET, ...d })) } }).destinations });
      const names: string[] = [];
      for (const key of ['key-a', 'key-b']) {
        const body = Buffer.from(JSON.stringify({ batch: [{ type: 'track', event: 'Order Completed', anonymousId: 'a1' }, { type: 'track', event: 'Product Viewed', anonymousId: 'a1' }, { type: 'identify', userId: 'u1' }] }));
        const r = preparer.prepare({ body, basicKey: key, pathType: 'batch', clientIp: '127.0.0.1', receivedAt: T0 });
        assert.ok(r.ok);
        for (const rec of decodeRecords(framePayload(Buffer.from(r.value.frame)))) for (const [kind, , line] of rec.r) if (kind === 'm') names.push(line.split('\t').slice(0, 4).join(' '));
      }
      return names;
    };
    assert.deepEqual(logged([]), []);
    assert.equal(logged([{}]).length, 6, 'a destination without filters takes every message');
    assert.deepEqual(logged([{ tenants: ['shop-b'], events: ['Order *'] }]), [`shop-b 0 ${T0} "Order Completed"`]);
    assert.deepEqual(logged([{ tenants: ['shop-b'], events: ['Order *'] }, { events: ['identify'] }]), [`shop-a 0 ${T0} "identify"`, `shop-b 0 ${T0} "Order Completed"`, `shop-b 0 ${T0} "identify"`]);
  });

  it('refuse a destination that cannot work at start-up, naming it', () => {
    const flags = (d: object) => ({ flags: { destinations: [d] } });
    const cases: Array<[object, RegExp]> = [
      [{ name: 'crm', type: 'carrier-pigeon', url: 'http://x' }, /destinations\.crm\.type/],
      [{ name: 'crm', type: 'webhook', url: 'not a url', secret: SECRET }, /destinations\.crm\.url/],
      [{ name: 'crm', type: 'webhook', url: 'http://x' }, /destinations\.crm\.secret/],
      [{ name: 'relay', type: 'segment', url: 'ftp://x', writeKey: 'k' }, /destinations\.relay\.url/],
      [{ name: 'wh', type: 'postgres', url: 'postgres://tl:a/b#c@db:5432/lake' }, /destinations\.wh\.url.*percent-encoded/],
      [hook('http://x', { headers: { 'Content-Length': '10' } }), /destinations\.crm\.headers.*Content-Length is the sender's own/],
      [hook('http://x', { headers: { 'X-Tracklake-Signature': 't=1' } }), /destinations\.crm\.headers/],
      [hook('http://x', { headers: { 'X-Api-Key': 'a\r\nX-Evil: 1' } }), /destinations\.crm\.headers.*one line/],
    ];
    for (const [d, setting] of cases) {
      assert.throws(() => loadConfig(flags(d)), (e: Error) => e instanceof ConfigError && setting.test(e.message), JSON.stringify(d));
    }
    assert.throws(() => loadConfig({ flags: { destinations: [hook('http://x'), hook('http://y')] } }), /two destinations are named "crm"/);
  });

  it('take in a destination\'s tenants every tenant id a source may send to, and only those', () => {
    const long = `acme.eu-${'x'.repeat(120)}`;
    const c = loadConfig({ flags: { sources: { k1: long, k2: 'beta.prod' }, destinations: [hook('http://x', { tenants: [long, 'beta.prod'] })] } });
    assert.deepEqual(c.destinations[0]!.tenants, [long, 'beta.prod']);
    assert.throws(() => loadConfig({ flags: { sources: { k1: 'beta.prod' }, destinations: [hook('http://x', { tenants: ['gamma'] })] } }), /destinations\.crm\.tenants.*no source sends to tenant "gamma"/);
  });

  it('release a removed destination\'s hold at the next start', async () => {
    const dir = tempDir('forward-removed');
    const down = await receiver(() => ({ status: 503 }));
    const first = await startCollector({ destinations: [hook(down.url)], flushIntervalMs: 200, maxSegmentBytes: 4096 }, { dir });
    await sendTagged(first.url, { tag: 'removed', batches: 20 });
    await first.close();
    assert.ok(readdirSync(path.join(dir, 'wal')).some((f) => f.startsWith('shipped-')), 'shipped segments kept for the destination');
    const second = await startCollector({ flushIntervalMs: 200 }, { dir });
    closers.push(() => second.close());
    assert.ok(!readdirSync(path.join(dir, 'wal')).some((f) => f.startsWith('shipped-')), 'released once it is no longer configured');
    assert.equal(readdirSync(path.join(dir, 'state', 'forward')).length, 0);
  });

  it('make Postgres rows from the tracking rows the collector logged, as mapping the message again makes them', async () => {
    const preparer = new RequestPreparer({ sources: { dev: 'demo' }, events: {}, forward: loadConfig({ flags: { sources: { dev: 'demo' }, destinations: [{ name: 'w', type: 'postgres', url: 'postgres://x@127.0.0.1/db' }] } }).destinations });
    const tricky = 'a "quoted", comma\nline\\back\ttab';
    const batch = [
      { type: 'track', event: 'Product Viewed', anonymousId: 'a1', properties: { product_id: tricky, merchant_id: 'm,1', price: 19.99 }, context: { page: { url: `https://shop.example/p?q=${tricky}`, referrer: 'https://search.example/' }, userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36' } },
      { type: 'page', anonymousId: 'a2', userId: 'u2', name: 'Home', properties: { url: 'https://shop.example/' } },
      { type: 'track', event: 'Product List Viewed', anonymousId: 'a3', properties: { products: [{ product_id: 'p1' }, { product_id: 'p2' }] } },
      { type: 'identify', userId: 'u3', traits: { email: 'x@example.com' } },
      { type: 'track', event: 'Odd', messageId: 'id "with" \\ and\ttab', anonymousId: 'a4', properties: { 2: 'two', 1: 'one', nested: { '"k"': [tricky, null] } }, context: { traits: { note: tricky } } },
    ];
    const r = preparer.prepare({ body: Buffer.from(JSON.stringify({ batch })), basicKey: 'dev', pathType: 'batch', clientIp: '10.0.0.1', receivedAt: T0 });
    assert.ok(r.ok);
    const forwarded = await forwardedOf([framePayload(Buffer.from(r.value.frame))]);
    assert.equal(forwarded.length, 5);
    assert.equal(forwarded[3]!.tracks, undefined, 'an identify call makes no tracking row');
    const mapper = rowMapper({});
    for (const f of forwarded) {
      const json = f.json.toString('utf8');
      const mapped = mapper.rows(f.tenant, json).map((row) => `${row}\n`).join('');
      assert.equal(encodeMessages(mapper, f.tenant, [f]).toString('utf8'), mapped, json);
      // A message with tracking rows is not mapped again: a mapper that refuses to map changes nothing.
      const refusing = { rows: (): string[] => assert.fail(`mapped again: ${json}`) };
      if (f.tracks) assert.equal(encodeMessages(refusing, f.tenant, [f]).toString('utf8'), mapped, json);
    }
    assert.ok((forwarded[0]!.tracks?.[0]?.toString() ?? '').includes('""quoted""'), 'the tricky value reached the CSV quoted');
    assert.equal(copyFieldsOfCsv(Buffer.from('1,"a ""b"", c",,\\x')), undefined, 'not the tracking columns: mapped instead');
    const values = [1, 'a "q", c', 'x\ny', 'b\\s', 't\tt', null, ...Array(13).fill(null), ''];
    assert.equal(copyFieldsOfCsv(Buffer.from(csvLine(values))), ['1', 'a "q", c', 'x\\ny', 'b\\\\s', 't\\tt', ...Array(15).fill('\\N')].join('\t'));
  });

  it('write each message once into Postgres, as the tracking files have it, through an outage, a restart and a refused row', async () => {
    const url = await database('once');
    const c = await collector([{ name: 'warehouse', type: 'postgres', url, retryBaseMs: 50, retryMaxMs: 300, maxAttempts: 100, timeoutMs: 2000 }]);
    const first = await sendTagged(c.url, { tag: 'pg1', batches: 3 });
    await until(async () => (await pgRows(url, 'SELECT count(*)::int AS n FROM tracklake.tracks_demo'))[0]?.n === first.acked.length, 'the first rows in Postgres');
    await postgres!.stop();
    const second = await sendTagged(c.url, { tag: 'pg2', batches: 3 });
    assert.ok(second.statuses.every((x) => x === 200), 'ingest goes on while Postgres is down');
    await new Promise((r) => setTimeout(r, 500));
    await postgres!.start();
    // A NUL in a property: jsonb refuses it (22P05); its neighbours go in, it goes to the dead letters.
    const refused = { type: 'track', event: 'view', anonymousId: 'a', messageId: 'nul-1', properties: { note: 'a\u0000b', product_id: 'p' } };
    const ok = { type: 'track', event: 'view', anonymousId: 'a', messageId: 'ok-1', properties: { product_id: 'p' } };
    assert.equal((await post(`${c.url}/v1/batch`, { batch: [ok, refused] })).status, 200);
    const all = [...first.acked, ...second.acked, 'ok-1'];
    await until(async () => (await pgRows(url, 'SELECT count(*)::int AS n FROM tracklake.tracks_demo'))[0]?.n === all.length, 'every row in Postgres after the restart', 30_000);
    const rows = await pgRows(url, 'SELECT * FROM tracklake.tracks_demo ORDER BY message_id');
    assert.deepEqual(rows.map((r) => r.message_id), [...all].sort(), 'each message once');
    await until(async () => (await c.store.list('deadletter/warehouse/')).length === 1, 'the refused row dead-lettered');
    // The columns are the tracking file's.
    await c.node.shipper.flush();
    const files = new Map((await readRows(c.store)).map((r) => [r.correlationid, r]));
    const row = rows.find((r) => r.message_id === first.acked[0])!;
    const file = files.get(first.acked[0]!)!;
    for (const col of ['time', 'tenantid', 'deviceid', 'productid', 'event', 'ip', 'devicetype', 'source']) assert.equal(String(row[col] ?? ''), file[col], col);
    assert.equal(row.type, 'track');
    assert.equal(row.properties.correlation_id, first.acked[0]);
    assert.equal(row.context.ip, '127.0.0.1');
  });

  it('give two long tenant ids alike in their first 56 characters a Postgres table each, and move and erase what an earlier version mixed', async () => {
    const url = await database('long');
    const d = loadConfig({ flags: { destinations: [{ name: 'w', type: 'postgres', url }] } }).destinations[0] as Parameters<typeof postgresSender>[0];
    const [a, b] = ['eu', 'us'].map((r) => `${'merchant-platform-'.repeat(4)}${r}`) as [string, string];
    // What an earlier version left: both tenants' rows in the one table Postgres cut their names to.
    const cut = cutTableName(d, a)!;
    assert.equal(cut, cutTableName(d, b));
    const old = (tenant: string, id: string, user: string) => `INSERT INTO ${cut} (tenantid, accountid, message_id, "row", type) VALUES ('${tenant}', '${user}', '${id}', 0, 'track')`;
    await pgRows(url, `CREATE SCHEMA tracklake; ${MIGRATIONS[0]!.sql.replaceAll('{{table}}', cut)}; ${old(a, 'old-eu', 'ann')}; ${old(b, 'old-us', 'bob')}; ${old(b, 'old-us-2', 'ann')}`);

    const sender = postgresSender(d, {});
    closers.push(() => sender.close());
    const msg = (tenant: string) => ({ tenant, json: jsonBytes({ type: 'track', event: 'view', anonymousId: 'x', messageId: `m-${tenant.slice(-2)}`, receivedAt: '2026-03-15T12:00:00.000Z' }) });
    assert.deepEqual(await sender.send([msg(a)]), { ok: true });
    const tables = await pgRows(url, `SELECT tablename FROM pg_tables WHERE schemaname = 'tracklake' AND tablename LIKE 'tracks_%' AND length(tablename) = 63 AND tablename ~ '_[0-9a-f]{16}$'`);
    assert.equal(tables.length, 1);
    assert.ok(tables[0]!.tablename.startsWith(`tracks_${a.slice(0, 39)}_`), tables[0]!.tablename);
    const idsIn = async (table: string) => (await pgRows(url, `SELECT message_id FROM ${table} ORDER BY message_id`)).map((r) => r.message_id as string);
    assert.deepEqual(await idsIn(tableName(d, a)), ['m-eu', 'old-eu'], 'its own rows, the earlier ones moved in');
    assert.deepEqual(await idsIn(cut), ['old-us', 'old-us-2'], 'the other tenant\'s rows stay where they were');
    assert.deepEqual(await sender.send([msg(b)]), { ok: true });
    assert.notEqual(tableName(d, a), tableName(d, b));
    assert.deepEqual(await idsIn(tableName(d, b)), ['m-us', 'old-us', 'old-us-2']);
    assert.deepEqual(await idsIn(cut), []);

    // An erasure reaches rows still under the cut name, and only the tenant's own.
    await pgRows(url, `${old(a, 'late-eu', 'ann')}; ${old(b, 'late-us', 'ann')}`);
    const subjects = new Map([[a, { users: new Set(['ann']), anons: new Set<string>(), linked: new Set<string>() }]]);
    const removed = await forwardedCopies([d], new LocalStore(tempDir('long-store')), silent).erase(subjects, () => false);
    assert.equal(removed.postgres, 2, 'the old row moved to its table, and the one under the cut name');
    assert.deepEqual(await idsIn(cut), ['late-us']);
  });

  it('add nothing to Postgres when a batch is sent again, and only the missing rows of one partly there', async () => {
    const url = await database('again');
    const d = loadConfig({ flags: { destinations: [{ name: 'w', type: 'postgres', url }] } }).destinations[0] as Parameters<typeof postgresSender>[0];
    const sender = postgresSender(d, {});
    closers.push(() => sender.close());
    const msg = (i: number) => ({ tenant: 'demo', json: jsonBytes({ type: 'track', event: 'view', anonymousId: 'a', messageId: `again-${i}`, receivedAt: '2026-03-15T12:00:00.000Z', properties: { product_id: `p${i}` } }) });
    const first = [0, 1, 2].map(msg);
    assert.deepEqual(await sender.send(first), { ok: true });
    assert.deepEqual(await sender.send(first), { ok: true });
    assert.deepEqual(await sender.send([1, 2, 3, 4].map(msg)), { ok: true });
    const rows = await pgRows(url, 'SELECT message_id, productid FROM tracklake.tracks_demo ORDER BY message_id');
    assert.deepEqual(rows.map((r) => [r.message_id, r.productid]), [0, 1, 2, 3, 4].map((i) => [`again-${i}`, `p${i}`]));
  });

  it('make a tenant\'s table again when it is dropped under a running sender: the next attempt delivers', async () => {
    const url = await database('dropped');
    const d = loadConfig({ flags: { destinations: [{ name: 'w', type: 'postgres', url }] } }).destinations[0] as Parameters<typeof postgresSender>[0];
    const sender = postgresSender(d, {});
    closers.push(() => sender.close());
    const msg = (i: number) => ({ tenant: 'demo', json: jsonBytes({ type: 'track', event: 'view', anonymousId: 'a', messageId: `dropped-${i}`, receivedAt: '2026-03-15T12:00:00.000Z', properties: { product_id: `p${i}` } }) });
    assert.deepEqual(await sender.send([msg(0)]), { ok: true });
    await pgRows(url, 'DROP TABLE tracklake.tracks_demo'); // an operator starting the table over
    const failed = await sender.send([msg(1)]);
    assert.equal(failed.ok, false);
    assert.ok(!failed.ok && failed.retry, `retried, not dead-lettered: ${JSON.stringify(failed)}`);
    assert.deepEqual(await sender.send([msg(1)]), { ok: true });
    assert.deepEqual((await pgRows(url, 'SELECT message_id FROM tracklake.tracks_demo')).map((r) => r.message_id), ['dropped-1']);
  });

  it('replay dead letters once the receiver takes them, leave a suppressed person\'s alone, and show every count in status', async () => {
    let refuse = true;
    const r = await receiver(() => (refuse ? { status: 422 } : { status: 200 }));
    const c = await collector([hook(r.url)]);
    const sent = await sendTagged(c.url, { tag: 'replay', batches: 1 });
    assert.equal((await post(`${c.url}/v1/track`, { type: 'track', event: 'Product Viewed', userId: 'quiet', messageId: 'quiet-1' })).status, 200);
    await until(async () => (await c.store.list('deadletter/crm/')).length === 11, 'eleven refused messages dead-lettered');
    // The count is written to the cursor file just after each dead-letter file is stored.
    await until(async () => (await destinationsStatus(c.config))[0]?.deadLettered === 11, 'status counts the eleven');
    const status = await destinationsStatus(c.config);
    assert.equal(status[0]!.deadLettered, 11);
    assert.equal(status[0]!.deadLetterFiles, 11);
    assert.match(status[0]!.failing!.error, /answered 422/);
    // The person behind one of them asks not to be tracked before the replay.
    const secret = (await c.store.get('privacy/secret'))!.toString().trim();
    (c.clock as ManualClock).advance(1000);
    await new Regulations(c.store, secret, c.clock).create('demo', { regulationType: 'SUPPRESS', subjectType: 'USER_ID', subjectIds: ['quiet'] });
    refuse = false;
    const day = new Date(c.clock.now()).toISOString().slice(0, 10);
    // A dead letter of forty days before, in another month's folder: a replay of the day leaves it.
    const earlier = addDays(day, -40);
    const oldKey = `deadletter/crm/${dayPath(earlier)}/old.jsonl`;
    await c.store.put(oldKey, deadLetterLines([{ tenant: 'demo', json: jsonBytes({ type: 'track', event: 'Old', anonymousId: 'o', messageId: 'old-1' }) }], 'answered 422', 1, T0));
    const report = await destinationsReplay({ ...c.config, logLevel: 'silent' }, 'crm', { from: day, to: day });
    assert.deepEqual(report, { files: 11, sent: 10, failed: 0, leftOut: 1 });
    assert.deepEqual(ids(r.delivered).sort(), [...sent.acked].sort());
    const left = await c.store.list('deadletter/crm/');
    assert.deepEqual(left.map((o) => o.key === oldKey), [true, false]);
    assert.equal(JSON.parse((await c.store.get(left[1]!.key))!.toString()).message.messageId, 'quiet-1', 'left in its file, unchanged');
    // A range across the months takes it too.
    assert.deepEqual(await destinationsReplay({ ...c.config, logLevel: 'silent' }, 'crm', { from: earlier, to: day }), { files: 2, sent: 1, failed: 0, leftOut: 1 });
    assert.equal(ids(r.delivered).at(-1), 'old-1');
    await assert.rejects(destinationsReplay(c.config, 'nope', { from: day, to: day }), /no destination named "nope"/);
  });

  it('write back after a replay only the dead letters an erasure meanwhile left, never the erased ones', async () => {
    const store = new LocalStore(path.join(tempDir(), 'bucket'));
    const key = 'deadletter/crm/2026/03/15/n1-000000000001-0-0.jsonl';
    const letter = (id: string, user: string) => deadLetterLines([{ tenant: 'demo', json: jsonBytes({ type: 'track', event: 'view', userId: user, messageId: id }) }], 'answered 500', 3, T0);
    await store.put(key, letter('a-1', 'ann') + letter('g-1', 'gone') + letter('g-2', 'gone'));
    // The receiver still fails; while the replay waits for its answer, an erasure takes "gone"'s lines out.
    const r = await receiver(() => ({ status: 500, delayMs: 300 }));
    const d = loadConfig({ flags: { sources: { dev: 'demo' }, destinations: [hook(r.url, { maxAttempts: 1 })] } }).destinations[0]!;
    const sender = senderFor(d, new ManualClock(T0), {});
    closers.push(() => sender.close());
    const leftOut = (l: { json: Buffer }) => JSON.parse(l.json.toString()).messageId === 'g-2'; // suppressed: held, not sent
    const replay = replayDeadLetters(store, d, sender, { from: '2026-03-15', to: '2026-03-15' }, silent, () => T0 + 1000, leftOut);
    await until(() => r.requests.length === 1, 'the replay\'s request waiting for its answer');
    await store.put(key, letter('a-1', 'ann'));
    const report = await replay;
    assert.equal(report.failed, 1);
    const left = (await store.get(key))!.toString().trim().split('\n').map((l) => JSON.parse(l).message.messageId);
    assert.deepEqual(left, ['a-1'], 'the erased messages stay erased, sent-and-failed and held alike');
  });

  it('leave a backlog object its destination delivered and deleted while an erasure filtered it', async () => {
    const local = new LocalStore(path.join(tempDir(), 'bucket'));
    const key = 'destinations/crm/backlog/n1-000000000003.jsonl';
    const line = (id: string, user: string) => formatForwardRow({ tenant: 'demo', blocked: false, receivedAt: T0, name: 'view', json: jsonBytes({ type: 'track', event: 'view', userId: user, messageId: id }) }).toString();
    await local.put(key, `${line('a-1', 'ann')}\n${line('g-1', 'gone')}\n`);
    // The destination finishes the object and deletes it just after the erasure read it.
    const store: typeof local = Object.assign(Object.create(local) as typeof local, {
      get: async (k: string) => {
        const body = await local.get(k);
        if (k === key) await local.delete(key);
        return body;
      },
    });
    const subjects = new Map([['demo', { users: new Set(['gone']), anons: new Set<string>(), linked: new Set<string>() }]]);
    const removed = await forwardedCopies([], store, silent).erase(subjects, (_t, account) => account === 'gone');
    assert.equal(removed.forwardBacklog, 0);
    assert.equal(await local.get(key), undefined, 'not written back: it would be delivered again');
  });

  it('deliver every message at least once through a kill -9 of the collector mid-delivery', async () => {
    const r = await receiver(() => ({ status: 200, delayMs: 20 }));
    const dir = tempDir('forward-kill');
    const config = path.join(dir, 'config.json');
    const url = await database('killed');
    writeFileSync(config, JSON.stringify({ destinations: [hook(r.url, { batchCount: 5 }), { name: 'warehouse', type: 'postgres', url, batchCount: 5 }] }));
    const args = ['--config', config, '--flush-interval-ms', '200'];
    const a = await spawnCollector(dir, args);
    closers.push(async () => void a.proc.kill('SIGKILL'));
    const sent = await sendTagged(a.url, { tag: 'kill', batches: 30 });
    await until(() => r.delivered.length > 20, 'delivery under way');
    a.proc.kill('SIGKILL');
    await a.exited;
    assert.ok(r.delivered.length < sent.acked.length, 'killed before everything was delivered');
    const b = await spawnCollector(dir, args);
    closers.push(async () => void b.proc.kill('SIGKILL'));
    await until(() => new Set(ids(r.delivered)).size >= sent.acked.length, 'every acknowledged message delivered after the restart', 30_000);
    assert.deepEqual(firstSeen(ids(r.delivered)), sent.acked);
    await until(async () => (await pgRows(url, 'SELECT count(*)::int AS n FROM tracklake.tracks_demo'))[0]?.n === sent.acked.length, 'every message in Postgres', 30_000);
    const inPg = await pgRows(url, 'SELECT message_id FROM tracklake.tracks_demo');
    assert.equal(new Set(inPg.map((x) => x.message_id)).size, sent.acked.length, 'Postgres: exactly once');
    const store = new LocalStore(path.join(dir, 'data'));
    assert.equal((await store.list('deadletter/')).length, 0);
  });
});


describe('privacy reaches the destinations', () => {
  const PRIVACY = 'p'.repeat(40);
  const msg = (userId: string | undefined, messageId: string, extra: object = {}) => ({ type: 'track', event: 'Product Viewed', ...(userId ? { userId } : {}), anonymousId: `dev-${userId ?? 'anon'}`, messageId, properties: { product_id: 'p1' }, ...extra });

  it('leave out of a destination what a deletion or suppression filed after the acknowledgement names, even a batch being retried', async () => {
    let down = true;
    const r = await receiver(() => (down ? { status: 503 } : { status: 200 }));
    // Nothing ships before the regulations are filed (the last check compares the tracking files).
    // Up to a hundred attempts at most half a second apart: the batches keep failing until the regulations are
    // filed, however slowly a loaded machine files them (at 100 ms apart, 7 s would dead-letter them all).
    const c = await collector([hook(r.url, { batchCount: 4, maxAttempts: 100, retryBaseMs: 50, retryMaxMs: 500 })], { privacySecret: PRIVACY, flushIntervalMs: 3_600_000 });
    const batch = [msg('erase-me', 'e-1'), msg('keep', 'k-1'), { type: 'group', userId: 'erase-me', groupId: 'g', messageId: 'e-group' }, msg('suppress-me', 's-1'), msg('keep', 'k-2'), msg(undefined, 'a-1', { anonymousId: 'anon-gone' }), msg('keep', 'k-3')];
    assert.equal((await post(`${c.url}/v1/batch`, { batch })).status, 200);
    await until(() => r.requests.length >= 2, 'the first batch failing and retried');
    const clock = c.clock as ManualClock;
    clock.advance(1000);
    const regs = new Regulations(c.store, PRIVACY, clock);
    await regs.create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['erase-me'] });
    await regs.create('demo', { regulationType: 'DELETE', subjectType: 'ANONYMOUS_ID', subjectIds: ['anon-gone'] });
    await regs.create('demo', { regulationType: 'SUPPRESS', subjectType: 'USER_ID', subjectIds: ['suppress-me'] });
    await c.node.reloadPrivacy();
    down = false;
    await until(() => ids(r.delivered).includes('k-3'), 'the rest delivered', 20_000, async () => ({ requests: r.requests.map((q) => ids(q.body.batch)), delivered: ids(r.delivered), status: await destinationsStatus(c.config), metrics: (await (await fetch(`${c.url}/metrics`)).text()).split('\n').filter((l) => l.startsWith('tracklake_forward')) }));
    assert.deepEqual(firstSeen(ids(r.delivered)), ['k-1', 'k-2', 'k-3'], 'the subjects\' messages, the one in the failing batch too, never reached the receiver');
    assert.match(await (await fetch(`${c.url}/metrics`)).text(), /tracklake_forward_left_out_total\{destination="crm"\} 4/);
    // And the tracking files agree: nothing of theirs was shipped either.
    await c.node.shipper.flush();
    assert.deepEqual((await readRows(c.store)).map((row) => row.accountid), ['keep', 'keep', 'keep']);
  });

  it('erase a person from the backlog and dead letters in the bucket and from a Postgres destination\'s tables', async () => {
    const url = await database('erased');
    const refuse = new Set(['erase-me', 'keep-refused']);
    const r = await receiver((req) => (req.body.batch.some((m) => refuse.has(m.userId)) ? { status: 400 } : { status: 200 }));
    const c = await collector([hook(r.url, { batchCount: 1 }), { name: 'warehouse', type: 'postgres', url, batchCount: 10 }], { privacySecret: PRIVACY });
    const batch = [msg('erase-me', 'e-1'), { type: 'identify', userId: 'erase-me', anonymousId: 'dev-erase-me', traits: { email: 'e@example.com' }, messageId: 'e-identify' }, msg('keep', 'k-1'), msg('keep-refused', 'k-refused'), msg(undefined, 'a-1', { anonymousId: 'anon-gone' })];
    assert.equal((await post(`${c.url}/v1/batch`, { batch })).status, 200);
    const pgIds = async () => (await pgRows(url, 'SELECT message_id FROM tracklake.tracks_demo ORDER BY message_id')).map((x) => x.message_id as string);
    await until(async () => (await pgIds()).length === batch.length, 'every message in Postgres');
    await until(async () => (await c.node.metrics.forwardDeadLettered.get()).values.find((v) => v.labels.destination === 'crm')?.value === 3, 'three messages dead-lettered');
    // A backlog the bucket still holds for a destination, written as a collector hands one over.
    const line = (m: Record<string, unknown>) => `demo\t0\t${T0}\t${JSON.stringify(m.type === 'track' ? m.event : m.type)}\t${JSON.stringify(m)}`;
    const backlogKey = 'destinations/crm/backlog/node-a-000000000007.jsonl';
    await c.store.put(backlogKey, `${batch.map((m) => line(m as Record<string, unknown>)).join('\n')}\n`);
    await c.node.shipper.flush();
    await c.close();

    const clock = c.clock as ManualClock;
    clock.advance(1000);
    const regs = new Regulations(c.store, PRIVACY, clock);
    await regs.create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['erase-me'] });
    await regs.create('demo', { regulationType: 'DELETE', subjectType: 'ANONYMOUS_ID', subjectIds: ['anon-gone'] });
    const config = loadConfig({ flags: { storage: c.config.storage, sources: { dev: 'demo' }, privacySecret: PRIVACY, destinations: c.config.destinations } });
    const out = await captureStdout(() => regulationsRun(config, {}, silent));
    const run = JSON.parse(out) as { report: { rowsRemoved: Record<string, number> } };
    assert.deepEqual(await pgIds(), ['k-1', 'k-refused'], 'Postgres: the subjects\' rows deleted, the identify and the anonymous one with them');
    const letters = (await Promise.all((await c.store.list('deadletter/crm/')).map(async (o) => (await c.store.get(o.key))!.toString()))).join('');
    assert.deepEqual(letters.split('\n').filter(Boolean).map((l) => JSON.parse(l).message.messageId), ['k-refused'], 'dead letters: only the other person\'s');
    const backlog = (await c.store.get(backlogKey))!.toString().split('\n');
    assert.deepEqual(backlog.map((l) => (l === '' ? '' : JSON.parse(l.split('\t')[4]!).messageId)), ['', '', 'k-1', 'k-refused', '', ''], 'backlog: their lines emptied, the line count kept');
    assert.deepEqual({ pg: run.report.rowsRemoved.postgres, letters: run.report.rowsRemoved.deadLetters, backlog: run.report.rowsRemoved.forwardBacklog }, { pg: 3, letters: 2, backlog: 3 });
  });

  it('erase the lake and what is derived first: a Postgres destination that cannot be reached fails the run last', async () => {
    const c = await startCollector({ privacySecret: PRIVACY });
    assert.equal((await post(`${c.url}/v1/batch`, { batch: [msg('erase-me', 'e-1'), msg('keep', 'k-1')] })).status, 200);
    await c.close(); // ships everything
    (c.clock as ManualClock).advance(1000);
    const regs = new Regulations(c.store, PRIVACY, c.clock);
    const reg = await regs.create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['erase-me'] });
    const down = { name: 'warehouse', type: 'postgres', url: 'postgres://tracklake@127.0.0.1:1/gone', timeoutMs: 500 };
    const config = loadConfig({ flags: { storage: c.config.storage, sources: { dev: 'demo' }, privacySecret: PRIVACY, destinations: [down] } });
    await assert.rejects(captureStdout(() => regulationsRun(config, {}, silent)), /ECONNREFUSED|connect/);
    assert.deepEqual((await readRows(c.store)).map((row) => row.accountid), ['keep'], 'the tracking files are erased already');
    const after = (await regs.list()).find((r) => r.id === reg.id)!;
    assert.equal(after.status, 'RUNNING', 'not finished while the destination\'s rows remain');
    assert.match(after.lastError ?? '', /ECONNREFUSED|connect/);
  });
});

async function captureStdout(f: () => Promise<unknown>): Promise<string> {
  const write = process.stdout.write;
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof process.stdout.write;
  try {
    await f();
  } finally {
    process.stdout.write = write;
  }
  return out;
}
