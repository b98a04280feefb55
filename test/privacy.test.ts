/**
 * Privacy: keeping less at the door, suppression on every node on a bucket, the shipper's filter for what
 * was logged before, and erasure of every kind of file tracklake writes, checked row by row.
 */
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { planReplay } from '../src/cli/plan.js';
import { loadConfig } from '../src/config/config.js';
import { runAggregates } from '../src/jobs/aggregates/job.js';
import { metricSet } from '../src/jobs/aggregates/metrics.js';
import { runSessions } from '../src/jobs/sessions/job.js';
import { LAKE } from '../src/lake/layout.js';
import { ManualClock } from '../src/lib/clock.js';
import { runErasure } from '../src/privacy/erase.js';
import { parseRegulationRequest, Regulations } from '../src/privacy/regulations.js';
import { loadPrivacySecret } from '../src/privacy/secret.js';
import { PrivacyWatcher } from '../src/privacy/watch.js';
import { truncateIp } from '../src/privacy/reduce.js';
import { buildReadServer } from '../src/query/server.js';
import { ReadCache } from '../src/query/cache.js';
import { createToken } from '../src/query/tokens.js';
import { LocalStore } from '../src/storage/local.js';
import type { ObjectStore } from '../src/storage/store.js';
import { flushed, post, readRows, silent, startCollector, storeOver, T0, tempDir, track } from './helpers.js';

const day = (n: number) => new Date(T0 - n * 86_400_000 - 3_600_000).toISOString();

async function allLines(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const o of await store.list(prefix)) {
    if (o.key.includes('/_state/')) continue;
    out.push(...(await store.get(o.key))!.toString('utf8').split('\n').slice(o.key.endsWith('.csv') ? 1 : 0).filter((l) => l !== ''));
  }
  return out.sort();
}

