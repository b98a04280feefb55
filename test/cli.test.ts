import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { selectDays } from '../src/cli/aggregate.js';
import { intArg } from '../src/cli/common.js';
import { ConfigError } from '../src/lib/errors.js';
import { LocalStore } from '../src/storage/local.js';
import { TRACK_COLUMNS } from '../src/tracking/columns.js';
import { toCsv } from '../src/tracking/csv.js';
import { CLI, tempDir } from './helpers.js';

const cli = (args: string[], cwd = tempDir('cli'), env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 });

function row(time: number, event: string, productid: string): Array<string | number | boolean | null> {
  const r: Record<string, string | number | boolean | null> = { time, tenantid: 't1', deviceid: 'd1', merchantid: 'm1', productid, event, bot: false, devicetype: 'DESKTOP', source: 'DIRECT' };
  return TRACK_COLUMNS.map((c) => r[c] ?? null);
}

describe('the tracklake command', () => {
  it('refuses bad flags with exit code 2 and a message naming the setting', () => {
    const serve = cli(['serve', '--port', 'abc']);
    assert.equal(serve.status, 2);
    assert.match(serve.stderr, /invalid setting "port"/);
    const host = cli(['serve', '--host', '192.0.2.1', '--port', '0']); // TEST-NET-1: no machine's own address
    assert.equal(host.status, 2);
    assert.match(host.stderr, /invalid setting "host": cannot listen on 192\.0\.2\.1:0 \(EADDRNOTAVAIL\)/);
    const under = tempDir('cli');
    writeFileSync(path.join(under, 'a-file'), '');
    const storageFile = cli(['serve', '--port', '0', '--storage', 'a-file/data'], under);
    assert.equal(storageFile.status, 2);
    assert.match(storageFile.stderr, /invalid setting "storage": cannot use a-file\/data \(ENOTDIR\)/);
    const agg = cli(['aggregate', '--date', '2026-13-01']);
    assert.equal(agg.status, 2);
    assert.match(agg.stderr, /"date"/);
    const both = cli(['aggregate', '--date', '2026-01-01', '--pending']);
    assert.equal(both.status, 2);
    const storage = cli(['aggregate', '--date', '2026-01-01', '--storage', 'ftp://x/y']);
    assert.equal(storage.status, 2);
    assert.match(storage.stderr, /"storage"/);
    const funnel = cli(['funnel', '--from', '2026-01-01', '--to', '2026-01-02', '--steps', 'view']);
    assert.equal(funnel.status, 2);
    assert.match(funnel.stderr, /"steps"/);
    // simulate: a number refused while commander parses the flags (before any action runs), a URL in the action.
    for (const [flag, value] of [['--events', '-5'], ['--url', 'localhost:8080']] as const) {
      const sim = cli(['simulate', flag, value]);
      assert.equal(sim.status, 2, `${flag} ${value}: ${sim.stderr}`);
      assert.match(sim.stderr, new RegExp(`^tracklake: invalid setting "${flag.slice(2)}"`), `${flag} ${value}`);
      assert.doesNotMatch(sim.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('exits 2 on a usage error commander finds, so a script tells a typo from "found something" (1)', () => {
    for (const args of [['serve', '--bogus'], ['nosuch'], ['destinations', 'replay', 'crm'], ['plan', 'lint', '--form', '2026-01-01'], []]) {
      const r = cli(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /error: |Usage: /, args.join(' '));
    }
    assert.equal(cli(['--help']).status, 0);
    assert.equal(cli(['help', 'serve']).status, 0);
  });

  it('checks whole-number flags against their range', () => {
    assert.equal(intArg('days', 1, 3650)('7'), 7);
    const refused: Array<[string, (v: string) => number, string]> = [
      ['rate', intArg('rate', 1), '0'],
      ['days', intArg('days', 1, 3650), 'x'],
      ['batch-size', intArg('batch-size', 1, 2500), '2501'],
      ['seed', intArg('seed'), '1e3'],
      ['events', intArg('events'), '99999999999999999999'],
    ];
    for (const [name, parse, v] of refused) {
      assert.throws(() => parse(v), (e: Error) => e instanceof ConfigError && e.message.startsWith(`invalid setting "${name}"`), `${name} ${v}`);
    }
  });

  it('takes --last Nd as the N days ending today, and refuses it beside other days or malformed', () => {
    const now = Date.parse('2026-03-02T05:00:00Z');
    assert.deepEqual(selectDays({ last: '3d' }, now).days, ['2026-02-28', '2026-03-01', '2026-03-02']);
    assert.deepEqual(selectDays({ last: '1d' }, now).days, ['2026-03-02']);
    for (const bad of ['0d', '7', '-2d', 'week']) assert.throws(() => selectDays({ last: bad }, now), /invalid setting "last"/, bad);
    assert.throws(() => selectDays({ last: '7d', pending: true }, now), /exactly one of --date, --from\/--to, --last or --pending/);
  });

  it('says which store, operation and key failed when storage cannot be reached, without a stack', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const env = { AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`, AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_REGION: 'us-east-1', TRACKLAKE_S3_FORCE_PATH_STYLE: 'true' };
    const agg = cli(['aggregate', '--storage', 's3://nowhere', '--date', '2026-01-01'], tempDir('cli'), env);
    assert.equal(agg.status, 1);
    // The day's listing and its manifest are fetched side by side: either may fail first.
    assert.match(agg.stderr, /^tracklake: storage s3:\/\/nowhere: (list tracks\/2026\/01\/01\/|get aggregates\/_state\/daily\/2026\/01\/01\/manifest\.json) failed: connect ECONNREFUSED/m);
    assert.doesNotMatch(agg.stderr, /\n\s+at /, 'no stack trace');
  });

  it('refuses a port that is taken with exit code 2, naming the port', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const serve = cli(['serve', '--port', String(port)]);
      assert.equal(serve.status, 2);
      assert.match(serve.stderr, new RegExp(`invalid setting "port": cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));
    } finally {
      taken.close();
    }
  });

  it('aggregates, catches up with --pending, analyses sessions and prints a funnel from the command line', async () => {
    const dir = tempDir('cli');
    const store = new LocalStore(path.join(dir, 'data'));
    const t = Date.parse('2026-05-02T10:00:00Z');
    await store.put('tracks/2026/05/02/n1-000000000001.csv', toCsv(TRACK_COLUMNS, [row(t, 'load', ''), row(t + 60_000, 'view', 'p1'), row(t + 120_000, 'chat', 'p1')]));
    const agg = cli(['aggregate', '--storage', 'data', '--date', '2026-05-02'], dir);
    assert.equal(agg.status, 0, agg.stderr);
    assert.deepEqual(JSON.parse(agg.stdout).computed, ['2026-05-02']);
    const view = parse((await store.get('aggregates/daily/2026/05/02/view.csv'))!.toString()) as string[][];
    assert.deepEqual(view, [['time', 'tenantid', 'merchantid', 'productid', 'value'], [String(Date.parse('2026-05-02')), 't1', 'm1', 'p1', '1']]);

    // A late file for May 2nd, and nothing yet for the 3rd: --pending on the 4th redoes the 2nd and does the 3rd.
    await store.put('tracks/2026/05/02/n1-000000000002.csv', toCsv(TRACK_COLUMNS, [row(t + 180_000, 'view', 'p1')]));
    const pending = cli(['aggregate', '--storage', 'data', '--pending', '--today', '2026-05-04'], dir);
    assert.equal(pending.status, 0, pending.stderr);
    assert.deepEqual(JSON.parse(pending.stdout).computed, ['2026-05-02', '2026-05-03']);
    assert.match((await store.get('aggregates/overall/view.csv'))!.toString(), /,p1,2\n$/);
    // The late day updated its month, year and overall incrementally; --rebuild rolls them from the daily files to the same bytes.
    assert.ok(JSON.parse(pending.stdout).incremental > 0, pending.stdout);
    const overall = (await store.get('aggregates/overall/view.csv'))!.toString();
    await store.put('aggregates/overall/view.csv', 'damaged');
    const rebuilt = cli(['aggregate', '--storage', 'data', '--rebuild'], dir);
    assert.equal(rebuilt.status, 0, rebuilt.stderr);
    assert.equal(JSON.parse(rebuilt.stdout).incremental, 0);
    assert.equal((await store.get('aggregates/overall/view.csv'))!.toString(), overall);
    assert.equal(cli(['aggregate', '--storage', 'data', '--rebuild', '--date', '2026-05-02'], dir).status, 2);

    // Before the sessions job has run, the funnel's zeros come with the reason.
    const early = cli(['funnel', '--storage', 'data', '--from', '2026-05-02', '--to', '2026-05-02', '--steps', 'load,view'], dir);
    assert.equal(early.status, 0, early.stderr);
    assert.match(early.stderr, /no track facts for 2026-05-02\.\.2026-05-02 .*tracklake sessions --from 2026-05-02 --to 2026-05-02/);
    assert.match(early.stdout, /^load +0 sessions/);
    const sessions = cli(['sessions', '--storage', 'data', '--from', '2026-05-01', '--to', '2026-05-03'], dir);
    assert.equal(sessions.status, 0, sessions.stderr);
    assert.deepEqual(JSON.parse(sessions.stdout).computed, ['2026-05-02']);
    const funnel = cli(['funnel', '--storage', 'data', '--from', '2026-05-02', '--to', '2026-05-02', '--steps', 'load,view,chat', '--json'], dir);
    assert.equal(funnel.status, 0, funnel.stderr);
    assert.deepEqual(JSON.parse(funnel.stdout).map((s: { sessions: number }) => s.sessions), [1, 1, 1]);
    assert.doesNotMatch(funnel.stderr, /no track facts/);
  });
});
