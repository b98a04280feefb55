/**
 * The live counts' pieces on their own: the counter's window, the file's parsing (a damaged file is read as
 * nothing, never as an error), a restart taking its counts back, and the sum over collectors' files.
 * The whole path (collectors → bucket → API → page) is in events.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LIVE_MINUTES, LiveCounter, type LiveFile, liveSeries, parseLiveFile } from '../src/lake/live.js';
import { LiveReader } from '../src/query/live.js';
import { LocalStore } from '../src/storage/local.js';

const T0 = Date.UTC(2026, 10, 22, 10, 0, 0);
const MIN = 60_000;

describe('live counts', () => {
  it('count per tenant and minute, and keep only the last half hour', () => {
    const c = new LiveCounter();
    c.add('a', 5, T0 + 10_000);
    c.add('a', 2, T0 + 59_999);
    c.add('b', 1, T0 + MIN);
    c.add('a', 0, T0 + MIN); // nothing acknowledged: nothing counted
    assert.deepEqual(c.snapshot(T0 + MIN), { a: [[T0, 7]], b: [[T0 + MIN, 1]] });
    // An hour of traffic, one message a minute: the counter never holds more than the window.
    for (let m = 2; m < 60; m++) c.add('a', 1, T0 + m * MIN);
    const kept = c.snapshot(T0 + 59 * MIN).a!;
    assert.equal(kept.length, LIVE_MINUTES);
    assert.equal(kept[0]![0], T0 + (60 - LIVE_MINUTES) * MIN);
  });

  it('read a damaged or foreign file as nothing, and leave out pairs that are not counts', () => {
    for (const body of ['', 'not json', '[]', 'null', '{"version":2,"node":"n","at":1,"minutes":{}}', '{"version":1,"node":3,"at":1,"minutes":{}}']) {
      assert.equal(parseLiveFile(Buffer.from(body)), undefined, body);
    }
    const f = parseLiveFile(Buffer.from(JSON.stringify({ version: 1, node: 'n1', at: T0, minutes: { a: [[T0, 3], ['x', 1], [T0, null], 7], b: 'oops' } })));
    assert.deepEqual(f, { version: 1, node: 'n1', at: T0, minutes: { a: [[T0, 3]] } });
  });

  it('take back an earlier run’s counts at a restart, added to the new ones', () => {
    const before = new LiveCounter();
    before.add('a', 4, T0);
    const file = parseLiveFile(Buffer.from(JSON.stringify({ version: 1, node: 'n1', at: T0 + 1000, minutes: before.snapshot(T0 + 1000) })))!;
    const after = new LiveCounter();
    after.add('a', 1, T0 + 2000);
    after.restore(file);
    assert.deepEqual(after.snapshot(T0 + 3000), { a: [[T0, 5]] });
  });

  it('sum the files of several collectors for one tenant, minute by minute', () => {
    const now = T0 + 29 * MIN + 30_000;
    const files: LiveFile[] = [
      { version: 1, node: 'n1', at: now, minutes: { a: [[T0, 2], [T0 + 29 * MIN, 3]], b: [[T0, 100]] } },
      { version: 1, node: 'n2', at: now, minutes: { a: [[T0 - MIN, 50], [T0 + 29 * MIN, 4]] } },
    ];
    const series = liveSeries(files, 'a', now);
    assert.equal(series.length, LIVE_MINUTES);
    assert.deepEqual(series[0], { minute: T0, events: 2 });
    assert.deepEqual(series.at(-1), { minute: T0 + 29 * MIN, events: 7 });
    assert.equal(series.reduce((s, m) => s + m.events, 0), 9); // the minute before the window is not in
    assert.equal(liveSeries(files, 'constructor', now).reduce((s, m) => s + m.events, 0), 0);
  });

  it('in a collector\'s own process, take its counts from memory and the other collectors\' from their files', async () => {
    const store = new LocalStore(mkdtempSync(path.join(os.tmpdir(), 'live-')));
    const own = new LiveCounter();
    own.add('a', 5, T0 + 10_000);
    own.add('b', 9, T0 + 10_000);
    // Its own file is older than its memory: the memory counts, the file does not.
    await store.put('live/n1.json', JSON.stringify({ version: 1, node: 'n1', at: T0, minutes: { a: [[T0, 1]] } }));
    await store.put('live/n2.json', JSON.stringify({ version: 1, node: 'n2', at: T0 + 20_000, minutes: { a: [[T0, 3]] } }));
    let asked: string[] = [];
    const reader = new LiveReader(store, { node: 'n1', minutes: (now, tenant) => ((asked = Object.keys(own.snapshot(now, tenant))), own.snapshot(now, tenant)) });
    const answer = await reader.traffic('a', T0 + 30_000);
    assert.equal(answer.total, 8);
    assert.equal(answer.collectors, 2);
    assert.deepEqual(asked, ['a'], 'only the tenant asked for is copied out of memory');
  });
});
