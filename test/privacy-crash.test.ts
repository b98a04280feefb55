/**
 * Privacy through real child processes: a deletion killed with SIGKILL at any point is finished by the next
 * run (no row of anyone else lost or doubled, no row of the subject left); a collector killed while a
 * deletion is pending ships none of the subject's logged messages; the commands and their bad flags.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.js';
import { ManualClock, systemClock } from '../src/lib/clock.js';
import { Regulations } from '../src/privacy/regulations.js';
import { LocalStore } from '../src/storage/local.js';
import { CLI, post, flushed, readRows, sendTagged, spawnCollector, startCollector, T0, tempDir, track } from './helpers.js';

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

/** Batches of 10 events of one user; the ids acknowledged. */
const send = async (url: string, userId: string, batches: number, tag: string) => (await sendTagged(url, { batches, tag, userId })).acked;

describe('a collector killed with SIGKILL while a deletion is pending', () => {
  it('ships none of the subject\'s logged messages after the restart, and everyone else\'s exactly once', async () => {
    const dir = tempDir('erase-ship');
    // Nothing ships before the kill (a long flush interval): the whole log is recovered and shipped after it.
    const args = ['--flush-interval-ms', '3600000', '--node-id', 'n1'];
    const first = await spawnCollector(dir, args);
    const victim = await send(first.url, 'victim', 20, 'v');
    const others = await send(first.url, 'other', 20, 'o');
    assert.equal(victim.length, 200);
    // The deletion arrives in the bucket (from any node) after these were acknowledged; then the node dies.
    const store = new LocalStore(path.join(dir, 'data'));
    const secret = (await store.get('privacy/secret'))!.toString().trim();
    await new Regulations(store, secret, systemClock).create('demo', { regulationType: 'DELETE', subjectType: 'USER_ID', subjectIds: ['victim'] });
    const more = send(first.url, 'other', 30, 'm');
    await new Promise((r) => setTimeout(r, 150));
    first.proc.kill('SIGKILL');
    others.push(...(await more));
    await first.exited;

    // Killed again while it ships what it recovered, then stopped cleanly.
    const second = await spawnCollector(dir, args);
    second.proc.kill('SIGKILL');
    await second.exited;
    const third = await spawnCollector(dir, args);
    third.proc.kill('SIGTERM');
    assert.equal(await third.exited, 0);
    assert.equal((await store.list('tracks/')).length > 0, true);
    const rows = await readRows(store);
    const stored = new Map<string, number>();
    for (const r of rows) stored.set(r.correlationid!, (stored.get(r.correlationid!) ?? 0) + 1);
    assert.deepEqual(rows.filter((r) => r.accountid === 'victim').map((r) => r.correlationid), [], 'the subject\'s rows were logged before the deletion: none ships');
    assert.deepEqual(others.filter((id) => stored.get(id) !== 1), [], 'everyone else\'s acknowledged events exactly once');
  });
});

describe('the privacy commands and settings', () => {
  const cli = (args: string[], cwd: string) => spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 });

  it('file, list and show a regulation; refuse bad flags with exit 2 naming them', () => {
    const dir = tempDir('regulate');
    const made = cli(['regulate', '--tenant', 'demo', '--delete', '--suppress', '--user', 'u1', '--user', 'u2'], dir);
    assert.equal(made.status, 0, made.stderr);
    const reg = JSON.parse(made.stdout) as { regulateId: string; regulationType: string; status: string; subjects: number };
    assert.deepEqual([reg.regulationType, reg.status, reg.subjects], ['SUPPRESS_WITH_DELETE', 'INITIALIZED', 2]);
    const listed = cli(['regulations', 'list'], dir);
    assert.equal(listed.status, 0);
    assert.match(listed.stdout, new RegExp(reg.regulateId));
    assert.equal(cli(['regulations', 'show', reg.regulateId, '--tenant', 'demo'], dir).status, 0);
    for (const [args, setting] of [
      [['regulate', '--tenant', 'demo', '--delete'], 'user'],
      [['regulate', '--tenant', 'demo', '--delete', '--unsuppress', '--user', 'u1'], 'regulate'],
      [['regulate', '--tenant', 'nope', '--delete', '--user', 'u1'], 'tenant'],
      [['regulate', '--tenant', 'demo', '--suppress', '--user', 'x'.repeat(256)], 'user'],
      [['token', 'create', '--tenant', 'demo', '--scope', 'admin'], 'scope'],
      [['token', 'create', '--tenant', 'demo', '--scope', 'privacy', '--merchant', 'm1'], 'merchant'],
      [['serve', '--no-api', '--port', '0'], 'ipMode'],
    ] as const) {
      const env = setting === 'ipMode' ? { TRACKLAKE_IP_MODE: 'mask' } : {};
      const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`"${setting}"`), args.join(' '));
    }
  });

  it('refuse a per-source retention for a write key no source has', () => {
    assert.throws(() => loadConfig({ flags: { sources: { web: 'demo' }, sourceRetention: { app: { ipMode: 'drop' } } } }), /sourceRetention\.app/);
    assert.throws(() => loadConfig({ flags: { geoPrecision: 12 } }), /geoPrecision/);
    assert.throws(() => loadConfig({ flags: { privacyRefreshSeconds: 600 } }), /privacyRefreshSeconds/);
  });
});
