/**
 * A read node that starts on many days of files (a new node behind a load balancer): it answers the
 * dashboard's month as soon as the month is loaded, newest days first, and a question about older days only
 * once those are loaded, never with a partial sum.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config/config.js';
import { metricSet } from '../src/jobs/aggregates/metrics.js';
import { ManualClock } from '../src/lib/clock.js';
import { addDays, dayOfKey, dayPath, dayStartMs, daysBetween } from '../src/lib/dates.js';
import { ReadCache } from '../src/query/cache.js';
import { buildReadServer } from '../src/query/server.js';
import { createToken } from '../src/query/tokens.js';
import { LocalStore } from '../src/storage/local.js';
import type { ObjectStore } from '../src/storage/store.js';
import { silent, storeOver, tempDir } from './helpers.js';

const TODAY = '2026-06-30';
const DAYS = daysBetween(addDays(TODAY, -149), TODAY);
const SECRET = new TextEncoder().encode('test-secret-of-at-least-thirty-two-bytes!');
/** Day n (0 = the oldest) has n + 1 views and n % 4 + 1 sessions: every day's share of a sum is visible. */
const views = (n: number) => n + 1;
const sessions = (n: number) => (n % 4) + 1;

async function writeDays(store: ObjectStore): Promise<void> {
  for (const [n, day] of DAYS.entries()) {
    const t = dayStartMs(day) + 3_600_000;
    await store.put(`aggregates/daily/${dayPath(day)}/view.csv`, `time,tenantid,merchantid,productid,value\n${t},demo,m1,p1,${views(n)}\n`);
    await store.put(`aggregates/_state/daily/${dayPath(day)}/manifest.json`, JSON.stringify({ day }));
    const rows = Array.from({ length: sessions(n) }, (_, i) => `s${n}-${i},demo,u${i},d${i},${t},${t + 60_000},60000,2,1,0,0,0,/p/1,,,DIRECT,DESKTOP,false`);
    await store.put(`sessions/${dayPath(day)}/sessions.csv`, ['session_id,tenantid,userid,deviceid,start,end,duration,events,views,shares,chats,orders,page,url,referer,source,devicetype,bounce', ...rows, ''].join('\n'));
    await store.put(`sessions/_state/${dayPath(day)}/manifest.json`, JSON.stringify({ day }));
  }
}

/** The local store read through get() (as on S3), with every file of a day before `from` held until release(). */
function holding(local: LocalStore, from: string): { store: ObjectStore; release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const store = storeOver(local, {
    async get(key) {
      const day = dayOfKey(key);
      if (day !== undefined && day < from) await held;
      return local.get(key);
    },
  });
  return { store, release };
}

describe('a read node starting on many days', () => {
  const closers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const close of closers.reverse()) await close();
  });

  it('answers the last 30 days (and the 30 before) while older days load, and the year only once they are in', async () => {
    const dir = tempDir('read-start');
    const local = new LocalStore(path.join(dir, 'data'));
    await writeDays(local);
    // The month and the previous month are the newest 62 days (two loads of 31); everything older waits.
    const { store, release } = holding(local, addDays(TODAY, -61));
    const config = loadConfig({ flags: { storage: path.join(dir, 'unused'), walDir: path.join(dir, 'wal'), sources: { dev: 'demo' }, logLevel: 'silent' } });
    const clock = new ManualClock(Date.parse(`${TODAY}T12:00:00Z`));
    const cache = await ReadCache.open({ store, file: path.join(dir, 'cache.duckdb'), metrics: metricSet(), clock, logger: silent, tailDays: 35 });
    const app = await buildReadServer({ config, cache, secret: SECRET, clock, logger: silent });
    closers.push(async () => {
      release();
      await app.close();
      await cache.close();
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/api/v1/query`;
    const token = await createToken({ tenant: 'demo' }, 3600, SECRET, clock);
    const query = async (body: object) => {
      const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(res.status, 200);
      return ((await res.json()) as { results: Array<{ metrics: number[]; comparison?: number[] }> }).results[0]!;
    };
    const sum = (f: (n: number) => number, from: number, to: number) => DAYS.slice(from, to).reduce((s, _d, i) => s + f(from + i), 0);
    const last = DAYS.length;

    const loading = cache.refresh();
    const all = query({ metrics: ['view', 'sessions'], date_range: 'all' });
    let allAnswered = false;
    void all.then(() => (allAnswered = true), () => undefined);

    const stuck = sleep(30_000, undefined, { ref: false }).then(() => assert.fail('the month was not answered while older days were held'));
    const month = await Promise.race([query({ metrics: ['view', 'sessions'], date_range: '30d', compare: 'previous_period' }), stuck]);
    assert.deepEqual(month.metrics, [sum(views, last - 30, last), sum(sessions, last - 30, last)]);
    assert.deepEqual(month.comparison, [sum(views, last - 60, last - 30), sum(sessions, last - 60, last - 30)]);
    await sleep(300);
    assert.equal(allAnswered, false, 'a question over every day waits for the older days');

    release();
    assert.deepEqual((await all).metrics, [sum(views, 0, last), sum(sessions, 0, last)]);
    const report = await loading;
    assert.equal(report.aggregateDays, DAYS.length);
    assert.equal(report.sessionDays, DAYS.length);
  });
});
