/**
 * A node's state folder (`--state-dir`): each node keeps its secret and read cache in a folder of its own, a
 * second process on a held folder is refused by name, a read node starts in an empty folder, and a secret
 * kept where versions before the state folder put it is carried over. Real child processes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ManualClock } from '../src/lib/clock.js';
import { ConfigError } from '../src/lib/errors.js';
import { loadSecret, verifyBearer } from '../src/query/tokens.js';
import { LocalStore } from '../src/storage/local.js';
import { CLI, readRows, sendTagged, spawnCollector, startCollector, T0, tempDir } from './helpers.js';

const env = { PATH: process.env.PATH ?? '' };

/** `tracklake api` in dir: resolves with its dashboard link once it serves, or with its exit code. */
function readNode(dir: string, args: string[]) {
  const proc = spawn(process.execPath, [CLI, 'api', '--storage', 'data', '--api-port', '0', '--log-level', 'warn', ...args], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const serving = new Promise<{ url: string; token: string }>((resolve) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=(\S+)\n/.exec(err);
      if (m) resolve({ url: m[1]!, token: m[2]! });
    });
  });
  return { proc, exited, serving, stderr: () => err, stop: () => (proc.kill('SIGTERM'), exited) };
}

describe('the state folder', () => {
  it('lets a read node start in an empty folder, and answer with a token of its own secret', async () => {
    const dir = tempDir('state-empty');
    const node = readNode(dir, []);
    try {
      const first = await Promise.race([node.serving, node.exited.then((code) => assert.fail(`exited ${code}: ${node.stderr()}`))]);
      const res = await fetch(`${first.url}/api/v1/meta`, { headers: { authorization: `Bearer ${first.token}` } });
      assert.equal(res.status, 200, await res.text());
      // Made where the README says: ./.tracklake, the secret mode 0600 and the cache beside it.
      assert.equal((await fs.stat(path.join(dir, '.tracklake', 'api-secret'))).mode & 0o777, 0o600);
      await fs.access(path.join(dir, '.tracklake', 'read-cache.duckdb'));
    } finally {
      await node.stop();
    }
  });

  it('keeps sibling nodes apart, and refuses a second process on a held folder by name', async () => {
    const dir = tempDir('state-siblings');
    // Two collectors with the read side, their state folders side by side (the case that used to share one).
    const a = await spawnCollector(dir, ['--state-dir', 'node-a', '--wal-dir', 'node-a/wal', '--api-port', '0', '--no-scheduler']);
    const b = await spawnCollector(dir, ['--state-dir', 'node-b', '--wal-dir', 'node-b/wal', '--api-port', '0', '--no-scheduler']);
    try {
      for (const n of ['node-a', 'node-b']) await fs.access(path.join(dir, n, 'read-cache.duckdb'));
      const secretA = await fs.readFile(path.join(dir, 'node-a', 'api-secret'), 'utf8');
      const secretB = await fs.readFile(path.join(dir, 'node-b', 'api-secret'), 'utf8');
      assert.notEqual(secretA, secretB, 'each node made its own secret');
      // A read node on a collector's folder is refused, naming the setting, the folder and the holder.
      const third = readNode(dir, ['--state-dir', 'node-a']);
      assert.equal(await third.exited, 2);
      assert.match(third.stderr(), new RegExp(`invalid setting "stateDir": the state folder ${path.join(dir, 'node-a')} is in use by process ${a.proc.pid}`));
    } finally {
      for (const c of [a, b]) {
        c.proc.kill('SIGTERM');
        assert.equal(await c.exited, 0);
      }
    }
  });

  it('carries a secret kept beside the log by older versions over, so tokens handed out stay valid', async () => {
    const dir = tempDir('state-old');
    // The layout before the state folder: --wal-dir /srv/x/wal kept the secret in /srv/x.
    const old = path.join(dir, 'srv');
    await fs.mkdir(path.join(old, 'wal'), { recursive: true });
    await fs.writeFile(path.join(old, 'api-secret'), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
    const oldSecret = await loadSecret(undefined, path.join(old, 'api-secret'));
    const made = spawnSync(process.execPath, [CLI, 'token', 'create', '--tenant', 'demo', '--wal-dir', path.join(old, 'wal')], { cwd: dir, env, encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    assert.match(made.stderr, /copied into the state folder/);
    const r = await verifyBearer(`Bearer ${made.stdout.trim()}`, oldSecret, new ManualClock(Date.now()));
    assert.ok(r.ok, 'the token is signed with the secret of the old place');
    assert.equal(await fs.readFile(path.join(dir, '.tracklake', 'api-secret'), 'utf8'), `${'ab'.repeat(32)}\n`);
  });

  it('keeps what a node id shipped when its log folder is lost and it starts again the same day', async () => {
    // The id is in the configuration, the log on a disk that did not follow the node: the new log's
    // objects must not take the earlier one's names (<node>-<sequence>) and overwrite them.
    const store = new LocalStore(path.join(tempDir(), 'bucket'));
    const clock = new ManualClock(T0);
    const before = await startCollector({ nodeId: 'edge' }, { store, clock });
    const first = await sendTagged(before.url, { tag: 'lost-before', batches: 2 });
    await before.close(); // ships everything
    clock.advance(3_600_000);
    const again = await startCollector({ nodeId: 'edge' }, { store, clock }); // a new folder: a new log
    const second = await sendTagged(again.url, { tag: 'lost-after', batches: 2 });
    await again.close();
    const stored = (await readRows(store)).map((r) => r.correlationid).sort();
    assert.deepEqual(stored, [...first.acked, ...second.acked].sort(), 'every message of both logs in the bucket');
  });

  it('refuses a second collector with a node id in use on the bucket, and starts it once the first stopped', async () => {
    const store = new LocalStore(path.join(tempDir(), 'bucket'));
    const clock = new ManualClock(T0);
    const first = await startCollector({ nodeId: 'twin' }, { store, clock });
    await assert.rejects(startCollector({ nodeId: 'twin' }, { store, clock }), (e: unknown) => e instanceof ConfigError && e.setting === 'nodeId' && new RegExp(`in use by another collector \\(host ${os.hostname()}, process ${process.pid}, log ${first.node.wal.logId}`).test(e.message));
    const sent = await sendTagged(first.url, { tag: 'twin-first', batches: 1 });
    await first.close(); // a clean stop lets the id go at once
    const second = await startCollector({ nodeId: 'twin' }, { store, clock });
    await second.close();
    assert.deepEqual((await readRows(store)).map((r) => r.correlationid).sort(), [...sent.acked].sort());
  });

  it('holds shipping while another collector runs with its node id, and ships once that one is gone', async () => {
    // Two started at one moment both found the id free; the one whose entry was overwritten finds out at its
    // next look (every 15 s) and ships nothing until the other's entry is a minute old.
    const store = new LocalStore(path.join(tempDir(), 'bucket'));
    const clock = new ManualClock(T0);
    const c = await startCollector({ nodeId: 'race' }, { store, clock });
    try {
      // A copy of this log folder on another machine (a disk image made after a first run) is another collector.
      const copy = { version: 1, node: 'race', log: c.node.wal.logId, host: 'cloned', pid: 1, at: clock.now() };
      await store.put('nodes/race.json', JSON.stringify(copy));
      assert.equal((await c.node.nodeClaim.look())?.host, 'cloned');
      const other = { version: 1, node: 'race', log: 'another-log', host: 'elsewhere', pid: 1, at: clock.now() };
      await store.put('nodes/race.json', JSON.stringify(other));
      assert.equal((await c.node.nodeClaim.look())?.log, 'another-log');
      const ready = c.node.readiness();
      assert.equal(ready.ready, false);
      assert.match(String(ready.checks.nodeId), /node id "race" is in use by another collector \(host elsewhere, process 1/);
      const sent = await sendTagged(c.url, { tag: 'race', batches: 2 });
      let shipped = false;
      const flushed = c.node.shipper.flush().then(() => (shipped = true));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(shipped, false);
      assert.deepEqual(await store.list('tracks/'), [], 'nothing shipped under a node id another collector holds');
      clock.advance(60_000);
      assert.equal(await c.node.nodeClaim.look(), undefined, 'the other entry is stale: the id is this collector\'s again');
      await flushed;
      assert.deepEqual((await readRows(store)).map((r) => r.correlationid).sort(), [...sent.acked].sort());
      assert.equal(c.node.readiness().checks.nodeId, true);
      assert.equal(JSON.parse((await store.get('nodes/race.json'))!.toString()).log, c.node.wal.logId);
    } finally {
      await c.close();
    }
    assert.equal(await store.get('nodes/race.json'), undefined, 'a clean stop removes its entry');
  });
});
