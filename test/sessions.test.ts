import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { flow, funnel } from '../src/jobs/sessions/funnel.js';
import { runSessions, sessionPaths, type SessionOptions } from '../src/jobs/sessions/job.js';
import { dayOf, dayPath } from '../src/lib/dates.js';
import { LocalStore } from '../src/storage/local.js';
import type { ObjectStore } from '../src/storage/store.js';
import { IDENTITY_COLUMNS, TRACK_COLUMNS } from '../src/tracking/columns.js';
import { toCsv } from '../src/tracking/csv.js';
import { randomFileSteps, silent, tempDir } from './helpers.js';

const MIN = 60_000;
const T = Date.parse('2026-04-10T08:00:00.000Z');

interface Ev {
  time: number;
  device?: string;
  account?: string;
  event?: string;
  bot?: boolean;
  tenant?: string;
  page?: string;
}

async function writeEvents(store: ObjectStore, events: Ev[], name = 'n1-000000000001'): Promise<void> {
  const byDay = new Map<string, Ev[]>();
  for (const e of events) byDay.set(dayOf(e.time), [...(byDay.get(dayOf(e.time)) ?? []), e]);
  for (const [day, evs] of byDay) {
    const rows = evs.map((e) => TRACK_COLUMNS.map((c) => ({ time: e.time, tenantid: e.tenant ?? 't1', deviceid: e.device ?? null, accountid: e.account ?? null, event: e.event ?? 'view', bot: e.bot ?? false, page: e.page ?? null, devicetype: 'DESKTOP', source: 'DIRECT' } as Record<string, unknown>)[c] ?? null) as Array<string | number | boolean | null>);
    await store.put(`tracks/${dayPath(day)}/${name}.csv`, toCsv(TRACK_COLUMNS, rows));
  }
}

const opts = (store: ObjectStore, over: Partial<SessionOptions> = {}): SessionOptions => ({ store, logger: silent, inactivityMinutes: 30, includeBots: false, lookbackDays: 35, ...over });

async function csv(store: ObjectStore, key: string): Promise<Array<Record<string, string>>> {
  const body = await store.get(key);
  return body ? (parse(body.toString('utf8'), { columns: true }) as Array<Record<string, string>>) : [];
}

/** The independent computation: the block's rules in plain TypeScript. */
function expectedSessions(events: Ev[], inactivityMs = 30 * MIN): Array<{ user: string; start: number; end: number; events: number }> {
  const alias = new Map<string, { user: string; time: number }>();
  for (const e of [...events].sort((a, b) => a.time - b.time)) {
    if (e.bot || !e.device || !e.account) continue;
    const cur = alias.get(e.device);
    if (!cur || e.time < cur.time || (e.time === cur.time && e.account < cur.user)) alias.set(e.device, { user: e.account, time: e.time });
  }
  const byUser = new Map<string, number[]>();
  for (const e of events) {
    if (e.bot) continue;
    const user = e.account ?? alias.get(e.device!)?.user ?? e.device!;
    byUser.set(user, [...(byUser.get(user) ?? []), e.time]);
  }
  const out: Array<{ user: string; start: number; end: number; events: number }> = [];
  for (const [user, times] of byUser) {
    times.sort((a, b) => a - b);
    let gapStart = times[0]!;
    let cur = { user, start: times[0]!, end: times[0]!, events: 1 };
    for (let i = 1; i < times.length; i++) {
      const t = times[i]!;
      const newGap = t - times[i - 1]! > inactivityMs;
      if (newGap) gapStart = t;
      if (newGap || Math.floor((t - gapStart) / 86_400_000) !== Math.floor((cur.start - gapStart) / 86_400_000)) {
        out.push(cur);
        cur = { user, start: t, end: t, events: 1 };
      } else {
        cur.end = t;
        cur.events++;
      }
    }
    out.push(cur);
  }
  return out.sort((a, b) => a.start - b.start || (a.user < b.user ? -1 : 1));
}

async function actualSessions(store: ObjectStore, days: string[]) {
  const rows = (await Promise.all(days.map((d) => csv(store, sessionPaths.sessions(d))))).flat();
  return rows.map((r) => ({ user: r.userid!, start: Number(r.start), end: Number(r.end), events: Number(r.events) })).sort((a, b) => a.start - b.start || (a.user < b.user ? -1 : 1));
}

