/** The newcomer's path: collector, simulator, aggregates and sessions, all through the command line. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LocalStore } from '../src/storage/local.js';
import { CLI, readRows, spawnCollector, tempDir } from './helpers.js';

describe('a newcomer', () => {
  it('runs the collector, sends simulated traffic, and reads correct aggregates and sessions', async () => {
    const dir = tempDir('e2e');
    const collector = await spawnCollector(dir, ['--flush-interval-ms', '200', '--api-port', '0']);
    // What `npm start` prints: the dashboard's address with a ready token.
    for (let i = 0; i < 100 && !/\?token=/.test(collector.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    const link = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=(\S+)/.exec(collector.stderr());
    assert.ok(link, collector.stderr());
    const sim = spawnSync(process.execPath, [CLI, 'simulate', '--url', collector.url, '--events', '3000', '--days', '3', '--end', '2026-02-01T00:00:00Z', '--seed', '7'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(sim.status, 0, sim.stderr);
    assert.match(sim.stderr, /sent 3000 events \(0 failed\)/);
    const dashboard = await fetch(`${link![1]}/`);
    assert.equal(dashboard.status, 200);
    assert.match(await dashboard.text(), /<script type="module" src="\/assets\/app-[0-9a-f]+\.js">/);
    collector.proc.kill('SIGTERM');
    assert.equal(await collector.exited, 0);

    const store = new LocalStore(path.join(dir, 'data'));
    const rows = await readRows(store);
    const days = [...new Set((await store.list('tracks/')).map((o) => o.key.slice(7, 17).replaceAll('/', '-')))].sort();
    assert.deepEqual(days, ['2026-01-29', '2026-01-30', '2026-01-31']);
    // Before any job has run, `tracklake api` alone counts every view from the tracking files (of days
    // within the lookback window, which has to reach back to the simulated January from today).
    const api = spawn(process.execPath, [CLI, 'api', '--storage', 'data', '--wal-dir', 'wal', '--api-port', '0', '--lookback-days', '3000', '--log-level', 'warn'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let apiErr = '';
    api.stderr!.on('data', (d: Buffer) => (apiErr += d.toString()));
    let seen: number;
    try {
      for (let i = 0; i < 300 && !/\?token=\S+\n/.test(apiErr); i++) await new Promise((r) => setTimeout(r, 50));
      const alone = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=(\S+)/.exec(apiErr);
      assert.ok(alone, apiErr);
      const res = await fetch(`${alone[1]}/api/v1/query`, { method: 'POST', headers: { authorization: `Bearer ${alone[2]}`, 'content-type': 'application/json' }, body: JSON.stringify({ metrics: ['view'], date_range: [days[0], days.at(-1)] }) });
      assert.equal(res.status, 200);
      seen = ((await res.json()) as { results: Array<{ metrics: number[] }> }).results[0]!.metrics[0]!;
    } finally {
      api.kill('SIGTERM');
    }
    const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args, '--storage', 'data', '--from', days[0]!, '--to', days.at(-1)!], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    const agg = run(['aggregate']);
    assert.equal(agg.status, 0, agg.stderr);
    const sessions = run(['sessions']);
    assert.equal(sessions.status, 0, sessions.stderr);

    // The overall view file equals a count made straight from the tracking files.
    const expected = new Map<string, number>();
    for (const r of rows) if (r.event === 'view' && r.productid && r.bot !== 'true') expected.set(`${r.tenantid},${r.merchantid},${r.productid}`, (expected.get(`${r.tenantid},${r.merchantid},${r.productid}`) ?? 0) + 1);
    const overall = new Map((await readRows(store, 'aggregates/overall/view.csv')).map((r) => [`${r.tenantid},${r.merchantid},${r.productid}`, Number(r.value)]));
    assert.deepEqual(overall, expected);
    assert.ok(expected.size > 10);
    assert.equal(seen, [...expected.values()].reduce((a, b) => a + b, 0), 'tracklake api counted every view while only tracking files existed');

    // Every non-bot tracking row is a track fact, with a session that is in a sessions file.
    const facts = await readRows(store, 'track_facts/');
    assert.equal(facts.length, rows.filter((r) => r.bot !== 'true').length);
    const sessionIds = new Set((await readRows(store, 'sessions/')).filter((s) => s.session_id).map((s) => s.session_id));
    assert.ok(facts.every((f) => sessionIds.has(f.session_id!)));
    // Devices that logged in are stitched to their accounts.
    assert.ok((await readRows(store, 'aliases/')).length > 0);
  });
});