describe('keeping less', () => {
  it('truncates IPv4 to /24 and IPv6 to /48', () => {
    assert.equal(truncateIp('203.0.113.77'), '203.0.113.0');
    assert.equal(truncateIp('2001:db8:85a3:8d3:1319:8a2e:370:7348'), '2001:db8:85a3::');
    assert.equal(truncateIp('2001:db8::1'), '2001:db8:0::');
    assert.equal(truncateIp('::ffff:198.51.100.9'), '198.51.100.0');
    assert.equal(truncateIp('203.0.113.0'), '203.0.113.0', 'idempotent');
  });

  it('never stores the full address or position: truncate, hash, drop, geoPrecision, per source', async () => {
    const c = await startCollector({
      sources: { web: 'demo', app: 'demo', hashed: 'demo' },
      ipMode: 'truncate',
      geoPrecision: 2,
      sourceRetention: { app: { ipMode: 'drop' }, hashed: { ipMode: 'hash' } },
      privacySecret: 'x'.repeat(40),
      plans: {},
    });
    try {
      const ctx = { ip: '203.0.113.77', location: { latitude: 48.856613, longitude: 2.352222 } };
      for (const key of ['web', 'app', 'hashed']) {
        const r = await post(`${c.url}/v1/track`, track({ userId: `u-${key}`, context: ctx }), { authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` });
        assert.equal(r.status, 200);
      }
      await post(`${c.url}/v1/track`, track({ userId: 'u-hashed2', context: { ip: '203.0.113.77' } }), { authorization: `Basic ${Buffer.from('hashed:').toString('base64')}` });
      await flushed(c);
      const rows = await readRows(c.store);
      const by = (u: string) => rows.find((r) => r.accountid === u)!;
      assert.equal(by('u-web').ip, '203.0.113.0');
      assert.equal(by('u-web').lat, '48.86');
      assert.equal(by('u-web').long, '2.35');
      assert.equal(by('u-app').ip, '');
      assert.match(by('u-hashed').ip, /^h:[0-9a-f]{16}$/);
      assert.equal(by('u-hashed').ip, by('u-hashed2').ip, 'stable within the day');
      for (const f of await c.store.list('')) assert.ok(!(await c.store.get(f.key))!.toString('utf8').includes('203.0.113.77'), `${f.key} holds the full address`);
      const log = (await c.node.wal.read(0).catch(() => [])) as Buffer[];
      for (const p of log) assert.ok(!p.toString('latin1').includes('203.0.113.77'));
    } finally {
      await c.close();
    }
  });
});

describe('suppression at the door, on every node of a bucket', () => {
  it('a suppression filed once is applied by a second node; acknowledged, stored nowhere, counted; unsuppress lifts it', async () => {
    const dir = tempDir();
    const plan = path.join(dir, 'plan.yaml');
    await (await import('node:fs/promises')).writeFile(plan, 'version: 1\nevents: []\nenforcement:\n  Unplanned-Event: block\n');
    const a = await startCollector({ storage: path.join(dir, 'data'), walDir: path.join(dir, 'wal-a'), privacySecret: 's'.repeat(40) });
    const b = await startCollector({ storage: path.join(dir, 'data'), walDir: path.join(dir, 'wal-b'), privacySecret: 's'.repeat(40), plans: { demo: plan } });
    try {
      const regs = new Regulations(a.store, 's'.repeat(40), a.clock);
      const req = parseRegulationRequest({ regulationType: 'SUPPRESS', subjectType: 'USER_ID', subjectIds: ['gone'] });
      assert.ok(req.ok);
      await regs.create('demo', req.value);
      await b.node.reloadPrivacy(); // what the 30 s refresh (or SIGHUP) does
      const batch = { batch: [track({ userId: 'gone', event: 'Secret Clicked' }), { type: 'identify', userId: 'gone', anonymousId: 'dev-gone' }, track({ userId: 'kept', event: 'Kept Clicked' })] };
      const r = await post(`${b.url}/v1/batch`, batch);
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, { success: true });
      await flushed(b);
      const everything = await allLines(b.store, '');
      assert.ok(everything.every((l) => !l.includes('gone')), 'nothing of the suppressed subject anywhere');
      assert.ok(everything.some((l) => l.includes('kept')));
      const metrics = await b.node.metrics.registry.metrics();
      assert.match(metrics, /tracklake_events_suppressed_total\{tenant="demo"\} 2/);

      (a.clock as ManualClock).advance(1);
      await regs.create('demo', { regulationType: 'UNSUPPRESS', subjectType: 'USER_ID', subjectIds: ['gone'] });
      await b.node.reloadPrivacy();
      await post(`${b.url}/v1/track`, track({ userId: 'gone', messageId: 'after-unsuppress' }));
      await flushed(b);
      assert.ok((await allLines(b.store, 'quarantine/')).some((l) => l.includes('after-unsuppress')), 'stored again (in quarantine: this node blocks unplanned events)');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('plan replay leaves a suppressed or erased subject\'s quarantined messages out', async () => {
    const dir = tempDir();
    const plan = path.join(dir, 'plan.yaml');
    await (await import('node:fs/promises')).writeFile(plan, 'version: 1\nevents: []\nenforcement:\n  Unplanned-Event: block\n');
    const c = await startCollector({ storage: path.join(dir, 'data'), walDir: path.join(dir, 'wal'), plans: { demo: plan } });
    try {
      await post(`${c.url}/v1/batch`, { batch: [track({ userId: 'erase-me', messageId: 'q1' }), track({ userId: 'keep-me', messageId: 'q2' })] });
      await flushed(c);
      const secret = (await c.store.get('privacy/secret'))!.toString().trim();
      (c.clock as ManualClock).advance(1000);
      await new Regulations(c.store, secret, c.clock).create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['erase-me'] });
      // The plan now lets everything in; the erasure has not run yet.
      const config = loadConfig({ flags: { storage: path.join(dir, 'data'), walDir: path.join(dir, 'wal'), sources: { dev: 'demo' } } });
      const write = process.stdout.write;
      process.stdout.write = (() => true) as typeof process.stdout.write;
      try {
        await planReplay(config, { from: '2026-03-15', to: '2026-03-15' });
      } finally {
        process.stdout.write = write;
      }
      assert.deepEqual((await readRows(c.store)).map((r) => r.accountid), ['keep-me']);
    } finally {
      await c.close();
    }
  });

  it('messages logged before the suppression arrived are left out when they ship', async () => {
    const c = await startCollector({ privacySecret: 's'.repeat(40) });
    try {
      await post(`${c.url}/v1/batch`, { batch: [track({ userId: 'late', messageId: 'm1' }), track({ anonymousId: 'other', messageId: 'm2' })] });
      const clock = c.clock as ManualClock;
      clock.advance(1000);
      await new Regulations(c.store, 's'.repeat(40), clock).create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['late'] });
      clock.advance(1000);
      await c.node.reloadPrivacy();
      await flushed(c);
      const rows = await readRows(c.store);
      assert.deepEqual(rows.map((r) => r.deviceid), ['other']);
      assert.match(await c.node.metrics.registry.metrics(), /tracklake_records_erased_at_ship_total\{tenant="demo"\} 1/);
    } finally {
      await c.close();
    }
  });
});

const SECRET = 'e'.repeat(40);
const LAKE_DAYS = ['2026-03-11', '2026-03-12', '2026-03-13', '2026-03-14', '2026-03-15'];
const jobOptions = (store: ObjectStore) => ({ store, logger: silent, metrics: metricSet([]), inactivityMinutes: 30, includeBots: false, lookbackDays: 35 });
const erasure = (store: ObjectStore, clock: ManualClock) => ({ store, clock, logger: silent, secret: SECRET, metrics: metricSet([]), sessions: { inactivityMinutes: 30, includeBots: false, lookbackDays: 35 } });

/**
 * A small lake in dir/data, through a real collector and the real jobs: u1 browses anonymously as d1 on day 3,
 * logs in on day 2, comes back on another device on day 1 and on x0's device ds; 30 other events around, and
 * a1 anonymous.
 */
async function buildLake(dir: string, clock: ManualClock): Promise<void> {
  const c = await startCollector({ storage: path.join(dir, 'data'), walDir: path.join(dir, 'wal'), privacySecret: SECRET }, { clock });
  const msgs: unknown[] = [];
  msgs.push(track({ anonymousId: 'd1', timestamp: day(3) }), track({ anonymousId: 'd1', timestamp: day(3), event: 'Product Shared' }));
  msgs.push({ type: 'identify', userId: 'u1', anonymousId: 'd1', timestamp: day(2) }, track({ userId: 'u1', anonymousId: 'd1', timestamp: day(2) }));
  msgs.push(track({ userId: 'u1', anonymousId: 'd9', timestamp: day(1), event: 'Chat Started' }));
  for (let i = 0; i < 30; i++) msgs.push(track({ userId: `x${i % 5}`, anonymousId: `dx${i % 7}`, timestamp: day(i % 4), properties: { product_id: `p${i % 3}`, merchant_id: 'm1', page: 'say "hi",\nthere' } }));
  msgs.push(track({ anonymousId: 'a1', timestamp: day(2) }));
  // A shared device, first seen with x0: after u1 used it too, its anonymous rows are still x0's.
  msgs.push(track({ userId: 'x0', anonymousId: 'ds', timestamp: day(3) }), track({ userId: 'u1', anonymousId: 'ds', timestamp: day(1) }), track({ anonymousId: 'ds', timestamp: day(0) }));
  const r = await post(`${c.url}/v1/batch`, { batch: msgs });
  assert.equal(r.status, 200);
  await flushed(c);
  await c.close();
  const store = new LocalStore(path.join(dir, 'data'));
  await runAggregates(LAKE_DAYS, jobOptions(store));
  await runSessions(LAKE_DAYS, { ...jobOptions(store), force: true });
}

describe('reading the regulations again', () => {
  it('reads again for a reload asked during a read under way: what was filed before it is in force', async () => {
    const local = new LocalStore(tempDir());
    // The bucket's listing is held open while the test files a regulation, as a slow bucket would hold it.
    let held: Promise<void> | undefined;
    let listing!: () => void;
    const store = storeOver(local, {
      list: async (prefix) => {
        const listed = await local.list(prefix);
        if (held) listing();
        await held;
        return listed;
      },
    });
    const clock = new ManualClock(T0);
    const applied: Array<Record<string, readonly string[]>> = [];
    const watcher = new PrivacyWatcher({ store, configuredSecret: SECRET, clock, logger: silent, refreshMs: 3_600_000, apply: async (l) => void applied.push(l.byTenant) });
    await watcher.refresh();
    let release!: () => void;
    held = new Promise((r) => (release = r));
    const listed = new Promise<void>((r) => (listing = r));
    const timed = watcher.refresh(); // the periodic read, under way
    await listed;
    held = undefined;
    await new Regulations(local, SECRET, clock).create('demo', { regulationType: 'SUPPRESS', subjectType: 'USER_ID', subjectIds: ['late'] });
    const reload = watcher.refresh(); // SIGHUP, after the regulation was filed
    release();
    await Promise.all([timed, reload]);
    assert.equal(Object.keys(applied.at(-1)!).length, 1, 'the suppression filed before the reload is at the door');
    assert.equal(applied.length, 2, 'one more read, not one per call');
    assert.ok(watcher.filter()?.horizon()?.tenants.includes('demo'), 'and in the shipper\'s filter');
  });
});

describe('erasure', () => {
  const dir = tempDir();
  const data = path.join(dir, 'data');
  const secret = SECRET;
  let store: LocalStore;
  const clock = new ManualClock(T0);
  const jobs = () => jobOptions(store);

  before(async () => {
    await buildLake(dir, clock);
    store = new LocalStore(data);
  });

  it('removes every row of a user and of their linked devices, and derived files equal a rebuild', async () => {
    const before = await allLines(store, 'tracks/');
    const regs = new Regulations(store, secret, clock);
    const reg = await regs.create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['u1', 'never-seen'] });
    const anon = await regs.create('demo', { regulationType: 'DELETE', subjectType: 'ANONYMOUS_ID', subjectIds: ['a1'] });
    const run = await runErasure({ store, clock, logger: silent, secret, metrics: metricSet([]), sessions: { inactivityMinutes: 30, includeBots: false, lookbackDays: 35 } });
    assert.deepEqual(run.regulations.sort(), [reg.id, anon.id].sort(), 'two requests, one pass');

    // Tracking rows: exactly the subject's are gone (u1's, d1's anonymous ones, a1's), the others byte for byte.
    const after = await allLines(store, 'tracks/');
    const theirs = before.filter((l) => l.split(',')[4] === 'u1' || (['d1', 'a1'].includes(l.split(',')[3]!) && l.split(',')[4] === ''));
    assert.equal(theirs.length, 6, theirs.join('\n'));
    assert.ok(after.some((l) => l.split(',')[3] === 'ds' && l.split(',')[4] === ''), 'the shared device\'s anonymous row stays its first user\'s');
    assert.deepEqual(after, before.filter((l) => !theirs.includes(l)));
    const files = await Promise.all((await store.list('tracks/')).map(async (o) => (await store.get(o.key))!.toString()));
    assert.equal(files.join('').split('"say ""hi"",\nthere"').length - 1, 30, 'quoted newlines survive the rewrite');
    assert.deepEqual(await allLines(store, 'identities/'), []);
    assert.ok((await allLines(store, 'aliases/')).every((l) => !/u1|d1/.test(l)));

    // Derived files: what the jobs compute from the remaining tracking files alone.
    const fresh = tempDir();
    cpSync(path.join(data, 'tracks'), path.join(fresh, 'tracks'), { recursive: true });
    const rebuilt = new LocalStore(fresh);
    await runAggregates(LAKE_DAYS, { ...jobs(), store: rebuilt });
    await runSessions(LAKE_DAYS, { ...jobs(), store: rebuilt, force: true });
    for (const prefix of ['aggregates/daily/', 'aggregates/overall/', 'sessions/', 'track_facts/', 'users/user_facts.csv']) {
      assert.deepEqual(await allLines(store, prefix), await allLines(rebuilt, prefix), prefix);
    }

    const done = (await regs.get('demo', reg.id))!;
    assert.equal(done.status, 'FINISHED');
    assert.equal(done.subjectIds, undefined, 'the plain ids are gone once done');
    assert.equal(done.report!.rowsRemoved.tracks, 6);
    assert.equal(done.report!.linkedDevices, 2);
    assert.equal(done.linked?.length, 2, 'u1\'s devices d1 and d9, kept hashed with the regulation');
    assert.equal((await regs.get('demo', anon.id))!.linked, undefined);
    assert.ok(done.report!.daysRecomputed.length > 0);
    const text = (await store.get(`privacy/regulations/demo/${reg.id}.json`))!.toString();
    assert.ok(!text.includes('u1'));

    // Again: nothing pending, nothing changes; the indexes now let a deletion read only what holds its subject.
    const again = await runErasure({ store, clock, logger: silent, secret, metrics: metricSet([]), sessions: { inactivityMinutes: 30, includeBots: false, lookbackDays: 35 } });
    assert.deepEqual(again.regulations, []);
    assert.deepEqual(await allLines(store, 'tracks/'), after);
    await regs.create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['nobody'] });
    const none = await runErasure({ store, clock, logger: silent, secret, metrics: metricSet([]), sessions: { inactivityMinutes: 30, includeBots: false, lookbackDays: 35 } });
    assert.equal(none.report.filesRead, 0, 'an id never seen reads no file');
    assert.deepEqual(none.report.rowsRemoved, {});
  });

  it('fails a deletion that holds no ids, saying why', async () => {
    const regs = new Regulations(store, secret, clock);
    const reg = await regs.create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['x1'] });
    delete reg.subjectIds;
    await regs.save(reg); // as a copy edited by hand would be
    await runErasure(erasure(store, clock));
    const failed = (await regs.get('demo', reg.id))!;
    assert.equal(failed.status, 'FAILED');
    assert.match(failed.lastError!, /no subject ids/);
  });

  it('stays RUNNING with the reason when storage fails mid-deletion, and the next run finishes it exactly', async () => {
    const template = tempDir();
    await buildLake(template, clock);
    // Where a put fails (after the two regulations are marked RUNNING): early, in the middle, late (the recomputed days).
    for (const failAt of [3, 6, 10, 20]) {
      const copy = tempDir();
      cpSync(path.join(template, 'data'), path.join(copy, 'data'), { recursive: true });
      const local = new LocalStore(path.join(copy, 'data'));
      const expected = (await allLines(local, 'tracks/')).filter((l) => l.split(',')[4] !== 'u1' && !(['d1', 'a1'].includes(l.split(',')[3]!) && l.split(',')[4] === ''));
      const regs = new Regulations(local, SECRET, clock);
      const a = await regs.create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['u1'] });
      await regs.create('demo', { regulationType: 'DELETE', subjectType: 'ANONYMOUS_ID', subjectIds: ['a1'] });
      let puts = 0;
      // The storage failing: a put refused as S3 refuses one when it is down.
      const failing = storeOver(local, { put: async (k, b) => { if (++puts === failAt) throw new Error('storage down'); return local.put(k, b); }, localPath: (k) => local.localPath(k) });
      await assert.rejects(runErasure(erasure(failing, clock)), /storage down/);
      const stuck = (await regs.get('demo', a.id))!;
      assert.equal(stuck.status, 'RUNNING', `failing at put ${failAt}`);
      assert.equal(stuck.lastError, 'storage down');
      assert.deepEqual(stuck.subjectIds, ['u1'], 'the ids stay until the deletion is done');
      await runErasure(erasure(local, clock));
      assert.deepEqual(await allLines(local, 'tracks/'), expected, `failing at put ${failAt}`);
      assert.equal((await regs.get('demo', a.id))!.status, 'FINISHED');
    }
  });
});

describe('the regulations API', () => {
  it('takes privacy tokens only, names each bad field, and reports a regulation', async () => {
    const dir = tempDir();
    const config = loadConfig({ flags: { storage: path.join(dir, 'data'), walDir: path.join(dir, 'wal'), sources: { dev: 'demo' }, logLevel: 'silent' } });
    const store = new LocalStore(config.storage);
    const clock = new ManualClock(T0);
    const apiSecret = new TextEncoder().encode('k'.repeat(40));
    const cache = await ReadCache.open({ store, file: ':memory:', metrics: metricSet([]), clock, logger: silent, tailDays: 35 });
    const privacySecret = await loadPrivacySecret(undefined, store);
    const app = await buildReadServer({ config, cache, secret: apiSecret, clock, logger: silent, privacy: { regulations: new Regulations(store, privacySecret, clock), secret: privacySecret } });
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const privacy = await createToken({ tenant: 'demo', access: 'privacy' }, 3600, apiSecret, clock);
      const read = await createToken({ tenant: 'demo' }, 3600, apiSecret, clock);
      const merchant = await createToken({ tenant: 'demo', merchant: 'm1' }, 3600, apiSecret, clock);
      const call = (token: string, body: unknown) => post(`${address}/api/v1/regulations`, body, { authorization: `Bearer ${token}` });
      const good = { regulationType: 'SUPPRESS_WITH_DELETE', subjectType: 'USER_ID', subjectIds: ['u1'] };
      assert.equal((await call(read, good)).status, 403);
      assert.equal((await call(merchant, good)).status, 403);
      assert.equal((await post(`${address}/api/v1/query`, { metrics: ['view'] }, { authorization: `Bearer ${privacy}` })).status, 403, 'a privacy token reads no data');
      const bad: Array<[unknown, RegExp]> = [
        [{ ...good, regulationType: 'ERASE' }, /regulationType/],
        [{ ...good, subjectType: 'EMAIL' }, /subjectType/],
        [{ ...good, subjectIds: [] }, /subjectIds/],
        [{ ...good, subjectIds: Array.from({ length: 5001 }, (_, i) => `u${i}`) }, /subjectIds.*5000/],
        [{ ...good, subjectIds: ['x'.repeat(256)] }, /subjectIds\[0\]/],
        ['{not json', /JSON|body/i],
      ];
      for (const [body, message] of bad) {
        const r = await call(privacy, body);
        assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
        assert.match(r.json.message, message);
      }
      const created = await call(privacy, good);
      assert.equal(created.status, 202);
      const id = created.json.regulateId as string;
      const shown = await fetch(`${address}/api/v1/regulations/${id}`, { headers: { authorization: `Bearer ${privacy}` } }).then((r) => r.json() as Promise<any>);
      assert.equal(shown.status, 'INITIALIZED');
      assert.equal(shown.regulationType, 'SUPPRESS_WITH_DELETE');
      const list = await fetch(`${address}/api/v1/regulations`, { headers: { authorization: `Bearer ${privacy}` } }).then((r) => r.json() as Promise<any>);
      assert.equal(list.regulations.length, 1);
      const asked = await fetch(`${address}/api/v1/suppressions?subjectType=USER_ID&subjectId=u1`, { headers: { authorization: `Bearer ${privacy}` } }).then((r) => r.json() as Promise<any>);
      assert.equal(asked.suppressed, true);
      const stored = await store.list('privacy/suppressions');
      assert.equal(stored.length, 0);
      assert.ok(!(await store.get(`privacy/regulations/demo/${id}.json`))!.toString().includes('"subjects":["u1"'), 'subjects are kept hashed');
    } finally {
      await app.close();
      await cache.close();
    }
  });
});

describe('the bucket layout', () => {
  it('names every kind the README documents, with columns as documented and its subject columns', async () => {
    const readme = await (await import('node:fs/promises')).readFile(path.join(path.dirname(new URL(import.meta.url).pathname), '../../README.md'), 'utf8');
    for (const [name, kind] of Object.entries(LAKE)) {
      if (name.startsWith('aggregates') || name === 'sessionState' || name === 'userDevices') continue;
      assert.ok(readme.includes(kind.pattern), `README names ${name}: ${kind.pattern}`);
      const columns = 'columns' in kind && kind.columns ? Object.keys(kind.columns) : [];
      // The track facts are written in the README as "the 20 tracking columns, then userid,session_id,sequence".
      if (columns.length > 0) assert.ok(readme.includes((name === 'trackFacts' ? columns.slice(20) : columns).join(',')), `README lists ${name}'s columns`);
      for (const cols of Object.values(kind.subjects)) for (const col of cols as readonly string[]) {
        if ('columns' in kind && kind.columns) assert.ok(col in kind.columns, `${name}: ${col} is a column`);
      }
    }
    // A kind with person columns must say so: any column named for an id is one of its subject columns.
    for (const [name, kind] of Object.entries(LAKE)) {
      if (!('columns' in kind) || !kind.columns) continue;
      const named = new Set(Object.values(kind.subjects).flat() as string[]);
      for (const col of ['accountid', 'deviceid', 'userid', 'previousid']) if (col in kind.columns) assert.ok(named.has(col), `${name}.${col} is not named as a subject column`);
    }
  });
});
