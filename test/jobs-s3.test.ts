/** The jobs read and write only through the ObjectStore: on S3 they produce exactly the local files. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runAggregates } from '../src/jobs/aggregates/job.js';
import { metricSet } from '../src/jobs/aggregates/metrics.js';
import { runNightly } from '../src/jobs/scheduler.js';
import { runSessions } from '../src/jobs/sessions/job.js';
import { LocalStore } from '../src/storage/local.js';
import type { ObjectStore } from '../src/storage/store.js';
import { TRACK_COLUMNS } from '../src/tracking/columns.js';
import { toCsv } from '../src/tracking/csv.js';
import { nightlyThreads } from '../src/cli/nightly.js';
import { pino } from 'pino';
import { loadConfig } from '../src/config/config.js';
import { silent, tempDir } from './helpers.js';
import { ManualClock } from '../src/lib/clock.js';
import { runErasure } from '../src/privacy/erase.js';
import { Regulations } from '../src/privacy/regulations.js';
import { TestS3 } from './s3server.js';
import { api, startReadWorld } from './read-fixture.js';

const T = Date.parse('2026-06-01T09:00:00Z');

async function seed(store: ObjectStore): Promise<void> {
  for (const [d, day] of ['2026/06/01', '2026/06/02'].entries()) {
    const rows = Array.from({ length: 50 }, (_, i) => {
      const r: Record<string, string | number | boolean | null> = {
        time: T + d * 86_400_000 + i * 5 * 60_000, tenantid: i % 2 ? 't1' : 't2', deviceid: `d${i % 7}`, accountid: i % 11 === 0 ? `u${i % 3}` : null,
        merchantid: `m${i % 3}`, productid: i % 5 ? `p${i % 4}` : null, event: ['load', 'view', 'share', 'chat', 'order'][i % 5]!, bot: i % 13 === 0, page: 'a,"b"', devicetype: 'DESKTOP', source: 'DIRECT',
      };
      return TRACK_COLUMNS.map((c) => r[c] ?? null);
    });
    await store.put(`tracks/${day}/n1-000000000001.csv`, toCsv(TRACK_COLUMNS, rows));
  }
}

async function snapshot(store: ObjectStore): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  // Manifests and input records hold ETags, which differ between stores.
  for (const o of await store.list('')) if (!o.key.endsWith('.json') && !o.key.endsWith('.pack')) out[o.key] = (await store.get(o.key))!.toString();
  return out;
}

describe('the jobs on S3', () => {
  let s3: TestS3;
  before(async () => (s3 = await TestS3.start()));
  after(() => s3.down());

  it('write the same aggregates and session files to S3 as to a local folder', async () => {
    const local = new LocalStore(path.join(tempDir('jobs'), 'data'));
    const remote = s3.store('jobs');
    const days = ['2026-06-01', '2026-06-02'];
    for (const store of [local, remote]) {
      await seed(store);
      await runAggregates(days, { store, metrics: metricSet(), logger: silent });
      await runSessions(days, { store, logger: silent, inactivityMinutes: 30, includeBots: false, lookbackDays: 35 });
    }
    const a = await snapshot(local);
    const b = await snapshot(remote);
    assert.ok(Object.keys(a).some((k) => k.startsWith('aggregates/overall/')) && Object.keys(a).some((k) => k.startsWith('track_facts/')));
    assert.deepEqual(b, a);
  });

  it('erase a user to the same files on S3 as in a local folder', async () => {
    const local = new LocalStore(path.join(tempDir('erase'), 'data'));
    const remote = s3.store('erase');
    const days = ['2026-06-01', '2026-06-02'];
    const clock = new ManualClock(T + 2 * 86_400_000);
    const secret = 'p'.repeat(40);
    const results = [];
    for (const store of [local, remote]) {
      await seed(store);
      await runAggregates(days, { store, metrics: metricSet(), logger: silent });
      await runSessions(days, { store, logger: silent, inactivityMinutes: 30, includeBots: false, lookbackDays: 35 });
      const before = await snapshot(store);
      await new Regulations(store, secret, clock).create('t2', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['u0'] });
      const run = await runErasure({ store, clock, logger: silent, secret, metrics: metricSet(), sessions: { inactivityMinutes: 30, includeBots: false, lookbackDays: 35 } });
      results.push(run.report);
      const after = await snapshot(store);
      assert.notDeepEqual(after, before);
      // u0 of tenant t2 is gone from the tracking files and the track facts (t1 has a u0 of its own, who stays).
      const rows = Object.entries(after).filter(([k]) => k.startsWith('tracks/') || k.startsWith('track_facts/')).flatMap(([, v]) => v.split('\n'));
      assert.ok(!rows.some((l) => /^\d+,t2,[^,]*,[^,]*,u0,/.test(l)), 'no row of t2\'s u0 left');
      assert.ok(rows.some((l) => /^\d+,t1,[^,]*,[^,]*,u0,/.test(l)), 't1\'s u0 stays');
    }
    assert.ok(results[0]!.rowsRemoved.tracks! > 0);
    assert.deepEqual(results[1], results[0]);
    const strip = (x: Record<string, string>) => Object.fromEntries(Object.entries(x).filter(([k]) => !k.startsWith('privacy/')));
    assert.deepEqual(strip(await snapshot(remote)), strip(await snapshot(local)));
  });

  it('runs the nightly tasks in order, each on a thread of its own, catching up the days since the last run', async () => {
    const store = s3.store('nightly');
    await seed(store);
    // As serve runs them: a thread per task, its store made from the configuration (credentials from the environment).
    Object.assign(process.env, s3.env());
    const config = loadConfig({ flags: { logLevel: 'silent', storage: `s3://${s3.bucket}/nightly`, s3Endpoint: s3.endpoint, s3ForcePathStyle: true, s3Region: 'us-east-1' } });
    const threads = nightlyThreads(config, ['aggregates', 'sessions']);
    const logged: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    await runNightly(threads.tasks, '2026-06-03', logger);
    for (const key of ['aggregates/daily/2026/06/01/view.csv', 'aggregates/daily/2026/06/02/view.csv', 'aggregates/overall/view.csv', 'sessions/2026/06/01/sessions.csv', 'sessions/2026/06/02/sessions.csv', 'users/user_facts.csv']) {
      assert.ok(await store.get(key), `${key} is missing`);
    }
    assert.deepEqual(logged.map((l) => [l.task, l.msg]), [['aggregates', 'nightly task done'], ['sessions', 'nightly task done']]);
    assert.deepEqual(logged[0]!.computed, ['2026-06-01', '2026-06-02'], 'the thread\'s summary reaches the log');

    // A task that fails on its thread fails with its own message; one running when serve stops ends there.
    const missing = nightlyThreads(loadConfig({ flags: { logLevel: 'silent', storage: 's3://no-such-bucket-here', s3Endpoint: s3.endpoint, s3ForcePathStyle: true, s3Region: 'us-east-1' } }), ['aggregates']);
    await assert.rejects(missing.tasks[0]!.run('2026-06-03'), /no-such-bucket-here/);
    const stopped = nightlyThreads(config, ['aggregates']);
    const running = stopped.tasks[0]!.run('2026-06-03');
    await stopped.stop();
    await assert.rejects(running, /aggregates stopped with the collector; the next run catches up/);
  });

  it('serve the same answers from a read cache of S3 as of a local folder, the newest day from tracking files', async () => {
    const local = new LocalStore(path.join(tempDir('read'), 'data'));
    const remote = s3.store('read');
    const answers: unknown[][] = [];
    for (const store of [local, remote]) {
      await seed(store);
      await runAggregates(['2026-06-01'], { store, metrics: metricSet(), logger: silent });
      await runSessions(['2026-06-01', '2026-06-02'], { store, logger: silent, inactivityMinutes: 30, includeBots: false, lookbackDays: 35 });
      const w = await startReadWorld(store, { sources: { k1: 't1', k2: 't2' } }, Date.parse('2026-06-02T20:00:00Z'));
      try {
        const token = await w.token({ tenant: 't1' });
        const bodies = [
          { metrics: ['view', 'share', 'chat'], date_range: '7d', dimensions: ['time:day', 'product'] },
          { metrics: ['sessions', 'bounce_rate', 'events'], date_range: '7d', dimensions: ['source'] },
        ];
        const rs = [];
        for (const b of bodies) rs.push((await api(w.url, token, b)).json);
        rs.push((await api(w.url, token, { steps: ['load', 'view', 'chat'], date_range: '7d' }, { path: '/api/v1/funnel' })).json);
        answers.push(rs);
        assert.equal(w.cache.computedThrough.aggregates, '2026-06-01');
        assert.ok(rs[0].results.some((r: { dimensions: string[] }) => r.dimensions[0] === '2026-06-02'), 'the newest day, from its tracking file');
      } finally {
        await w.close();
      }
    }
    assert.deepEqual(answers[1], answers[0]);
  });
});
