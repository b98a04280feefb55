/**
 * A deletion killed with SIGKILL at any point is finished by the next run: no row of anyone else lost or
 * doubled, no row of the subject left. The run is the real CLI in a child process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ManualClock } from '../src/lib/clock.js';
import { Regulations } from '../src/privacy/regulations.js';
import { LocalStore } from '../src/storage/local.js';
import { CLI, post, flushed, startCollector, T0, tempDir, track } from './helpers.js';

async function tracked(store: LocalStore): Promise<string[]> {
  const out: string[] = [];
  for (const o of await store.list('tracks/')) out.push(...(await store.get(o.key))!.toString('utf8').split('\n').slice(1).filter(Boolean));
  return out.sort();
}

function regulationsRun(dir: string, killAfterMs?: number): Promise<number | null> {
  const proc = spawn(process.execPath, [CLI, 'regulations', 'run', '--storage', path.join(dir, 'data'), '--scratch-dir', dir, '--log-level', 'silent'], { cwd: dir, stdio: 'ignore' });
  if (killAfterMs !== undefined) setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
}

describe('a deletion killed with SIGKILL', () => {
  it('is finished by the next run with nothing else lost or doubled', async () => {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const c = await startCollector({ storage: path.join(dir, 'data'), walDir: path.join(dir, 'wal'), maxSegmentBytes: 4096 }, { clock });
    // Many small files over ten days, so a kill lands between files.
    for (let i = 0; i < 40; i++) {
      const batch = Array.from({ length: 25 }, (_, k) => track({ messageId: `m${i}-${k}`, userId: k % 5 === 0 ? 'victim' : `u${k}`, anonymousId: `d${k}`, timestamp: new Date(T0 - (i % 10) * 86_400_000 - 60_000).toISOString() }));
      assert.equal((await post(`${c.url}/v1/batch`, { batch })).status, 200);
      await flushed(c);
    }
    await c.close();
    const store = new LocalStore(path.join(dir, 'data'));
    const before = await tracked(store);
    const expected = before.filter((l) => l.split(',')[4] !== 'victim');
    assert.equal(before.length - expected.length, 200);
    const secret = (await store.get('privacy/secret'))!.toString().trim();
    const reg = await new Regulations(store, secret, clock).create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['victim'] });

    for (const ms of [150, 400, 800]) await regulationsRun(dir, ms);
    assert.equal(await regulationsRun(dir), 0);
    assert.deepEqual(await tracked(store), expected);
    const done = (await new Regulations(store, secret, clock).get('demo', reg.id))!;
    assert.equal(done.status, 'FINISHED');
  });
});