async function analyse(events: Ev[], days: string[], over: Partial<SessionOptions> = {}) {
  const store = new LocalStore(path.join(tempDir('sessions'), 'data'));
  await writeEvents(store, events);
  const run = await runSessions(days, opts(store, over));
  return { store, run };
}

describe('track analysis', () => {
  it('keeps a gap of exactly 30 minutes in the session and splits at 30 minutes and 1 ms', async () => {
    const events: Ev[] = [{ time: T, device: 'a' }, { time: T + 30 * MIN, device: 'a' }, { time: T + 60 * MIN + 1, device: 'a' }];
    const { store } = await analyse(events, ['2026-04-10']);
    const sessions = await actualSessions(store, ['2026-04-10']);
    assert.deepEqual(sessions, expectedSessions(events));
    assert.deepEqual(sessions.map((s) => s.events), [2, 1]);
  });

  it('joins a device’s anonymous events to the account it logs into mid-session', async () => {
    const events: Ev[] = [{ time: T, device: 'd1' }, { time: T + 5 * MIN, device: 'd1' }, { time: T + 10 * MIN, device: 'd1', account: 'u1' }, { time: T + 12 * MIN, device: 'd1' }];
    const { store } = await analyse(events, ['2026-04-10']);
    const sessions = await actualSessions(store, ['2026-04-10']);
    assert.deepEqual(sessions, [{ user: 'u1', start: T, end: T + 12 * MIN, events: 4 }]);
    const facts = await csv(store, sessionPaths.trackFacts('2026-04-10'));
    assert.deepEqual(facts.map((f) => [f.userid, f.sequence]), [['u1', '1'], ['u1', '2'], ['u1', '3'], ['u1', '4']]);
    assert.equal(new Set(facts.map((f) => f.session_id)).size, 1);
    assert.deepEqual(await csv(store, sessionPaths.aliasMap), [{ tenantid: 't1', deviceid: 'd1', userid: 'u1', time: String(T + 10 * MIN) }]);
  });

  it('makes one user of one account on two devices, and gives a shared device to the earliest account', async () => {
    const events: Ev[] = [
      { time: T, device: 'phone' }, { time: T + MIN, device: 'phone', account: 'u1' },
      { time: T + 3 * 3600_000, device: 'laptop' }, { time: T + 3 * 3600_000 + MIN, device: 'laptop', account: 'u1' },
      { time: T + 5 * 3600_000, device: 'kiosk', account: 'u2' }, { time: T + 6 * 3600_000, device: 'kiosk', account: 'u3' }, { time: T + 7 * 3600_000, device: 'kiosk' },
    ];
    const { store } = await analyse(events, ['2026-04-10']);
    assert.deepEqual(await actualSessions(store, ['2026-04-10']), expectedSessions(events));
    const alias = await csv(store, sessionPaths.aliasMap);
    assert.deepEqual(alias.map((a) => [a.deviceid, a.userid]), [['kiosk', 'u2'], ['laptop', 'u1'], ['phone', 'u1']]);
    const users = await csv(store, sessionPaths.userFacts);
    const u1 = users.find((u) => u.userid === 'u1')!;
    assert.deepEqual([u1.sessions, u1.events, u1.devices], ['2', '4', '2']);
    // The anonymous kiosk event belongs to u2, the earliest account seen on it.
    assert.equal(users.find((u) => u.userid === 'u2')!.events, '2');
  });

  it('takes identity links from identify and alias calls', async () => {
    const store = new LocalStore(path.join(tempDir('sessions'), 'data'));
    await writeEvents(store, [{ time: T, device: 'anon-1' }, { time: T + 2 * 3600_000, device: 'anon-2' }]);
    await store.put('identities/2026/04/10/n1-000000000001.csv', toCsv(IDENTITY_COLUMNS, [[T + MIN, 't1', 'anon-1', 'u7', null], [T + 2 * MIN, 't1', null, 'u7', 'anon-2']]));
    await runSessions(['2026-04-10'], opts(store));
    assert.deepEqual((await actualSessions(store, ['2026-04-10'])).map((s) => s.user), ['u7', 'u7']);
  });

  it('keeps a session across midnight in the day it starts, with its facts in both days', async () => {
    const late = Date.parse('2026-04-10T23:50:00.000Z');
    const events: Ev[] = [{ time: late, device: 'n' }, { time: late + 20 * MIN, device: 'n' }, { time: late + 40 * MIN, device: 'n' }];
    const { store } = await analyse(events, ['2026-04-10', '2026-04-11']);
    assert.deepEqual(await actualSessions(store, ['2026-04-10', '2026-04-11']), expectedSessions(events));
    assert.deepEqual(await csv(store, sessionPaths.sessions('2026-04-11')), []);
    const d1 = await csv(store, sessionPaths.trackFacts('2026-04-10'));
    const d2 = await csv(store, sessionPaths.trackFacts('2026-04-11'));
    assert.deepEqual(d1.map((f) => f.sequence), ['1']);
    assert.deepEqual(d2.map((f) => f.sequence), ['2', '3']);
    assert.equal(d1[0]!.session_id, d2[0]!.session_id);
  });

  it('closes a session after 24 hours of continuous activity', async () => {
    const events: Ev[] = Array.from({ length: 90 }, (_, i) => ({ time: T + i * 20 * MIN, device: 'busy' }));
    const { store } = await analyse(events, ['2026-04-10', '2026-04-11']);
    const sessions = await actualSessions(store, ['2026-04-10', '2026-04-11']);
    assert.deepEqual(sessions, expectedSessions(events));
    assert.deepEqual(sessions.map((s) => s.events), [72, 18]);
    assert.ok(sessions[0]!.end - sessions[0]!.start < 86_400_000);
  });

  it('leaves bots out unless configured', async () => {
    const events: Ev[] = [{ time: T, device: 'human' }, { time: T + MIN, device: 'crawler', bot: true }];
    const { store } = await analyse(events, ['2026-04-10']);
    assert.deepEqual((await actualSessions(store, ['2026-04-10'])).map((s) => s.user), ['human']);
    const withBots = await analyse(events, ['2026-04-10'], { includeBots: true });
    assert.deepEqual((await actualSessions(withBots.store, ['2026-04-10'])).map((s) => s.user), ['human', 'crawler']);
  });

  it('writes the documented columns and byte-identical files on a re-run', async () => {
    const events: Ev[] = Array.from({ length: 40 }, (_, i) => ({ time: T + i * 7 * MIN, device: `d${i % 4}`, account: i % 9 === 0 ? `u${i % 4}` : undefined, event: ['load', 'view', 'share', 'chat', 'order'][i % 5]!, page: 'Home, "main"' }));
    const { store } = await analyse(events, ['2026-04-10']);
    const s = (await store.get(sessionPaths.sessions('2026-04-10')))!.toString();
    assert.equal(s.split('\n')[0], 'session_id,tenantid,userid,deviceid,start,end,duration,events,views,shares,chats,orders,page,url,referer,source,devicetype,bounce');
    assert.equal((await store.get(sessionPaths.trackFacts('2026-04-10')))!.toString().split('\n')[0], `${TRACK_COLUMNS.join(',')},userid,session_id,sequence`);
    const rows = await csv(store, sessionPaths.sessions('2026-04-10'));
    for (const r of rows) {
      assert.equal(Number(r.duration), Number(r.end) - Number(r.start));
      assert.equal(r.bounce, r.events === '1' ? 'true' : 'false');
      assert.equal(r.page, 'Home, "main"');
    }
    const snapshot = async () => Promise.all((await store.list('')).filter((o) => !o.key.startsWith('tracks/')).map(async (o) => [o.key, (await store.get(o.key))!.toString()]));
    const before = await snapshot();
    const again = await runSessions(['2026-04-10'], opts(store));
    assert.deepEqual(again.computed, []);
    const forced = await runSessions(['2026-04-10'], opts(store, { force: true }));
    assert.deepEqual(forced.computed, ['2026-04-10']);
    assert.equal(forced.filesWritten, 0);
    assert.deepEqual(await snapshot(), before);
  });

  it('writes each track fact as its tracking row, byte for byte, with the keys appended', async () => {
    const store = new LocalStore(path.join(tempDir('sessions'), 'data'));
    const header = TRACK_COLUMNS.join(',');
    const row = (time: number, device: string, page: string, rest = 'view,,,,,,false,,,,DESKTOP,DIRECT') => `${time},t1,,${device},,,,${page},${rest}`;
    const kept = [
      row(T, 'd1', '"Home, ""main"""'),
      row(T + MIN, 'd1', '"two\nlines ü €"', 'view,1.50,,,,,false,,,,DESKTOP,DIRECT'), // 1.50 keeps its text
      row(T + 5 * MIN, 'd1', 'last'),
    ];
    await store.put('tracks/2026/04/10/a.csv', [
      header,
      kept[0],
      '', // a blank line: no row
      kept[1],
      row(T + 3 * MIN, 'crawler', 'p', 'view,,,,,,true,,,,DESKTOP,DIRECT'), // a bot: no part
      kept[2], // and no newline at the end
    ].join('\n'));
    await store.put('tracks/2026/04/10/b.csv', `${header}\n${row(T + 10 * MIN, 'd1', 'second-file')}\n`);
    await store.put('tracks/2026/04/11/a.csv', `${header}\n${row(T + 86_400_000, 'd1', 'next-day')}\n`);
    const run = await runSessions(['2026-04-10'], opts(store));
    assert.equal(run.report.badRowCount, 0);
    const sid = createHash('md5').update(`t1\x1fd1\x1f${T}`).digest('hex').slice(0, 20);
    const expected = [...kept, row(T + 10 * MIN, 'd1', 'second-file')].map((r, i) => `${r},d1,${sid},${i + 1}`);
    assert.equal((await store.get(sessionPaths.trackFacts('2026-04-10')))!.toString(), `${header},userid,session_id,sequence\n${expected.join('\n')}\n`);
  });

  it('writes the same track facts where named pipes cannot be made', async () => {
    const events: Ev[] = Array.from({ length: 50 }, (_, i) => ({ time: T + i * 7 * MIN, device: `d${i % 3}`, account: i % 11 === 0 ? 'u1' : undefined, bot: i % 13 === 0, page: 'a, "b"\nc' }));
    const piped = await analyse(events, ['2026-04-10']);
    const path0 = process.env.PATH;
    process.env.PATH = ''; // no mkfifo: the keys are rendered to a scratch file first
    try {
      const filed = await analyse(events, ['2026-04-10']);
      assert.equal((await filed.store.get(sessionPaths.trackFacts('2026-04-10')))!.toString(), (await piped.store.get(sessionPaths.trackFacts('2026-04-10')))!.toString());
    } finally {
      process.env.PATH = path0;
    }
    assert.equal((await csv(piped.store, sessionPaths.trackFacts('2026-04-10'))).length, events.filter((e) => !e.bot).length);
  });

  it('renders from their parsed rows, in file order, the facts of files the byte copy cannot follow', async () => {
    const store = new LocalStore(path.join(tempDir('sessions'), 'data'));
    const header = TRACK_COLUMNS.join(',');
    const row = (time: number | string, page: string, value = '') => `${time},t1,,d1,,,,${page},view,${value},,,,,false,,,,DESKTOP,DIRECT`;
    await store.put('tracks/2026/04/10/a.csv', `${header}\n${row(T, 'first', '1.50')}\n`);
    // A carriage return inside a field, and \r\n line ends.
    await store.put('tracks/2026/04/10/b.csv', `${header}\r\n${row(T + MIN, '"carriage\rreturn"')}\r\n${row(T + 2 * MIN, 'third', '1.50')}\r\n`);
    // Malformed rows, one over two lines, around one that is fine.
    await store.put('tracks/2026/04/10/c.csv', [header, row(T + 3 * MIN, 'broken').split(',').slice(0, 9).join(','), row(T + 4 * MIN, 'fourth', '1.50'), row('not-a-time', '"bad\nrow"'), ''].join('\n'));
    await store.put('tracks/2026/04/10/d.csv', `${header}\n${row(T + 5 * MIN, 'fifth', '1.50')}\n`);
    const run = await runSessions(['2026-04-10'], opts(store));
    assert.deepEqual(run.report.badRows.map((b) => [b.key, b.line]), [['tracks/2026/04/10/c.csv', 2], ['tracks/2026/04/10/c.csv', 4]]);
    const text = (await store.get(sessionPaths.trackFacts('2026-04-10')))!.toString();
    const facts = parse(text, { columns: true }) as Array<Record<string, string>>;
    assert.deepEqual(facts.map((f) => [f.page, f.userid, f.sequence]), [['first', 'd1', '1'], ['carriage\rreturn', 'd1', '2'], ['third', 'd1', '3'], ['fourth', 'd1', '4'], ['fifth', 'd1', '5']]);
    // Copied rows keep their text; rendered ones are in canonical form.
    assert.deepEqual(facts.map((f) => text.includes(`,${f.page},view,1.50,`)), [true, false, false, false, true]);
  });

  it('recomputes earlier days when a device is linked to an account later', async () => {
    const store = new LocalStore(path.join(tempDir('sessions'), 'data'));
    await writeEvents(store, [{ time: T, device: 'late-linker' }], 'a');
    await runSessions(['2026-04-10'], opts(store));
    assert.equal((await csv(store, sessionPaths.trackFacts('2026-04-10')))[0]!.userid, 'late-linker');
    const later = T + 3 * 86_400_000;
    await writeEvents(store, [{ time: later, device: 'late-linker', account: 'u-late' }], 'b');
    const run = await runSessions(['2026-04-13'], opts(store));
    assert.deepEqual(run.aliasChanged, ['2026-04-10']);
    assert.deepEqual(run.computed, ['2026-04-10', '2026-04-13']);
    assert.equal((await csv(store, sessionPaths.trackFacts('2026-04-10')))[0]!.userid, 'u-late');
    const users = await csv(store, sessionPaths.userFacts);
    assert.deepEqual(users.map((u) => [u.userid, u.sessions, u.events]), [['u-late', '2', '2']]);
  });

  it('takes links only from the days it computes, and from every day when there is no map to extend', async () => {
    const store = new LocalStore(path.join(tempDir('sessions'), 'data'));
    await writeEvents(store, [{ time: T, device: 'd1', account: 'u1' }], 'a');
    await writeEvents(store, [{ time: T + 86_400_000, device: 'd2', account: 'u2' }], 'b');
    await runSessions(['2026-04-10', '2026-04-11'], opts(store));
    const links = async () => (await csv(store, sessionPaths.aliasMap)).map((r) => [r.deviceid, r.userid]);
    assert.deepEqual(await links(), [['d1', 'u1'], ['d2', 'u2']]);
    // Nothing changed: the map is extended by nothing and keeps every link.
    assert.deepEqual((await runSessions(['2026-04-10', '2026-04-11'], opts(store))).computed, []);
    assert.deepEqual(await links(), [['d1', 'u1'], ['d2', 'u2']]);
    // The stored map lost: the next run takes the links of every day again, changed or not.
    await store.delete(sessionPaths.aliasMap);
    await runSessions(['2026-04-10', '2026-04-11'], opts(store));
    assert.deepEqual(await links(), [['d1', 'u1'], ['d2', 'u2']]);
  });

  it('counts a funnel step only after the previous one, and follows the flow after an event', async () => {
    const events: Ev[] = [
      // in order: load, view, chat, order
      { time: T, device: 'a', event: 'load' }, { time: T + MIN, device: 'a', event: 'view' }, { time: T + 2 * MIN, device: 'a', event: 'chat' }, { time: T + 3 * MIN, device: 'a', event: 'order' },
      // out of order: chat and view before load
      { time: T, device: 'b', event: 'chat' }, { time: T + MIN, device: 'b', event: 'view' }, { time: T + 2 * MIN, device: 'b', event: 'load' },
      // load, view, view, then nothing
      { time: T, device: 'c', event: 'load' }, { time: T + MIN, device: 'c', event: 'view' }, { time: T + 2 * MIN, device: 'c', event: 'view' },
    ];
    const { store } = await analyse(events, ['2026-04-10']);
    const steps = await funnel(store, { from: '2026-04-10', to: '2026-04-10', steps: ['load', 'view', 'chat', 'order'] });
    assert.deepEqual(steps.map((s) => [s.step, s.sessions]), [['load', 3], ['view', 2], ['chat', 1], ['order', 1]]);
    assert.equal(steps[1]!.conversion, 2 / 3);
    const paths = await flow(store, { from: '2026-04-10', to: '2026-04-10', event: 'view' });
    // After the first view: a goes on to chat and order, b to load, c to its second view.
    assert.deepEqual(paths, [{ events: ['chat', 'order'], sessions: 1 }, { events: ['load'], sessions: 1 }, { events: ['view'], sessions: 1 }]);
    assert.deepEqual((await funnel(store, { from: '2026-04-10', to: '2026-04-10', steps: ['load', 'view'], tenant: 'nobody' })).map((s) => s.sessions), [0, 0]);
  });
});

describe('user facts', () => {
  it('updated by the recomputed days give the bytes computed from every day, over a random sequence of runs', async () => {
    const days = ['2026-04-08', '2026-04-09', '2026-04-10', '2026-04-11', '2026-04-12'];
    const a = new LocalStore(path.join(tempDir('users-incr'), 'data'));
    const b = new LocalStore(path.join(tempDir('users-full'), 'data'));
    const modes = new Set<string>();
    // A file going away makes some users lose their first or last day.
    await randomFileSteps({
      days,
      seed: 5,
      steps: 10,
      maxTouched: 2,
      stores: [a, b],
      add: async (day, step, rnd) => {
        const start = Date.parse(`${day}T00:00:00Z`);
        const evs: Ev[] = Array.from({ length: 25 }, () => ({
          time: start + Math.floor(rnd() * 86_000_000),
          device: `d${Math.floor(rnd() * 12)}`,
          account: rnd() < 0.3 ? `u${Math.floor(rnd() * 4)}` : undefined,
          event: ['load', 'view', 'chat'][Math.floor(rnd() * 3)],
        }));
        const name = `n1-${String(step).padStart(12, '0')}`;
        for (const store of [a, b]) await writeEvents(store, evs, name);
        return `tracks/${dayPath(day)}/${name}.csv`;
      },
      check: async (touched, step) => {
        const run = await runSessions(touched, opts(a));
        modes.add(run.userFacts ?? 'none');
        await b.delete('users/_state/_inputs.json'); // no record: every day's state is read
        await runSessions(touched, opts(b));
        for (const key of ['users/user_facts.csv', 'users/_state/user_devices.csv']) {
          assert.equal((await a.get(key))?.toString(), (await b.get(key))?.toString(), `${key} after step ${step} (${touched.join(', ')})`);
        }
      },
    });
    assert.ok(modes.has('incremental') && modes.has('full'), [...modes].join(' '));
  });

  it("read every day's state when a user leaves the changed day that held its first time", async () => {
    const store = new LocalStore(path.join(tempDir('users-first'), 'data'));
    const at = (day: string, h: number) => Date.parse(`${day}T${String(h).padStart(2, '0')}:00:00Z`);
    await writeEvents(store, [{ time: at('2026-04-08', 9), device: 'd1', account: 'u1' }], 'n1-000000000001');
    await writeEvents(store, [{ time: at('2026-04-09', 9), device: 'd1', account: 'u1' }, { time: at('2026-04-10', 9), device: 'd1', account: 'u1' }], 'n1-000000000002');
    await runSessions(['2026-04-08', '2026-04-09', '2026-04-10'], opts(store));
    // The 8th loses u1, the 10th gains an event: u1's first time is now the 9th's, a day this run does not read.
    await store.delete('tracks/2026/04/08/n1-000000000001.csv');
    await writeEvents(store, [{ time: at('2026-04-10', 12), device: 'd1', account: 'u1' }], 'n1-000000000003');
    const run = await runSessions(['2026-04-08', '2026-04-10'], opts(store));
    assert.equal(run.userFacts, 'full');
    const facts = await csv(store, 'users/user_facts.csv');
    assert.deepEqual(facts.map((f) => [f.userid, f.first_seen, f.last_seen, f.events]), [['u1', String(at('2026-04-09', 9)), String(at('2026-04-10', 12)), '3']]);
  });
});
